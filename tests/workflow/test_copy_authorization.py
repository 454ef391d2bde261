"""CopySnapshot under the stack's IAM as AWS authorizes it (issue 19 item 2): the request context
holds only the condition keys the Service Authorization Reference lists for CopySnapshot, which
has no aws:ResourceTag, so a source grant conditioned on the snapshot's tags would deny every copy
on AWS and now does in the emulator too."""

from __future__ import annotations

import copy
from typing import Any

from smart_vault.constants import TAG_MANAGED
from smart_vault_sim.scenario import parse_scenario
from smart_vault_sim.simulator import DEPLOYMENT_ID, simulate
from tests.workflow.conftest import BASE, by_name, instance

DR = {"region": "us-west-2", "kms_key": "alias/smart-vault-dr", "retention_days": 10, "keep_min": 2}


def scenario() -> Any:
    data = copy.deepcopy(BASE)
    data["settings"] = {"retention_days": 7, "keep_min": 2, "copy_regions": [DR]}
    data["instances"] = [instance("web-1", volumes=2)]
    return parse_scenario(data)


def source_on_resource_tag(template: dict[str, Any]) -> None:
    """The Copy role's source grant as it was before issue 19: on the managed tag (aws:ResourceTag)."""
    for logical, resource in template["Resources"].items():
        if resource["Type"] != "AWS::IAM::Policy" or not logical.startswith("CopyRole"):
            continue
        for statement in resource["Properties"]["PolicyDocument"]["Statement"]:
            if "ec2:Owner" in str(statement.get("Condition")):
                statement["Condition"] = {"StringEquals": {f"aws:ResourceTag/{TAG_MANAGED}": DEPLOYMENT_ID}}


def test_the_shipped_copy_role_copies_every_snapshot_under_enforcement():
    run = simulate(scenario())["runs"][0]

    assert run["iam_enforced"] is True and run["iam_denied"] == []
    assert run["execution"]["status"] == "SUCCEEDED"
    assert len(run["copies"]) == 2 and {c["state"] for c in run["copies"]} == {"completed"}


def test_a_source_grant_on_the_snapshots_tag_is_denied_as_on_aws():
    run = simulate(scenario(), edit_template=source_on_resource_tag)["runs"][0]

    # The first copy is refused on its source snapshot, which does carry the marker.
    sources = {c["snapshot_id"] for c in run["created"]}
    denied = {d.rsplit("/", 1)[-1] for d in run["iam_denied"] if d.startswith("copy ec2:CopySnapshot ")}
    assert denied and denied <= sources
    assert all(d.startswith("copy ec2:CopySnapshot arn:aws:ec2:us-east-1::snapshot/") for d in run["iam_denied"])
    assert run["copies"] == []
    web = by_name(run)["web-1"]
    assert web["status"] == "failed" and web["step"] == "Copy" and "UnauthorizedOperation" in web["error"]
    assert run["execution"]["status"] == "FAILED"
