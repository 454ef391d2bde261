"""The alert and the report say everything an operator needs: the Region of a
denied copy, a short drill error, what a dry run would create, the instances a drill cannot
drill, and the drill volumes an earlier drill left behind (swept)."""

from __future__ import annotations

import copy
from typing import Any

from smart_vault_sim.scenario import parse_scenario
from smart_vault_sim.simulator import simulate
from tests.workflow.conftest import BASE, instance

DR = {"region": "us-west-2", "kms_key": "alias/smart-vault-dr", "retention_days": 10, "keep_min": 2}
BACKUP_AT = "2026-11-26T03:00:00Z"
DRILL_AT = "2026-11-29T05:00:00Z"


def scenario(**parts: Any) -> dict[str, Any]:
    data = copy.deepcopy(BASE)
    data.update(parts)
    return data


def test_a_denied_copy_alert_names_the_destination_region_and_shortens_the_encoded_message():
    # EC2 refuses web-1's CopySnapshot with UnauthorizedOperation (its ~1,600 encoded characters).
    report = simulate(
        parse_scenario(
            scenario(
                settings={"retention_days": 7, "keep_min": 2, "copy_regions": [DR]},
                instances=[instance("web-1")],
                faults=[{"operation": "CopySnapshot", "instance": "web-1", "error": "UnauthorizedOperation"}],
            )
        )
    )
    [run] = report["runs"]
    [alert] = run["alerts"]
    line = next(x for x in alert["message"].splitlines() if x.startswith("- web-1 "))
    assert "UnauthorizedOperation" in line
    assert "Encoded authorization failure message: [" in line  # shortened, not 1,600 characters
    assert len(line) < 600
    assert line.endswith("to us-west-2)")  # the Region after the encoded message survives


def test_a_drill_alert_shortens_the_encoded_authorization_message():
    data = scenario(
        instances=[instance("web-1")],
        runs=[{"at": BACKUP_AT}, {"at": DRILL_AT, "workflow": "drill"}],
        faults=[{"operation": "CreateVolume", "instance": "web-1", "error": "UnauthorizedOperation"}],
    )
    run = simulate(parse_scenario(data))["runs"][1]
    [alert] = run["alerts"]
    line = next(x for x in alert["message"].splitlines() if x.startswith("- web-1"))
    assert "UnauthorizedOperation" in line and "decode with aws sts decode-authorization-message" in line
    assert len(line) < 600
    # The report keeps the whole message.
    [row] = run["drill"]["instances"]
    assert len(row["error"]) > 1500
