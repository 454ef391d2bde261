import pytest

from smart_vault.errors import InvalidInputError
from smart_vault.settings import Settings


def test_defaults_match_the_documented_configuration():
    s = Settings()
    assert (s.backup_tag_key, s.backup_tag_value) == ("backup", "True")
    assert (s.retention_days, s.keep_min, s.max_delete_fraction) == (7, 2, 0.5)
    assert s.dry_run is False


def test_environment_round_trip():
    original = Settings.from_mapping(
        {"retention_days": 30, "copy_tags": ["Name", "team"], "dry_run": True, "bucket_name": "b"}
    )
    assert Settings.from_env(original.to_env()) == original


def test_environment_strings_are_parsed():
    s = Settings.from_env({"RETENTION_DAYS": "14", "COPY_TAGS": "Name, team", "DRY_RUN": "TRUE"})
    assert s.retention_days == 14
    assert s.copy_tags == ("Name", "team")
    assert s.dry_run is True


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"retention_days": -3}, "retention_days"),
        ({"retention_days": 0}, "retention_days"),
        ({"keep_min": 0}, "keep_min"),
        ({"keep_min": "two"}, "keep_min"),
        ({"retention_days": True}, "retention_days"),
        ({"dry_run": "maybe"}, "dry_run"),
        ({"max_delete_fraction": 1.5}, "max_delete_fraction"),
        ({"max_delete_fraction": 0}, "max_delete_fraction"),
        ({"copy_tags": "Name"}, None),  # comma-separated string is fine
        ({"copy_tags": [1, 2]}, "copy_tags"),
        ({"backup_tag_key": ""}, "backup_tag_key"),
        ({"retension_days": 7}, "retension_days"),
        ({"create_rate_per_second": 9}, "create_rate_per_second"),
    ],
)
def test_invalid_settings_name_the_field(data, field):
    if field is None:
        Settings.from_mapping(data)
        return
    with pytest.raises(InvalidInputError) as raised:
        Settings.from_mapping(data)
    assert raised.value.field == field
    assert field in str(raised.value)


def test_environment_errors_say_it_is_an_environment_variable():
    with pytest.raises(InvalidInputError, match="environment variable keep_min"):
        Settings.from_env({"KEEP_MIN": "0"})
