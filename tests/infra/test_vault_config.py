"""Synth with a vault: a fleet that names no customer managed key is warned that snapshots on the
AWS managed aws/ebs key cannot reach the vault, with the way out."""

from __future__ import annotations

from smart_vault_infra.config import DeploymentConfig, vault_warnings

VAULT = {
    "account": "210987654321",
    "region": "eu-west-1",
    "kms_key": "arn:aws:kms:eu-west-1:210987654321:key/1234abcd-12ab-34cd-56ef-1234567890ab",
}


def test_a_vault_without_fleet_keys_is_warned_about_aws_ebs():
    [warning] = vault_warnings(DeploymentConfig.from_context({"vault": VAULT}).settings)
    assert "aws/ebs cannot be shared with the vault account" in warning
    assert "customer managed key" in warning and "re-encrypt with a copy first" in warning


def test_a_vault_with_fleet_keys_is_reminded_of_their_key_policy_and_no_vault_no_warning():
    settings = DeploymentConfig.from_context({"vault": VAULT, "fleet_kms_keys": ["alias/fleet"]}).settings
    [warning] = vault_warnings(settings)
    assert "must let account 210987654321 use it" in warning
    assert vault_warnings(DeploymentConfig.from_context({}).settings) == []


def test_with_a_vault_prune_may_share_this_deployments_snapshots_with_the_vault_account_only():
    from smart_vault_infra.functions import function_specs

    def share_rows(**kwargs: object) -> list[dict[str, object]]:
        allow = function_specs("dep-1", None, **kwargs)["prune"].allow  # type: ignore[arg-type]
        return [dict(a.conditions["StringEquals"]) for a in allow if "ec2:ModifySnapshotAttribute" in a.actions]

    assert share_rows() == []  # no vault: no sharing at all
    rows = share_rows(vault_account="222222222222")
    assert {key for row in rows for key in row if key.startswith("ec2:")} == {"ec2:Add/userId", "ec2:Remove/userId"}
    assert all(row["aws:ResourceTag/smart-vault:managed-by"] == "dep-1" for row in rows), rows
    assert all("222222222222" in row.values() for row in rows)
