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
