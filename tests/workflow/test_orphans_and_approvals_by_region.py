"""Issue 20 items 2, 3 and part of 6 through the real ASL and handlers: an orphaned volume's
local snapshots wait for their off-site copies like a live volume's, and circuit breakers and
their approvals are per volume and Region."""

from __future__ import annotations

import copy
from typing import Any

from smart_vault_sim.scenario import parse_scenario
from smart_vault_sim.simulator import simulate
from tests.workflow.conftest import BASE, instance

DR = {"region": "us-west-2", "kms_key": "alias/smart-vault-dr", "retention_days": 10, "keep_min": 2}


def scenario(settings: dict[str, Any], **parts: Any) -> Any:
    data = copy.deepcopy(BASE)
    data["settings"] = settings
    data.update(parts)
    return parse_scenario(data)


def test_a_terminated_instance_whose_copies_always_failed_keeps_its_local_snapshots_and_the_alert_says_why():
    # Given web-1 whose copies to us-west-2 always fail (four nights), terminated on the fifth day.
    report = simulate(
        scenario(
            {"retention_days": 1, "keep_min": 1, "max_delete_fraction": 1.0, "copy_regions": [DR]},
            instances=[instance("web-1", terminated_at="2026-11-05T00:00:00Z"), instance("db-1")],
            faults=[{"operation": "CopySnapshot", "instance": "web-1", "error": "InvalidParameterValue"}],
            runs=[{"at": "2026-11-01T03:00:00Z"}, {"every": "1d", "count": 4}],
        )
    )
    runs = report["runs"]
    assert all(next(i for i in r["instances"] if i["name"] == "web-1")["step"] == "Copy" for r in runs[:4])
    last = runs[-1]
    # Then the orphan step deletes none of its four local snapshots: us-west-2 holds no copy.
    local = [s for s in report["final_snapshots"] if s["instance"] == "web-1" and s["region"] == "us-east-1"]
    assert len(local) == 4
    assert not [d for r in runs for d in r["deleted"] if d["instance"] == "web-1"]
    (orphan,) = [o for o in last["orphans"] if o["name"] == "web-1"]
    assert orphan["deleted"] == []
    held = orphan["held_for_copies"]
    assert len(held) == 3 and all(h["regions"] == ["us-west-2"] for h in held)
    # And the alert says so, with the Region.
    (alert,) = last["alerts"]
    message = alert["message"]
    assert orphan["volume_id"] in message
    assert "held for off-site copies" in message and "us-west-2" in message
