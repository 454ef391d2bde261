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
        ({"check_rate_per_second": 0}, "check_rate_per_second"),
        ({"check_rate_per_second": 21}, "check_rate_per_second"),
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


DR = {"region": "us-west-2", "kms_key": "alias/smart-vault-dr", "retention_days": 30, "keep_min": 2}


def test_copy_regions_round_trip_through_the_environment_as_json():
    s = Settings.from_mapping({"copy_regions": [DR]})
    assert s.copy_regions[0].region == "us-west-2"
    assert Settings.from_env(s.to_env()) == s
    assert "COPY_REGIONS" not in Settings().to_env()  # no copies: the environment is unchanged


@pytest.mark.parametrize(
    ("dest", "field"),
    [
        ({**DR, "region": "mars-1"}, "copy_regions[0].region"),
        ({k: v for k, v in DR.items() if k != "kms_key"}, "copy_regions[0].kms_key"),
        (
            {**DR, "kms_key": "arn:aws:kms:eu-west-1:123456789012:key/0f1e2d3c-4b5a-6978-8a9b-acbdcedf0011"},
            "copy_regions[0].kms_key",
        ),
        ({**DR, "kms_key": "not a key"}, "copy_regions[0].kms_key"),
        ({**DR, "keep_min": 0}, "copy_regions[0].keep_min"),
        ({**DR, "retention_days": "x"}, "copy_regions[0].retention_days"),
        ({**DR, "tier": "cold"}, "copy_regions[0].tier"),
    ],
)
def test_a_bad_copy_destination_is_named_by_its_field(dest, field):
    with pytest.raises(InvalidInputError) as caught:
        Settings.from_mapping({"copy_regions": [dest]})
    assert caught.value.field == field


def test_a_destination_listed_twice_or_equal_to_the_source_region_is_refused():
    with pytest.raises(InvalidInputError) as caught:
        Settings.from_mapping({"copy_regions": [DR, DR]})
    assert caught.value.field == "copy_regions[1].region"
    with pytest.raises(InvalidInputError) as caught:
        Settings.from_mapping({"copy_regions": [DR]}).check_source_region("us-west-2")
    assert caught.value.field == "copy_regions[0].region"


def test_retention_is_read_from_json_text_like_lock_and_drill():
    """`-c retention='{"daily": 7, "weekly": 4}'` and the RETENTION environment variable as JSON
    give the same policy as the tier=count form."""
    from_json = Settings.from_mapping({"retention": '{"daily": 7, "weekly": 4, "monthly": 12}'})
    from_pairs = Settings.from_mapping({"retention": "daily=7,weekly=4,monthly=12"})
    assert from_json.retention == from_pairs.retention
    assert (from_json.retention.daily, from_json.retention.monthly) == (7, 12)
    assert (
        Settings.from_env({"RETENTION": '{"daily": 3}'}).retention
        == Settings.from_mapping({"retention": {"daily": 3}}).retention
    )


@pytest.mark.parametrize("text", ['{"daily": 7,', '{"hourly": 7}', '["daily", 7]'])
def test_malformed_retention_json_text_names_the_field(text):
    with pytest.raises(InvalidInputError) as raised:
        Settings.from_mapping({"retention": text})
    assert raised.value.field == "retention"
