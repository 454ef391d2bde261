"""Restore drill rules without AWS: the selection order, the wait/check decisions, the cleanup's
refusal to race a volume that is still creating, and how a Map iteration becomes a result."""

from __future__ import annotations

import json
from typing import Any

import pytest

from smart_vault.constants import NEW_RESOURCE_VISIBILITY_SECONDS
from smart_vault.errors import InvalidInputError, RestoreFailedError, VolumeBusyError
from smart_vault.recovery.drill import (
    MADE_MARKER,
    WAIT_INITIAL_SECONDS,
    WAIT_MAX_SECONDS,
    DrillContext,
    DrillTarget,
    RestoredVolume,
    RestoreState,
    check,
    cleanup,
    client_token,
    instance_result,
    made_volumes,
    pick,
)
from smart_vault.settings import DrillSettings, Settings

CONTEXT = DrillContext(
    drill_id="20261129T050000Z",
    drill_time="2026-11-29T05:00:00Z",
    execution_name="sv-drill-1",
    availability_zone="us-east-1a",
)
TARGET = DrillTarget(instance_id="i-0123456789abcdef0", name="web-1", run_id="20261126T030000Z", snapshot_ids=())
VOLUMES = (
    RestoredVolume(volume_id="vol-0000000000000000a", snapshot_id="snap-0000000000000000a", device="/dev/sdf"),
    RestoredVolume(volume_id="vol-0000000000000000b", snapshot_id="snap-0000000000000000b", device="/dev/xvda"),
)
SETTINGS = Settings(drill=DrillSettings(timeout_seconds=300))


class FakeEc2:
    def __init__(self, states: dict[str, str]) -> None:
        self.states = states
        self.deleted: list[str] = []

    def volumes(self, ids: Any) -> dict[str, dict[str, Any]]:
        return {i: {"VolumeId": i, "State": self.states[i]} for i in ids if i in self.states}

    def tagged_volumes(self, tags: dict[str, str]) -> list[dict[str, Any]]:
        return [{"VolumeId": i, "State": s} for i, s in self.states.items()]

    def volume_initialization(self, ids: Any) -> dict[str, dict[str, Any]]:
        return {
            i: {"InitializationType": "provisioned-rate", "Progress": 40, "EstimatedTimeToCompleteInSeconds": 60}
            for i in ids
        }

    def delete_volume(self, volume_id: str) -> bool:
        self.deleted.append(volume_id)
        return True


def state(**kw: Any) -> RestoreState:
    return RestoreState(status="creating", volumes=VOLUMES, **kw)


def test_never_drilled_first_then_least_recently_drilled():
    history = {"i-a": {"last_drilled": "2026-11-22T05:00:00Z"}, "i-b": {"last_drilled": "2026-11-15T05:00:00Z"}}
    assert pick(["i-a", "i-b", "i-c"], history, count=2, seed="x") == ["i-c", "i-b"]
    assert pick(["i-a", "i-b", "i-c"], history, count=5, seed="x") == ["i-c", "i-b", "i-a"]


def test_ties_are_broken_at_random_but_the_same_way_for_the_same_drill():
    candidates = [f"i-{n}" for n in range(20)]
    first = pick(candidates, {}, count=3, seed="20261129T050000Z")
    assert first == pick(candidates, {}, count=3, seed="20261129T050000Z")  # a re-run picks the same
    seeds = [f"2026112{d}T050000Z" for d in range(10)]
    assert len({tuple(pick(candidates, {}, count=3, seed=s)) for s in seeds}) > 1


def test_all_available_records_the_time_to_restore():
    ec2 = FakeEc2({v.volume_id: "available" for v in VOLUMES})
    done = check(state(wait_seconds=30, waited_seconds=15, checks=1), settings=SETTINGS, ec2=ec2)  # type: ignore[arg-type]
    assert (done.status, done.seconds_to_available, done.checks) == ("available", 45, 2)
    # Time to fully initialized: available, plus what EBS estimates remains.
    assert [r["seconds_to_initialized"] for r in done.initialization] == [105] * len(VOLUMES)


def test_still_creating_waits_longer_but_never_past_the_timeout():
    ec2 = FakeEc2({VOLUMES[0].volume_id: "available", VOLUMES[1].volume_id: "creating"})
    pending = check(state(), settings=SETTINGS, ec2=ec2)  # type: ignore[arg-type]
    assert pending.status == "creating" and pending.waited_seconds == WAIT_INITIAL_SECONDS
    assert pending.wait_seconds == 2 * WAIT_INITIAL_SECONDS
    capped = check(state(wait_seconds=WAIT_MAX_SECONDS, waited_seconds=0), settings=SETTINGS, ec2=ec2)  # type: ignore[arg-type]
    assert capped.wait_seconds == WAIT_MAX_SECONDS
    near = check(state(wait_seconds=100, waited_seconds=180), settings=SETTINGS, ec2=ec2)  # type: ignore[arg-type]
    assert near.wait_seconds == 20  # 300 s timeout - 280 s waited
    with pytest.raises(RestoreFailedError, match="not available after 300 s"):
        check(state(wait_seconds=20, waited_seconds=280), settings=SETTINGS, ec2=ec2)  # type: ignore[arg-type]


