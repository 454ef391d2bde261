"""The `vault` setting: an isolated account, validated naming the field that is wrong."""

from __future__ import annotations

from typing import Any

import pytest

from smart_vault.errors import InvalidInputError
from smart_vault.settings import Settings

KEY = "arn:aws:kms:eu-west-1:210987654321:key/1234abcd-12ab-34cd-56ef-1234567890ab"
VAULT = {"account": "210987654321", "region": "eu-west-1", "kms_key": KEY}


def test_a_vault_round_trips_through_the_environment_the_functions_read():
    settings = Settings.from_mapping(
        {
            "vault": {
                **VAULT,
                "retention": {"daily": 14, "monthly": 12},
                "keep_min": 3,
                "lock": {"mode": "compliance", "days": 30, "cool_off_hours": 24},
            }
        }
    )
    assert settings.vault is not None and settings.vault.keep_min == 3
    assert Settings.from_env(settings.to_env()).vault == settings.vault


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"account": "12345"}, "vault.account"),
        ({"region": "mars-1"}, "vault.region"),
        ({"kms_key": "alias/vault"}, "vault.kms_key"),  # whose key? only an ARN says
        ({"kms_key": KEY.replace("210987654321", "123456789012")}, "vault.kms_key"),
        ({"retention_days": 7, "retention": {"daily": 7}}, "vault.retention"),
        ({"keep_min": 0}, "vault.keep_min"),
        ({"lock": {"mode": "compliance", "days": 7}}, "vault.lock.cool_off_hours"),
        ({"copies": 1}, "vault.copies"),
    ],
)
def test_a_wrong_vault_is_refused_naming_its_field(change: dict[str, Any], field: str):
    with pytest.raises(InvalidInputError) as refused:
        Settings.from_mapping({"vault": {**VAULT, **change}})
    assert refused.value.field == field
