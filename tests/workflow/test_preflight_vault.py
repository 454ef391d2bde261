"""Preflight with a vault: a fleet whose encrypted volumes are not on a key of fleet_kms_keys (the
AWS managed aws/ebs, whose snapshots EBS cannot share) fails the vault row, naming the way out."""

from __future__ import annotations

from typing import Any

from smart_vault_sim.scenario import parse_scenario
from smart_vault_sim.simulator import Simulation

VAULT = {
    "account": "210987654321",
    "region": "us-east-1",
    "kms_key": "arn:aws:kms:us-east-1:210987654321:key/1234abcd-12ab-34cd-56ef-1234567890ab",
}


def vault_rows(settings: dict[str, Any]) -> list[dict[str, Any]]:
    data = {
        "region": "us-east-1",
        "settings": {"enforce_iam": False, "vault": VAULT, **settings},
        "instances": [
            {"name": "db-1", "tags": {"backup": "True"}, "volumes": [{"device": "/dev/xvda", "kms_key": "alias/fleet"}]}
        ],
        "runs": [{"at": "2026-11-26T09:00:00Z", "workflow": "preflight"}],
    }
    checks = Simulation(parse_scenario(data)).run()["runs"][-1]["preflight"]["checks"]
    return [c for c in checks if c["action"] == "ec2:DescribeVolumes" and "fleet volume" in c["resource"]]


def test_a_volume_on_a_key_the_vault_cannot_be_given_fails_preflight():
    [row] = vault_rows({})
    assert row["result"] == "failed"
    assert "cannot be shared with the vault account 210987654321" in row["reason"]
    assert "customer managed key" in row["reason"]


def test_volumes_on_the_fleets_customer_managed_keys_pass():
    [row] = vault_rows({"fleet_kms_keys": ["alias/fleet"]})
    assert row["result"] == "passed", row["reason"]


def test_preflight_proves_prune_may_share_the_newest_snapshot_with_the_vault():
    data = {
        "region": "us-east-1",
        "settings": {"vault": VAULT},
        "instances": [{"name": "db-1", "tags": {"backup": "True"}, "volumes": [{"device": "/dev/xvda"}]}],
        "runs": [{"at": "2026-11-26T03:00:00Z"}, {"at": "2026-11-26T09:00:00Z", "workflow": "preflight"}],
    }
    checks = Simulation(parse_scenario(data)).run()["runs"][-1]["preflight"]["checks"]
    [row] = [c for c in checks if c["action"] == "ec2:ModifySnapshotAttribute"]
    assert row["role"] == "prune"
    assert row["result"] == "passed", row["reason"]