def test_a_volume_in_error_or_gone_fails_the_restore():
    with pytest.raises(RestoreFailedError, match="state error"):
        check(state(), settings=SETTINGS, ec2=FakeEc2({v.volume_id: "error" for v in VOLUMES}))  # type: ignore[arg-type]
    late = Settings(drill=DrillSettings(timeout_seconds=3600))
    with pytest.raises(RestoreFailedError, match="disappeared"):
        check(
            state(waited_seconds=NEW_RESOURCE_VISIBILITY_SECONDS),
            settings=late,
            ec2=FakeEc2({VOLUMES[0].volume_id: "available"}),
        )  # type: ignore[arg-type]


def test_a_volume_not_listed_yet_after_create_volume_is_still_creating():
    # EC2 is eventually consistent: a new volume may be missing from the next DescribeVolumes.
    pending = check(state(), settings=SETTINGS, ec2=FakeEc2({VOLUMES[0].volume_id: "available"}))  # type: ignore[arg-type]
    assert pending.status == "creating" and pending.volumes == VOLUMES


def test_cleanup_retries_while_a_volume_it_made_is_not_listed_yet():
    unlisted = FakeEc2({VOLUMES[0].volume_id: "available"})
    with pytest.raises(VolumeBusyError, match=VOLUMES[1].volume_id):
        cleanup(CONTEXT, TARGET, settings=SETTINGS, ec2=unlisted, made=[v.volume_id for v in VOLUMES])  # type: ignore[arg-type]
    assert unlisted.deleted == []


def test_the_cleanup_knows_the_volumes_a_half_way_restore_made_from_its_failure():
    cause = {
        "errorType": "AwsOperationError",
        "errorMessage": f"ec2:CreateVolume failed: X: no {MADE_MARKER}vol-0a, vol-0b)",
    }
    item = {"failure": {"step": "Restore", "error": {"Error": "AwsOperationError", "Cause": json.dumps(cause)}}}
    assert made_volumes(item) == ("vol-0a", "vol-0b")
    assert made_volumes({"restore": json.loads(json.dumps(state().to_dict()))}) == tuple(v.volume_id for v in VOLUMES)
    assert made_volumes({}) == ()


def test_cleanup_waits_for_a_creating_volume_instead_of_leaving_it():
    busy = FakeEc2({VOLUMES[0].volume_id: "available", VOLUMES[1].volume_id: "creating"})
    with pytest.raises(VolumeBusyError):
        cleanup(CONTEXT, TARGET, settings=SETTINGS, ec2=busy)  # type: ignore[arg-type]
    assert busy.deleted == []  # retried whole: nothing half-done
    ready = FakeEc2({v.volume_id: "available" for v in VOLUMES})
    assert cleanup(CONTEXT, TARGET, settings=SETTINGS, ec2=ready) == {  # type: ignore[arg-type]
        "cleaned_up": True,
        "deleted": [v.volume_id for v in VOLUMES],
    }
    assert VolumeBusyError.retryable


def test_tokens_differ_per_drill_execution_and_snapshot():
    other = DrillContext(**{**CONTEXT.to_dict(), "execution_name": "sv-drill-2"})
    tokens = {client_token(c, s) for c in (CONTEXT, other) for s in ("snap-a", "snap-b")}
    assert len(tokens) == 4 and all(len(t) <= 64 for t in tokens)
    assert client_token(CONTEXT, "snap-a") == client_token(CONTEXT, "snap-a")


def test_a_failed_cleanup_fails_the_instance_even_when_the_restore_passed():
    item = {
        "drill": CONTEXT.to_dict(),
        "target": TARGET.to_dict(),
        "restore": RestoreState(status="available", volumes=VOLUMES, seconds_to_available=15).to_dict(),
        "cleanup": {
            "cleaned_up": False,
            "error": {
                "Error": "PermissionDeniedError",
                "Cause": json.dumps({"errorMessage": "ec2:DeleteVolume failed"}),
            },
        },
    }
    result = instance_result(json.loads(json.dumps(item)))  # as the state passes it
    assert (result.status, result.step, result.cleaned_up) == ("failed", "Cleanup", False)
    assert result.seconds_to_available == 15


def test_bad_drill_input_names_the_field():
    with pytest.raises(InvalidInputError) as caught:
        DrillContext.from_dict({**CONTEXT.to_dict(), "drill_id": "20200101T000000Z"})
    assert caught.value.field == "drill.drill_id"
    with pytest.raises(InvalidInputError) as caught:
        DrillTarget.from_dict({**TARGET.to_dict(), "snapshot_ids": ["vol-1"]})
    assert caught.value.field == "target.snapshot_ids"
