"""What a Redrive re-attempts and how its attempts add up, pure (in-memory store)."""

from __future__ import annotations

from typing import Any

from smart_vault.models import ErrorInfo, InstanceOutcome, InstanceTarget, VolumeTarget
from smart_vault.redrive.attempts import (
    attempt_prefix,
    merged_audit,
    resume_key,
    save_resume_point,
    write_retry_inventory,
)

from .conftest import run
from .fakes import FakeStore


def _target(instance_id: str) -> InstanceTarget:
    return InstanceTarget(
        instance_id=instance_id,
        name=instance_id[-4:],
        availability_zone="us-east-1a",
        state="running",
        volumes=(VolumeTarget(volume_id=f"vol-{instance_id[2:]}", device="/dev/xvda", root=True, size_gib=8),),
    )


def _failed(instance_id: str, step: str) -> InstanceOutcome:
    return InstanceOutcome(
        instance_id=instance_id,
        name=instance_id[-4:],
        status="failed",
        run_id="r",
        execution_name="exec-1",
        step=step,
        error=ErrorInfo(type="PermissionDeniedError", message="denied"),
    )


def test_a_resume_point_is_the_failed_steps_input_without_the_catch_fields():
    store = FakeStore()
    job = {"instance": {"instance_id": "i-1"}, "run": {"run_id": "r"}, "backup": {"status": "completed"}}
    save_resume_point(store, run(), "i-1", "Prune", {**job, "error": {"Error": "x"}, "failure": {"step": "Prune"}})
    assert store.get_json(resume_key(run(), "i-1")) == {"resume_at": "Prune", "resume_input": job}


def test_a_step_that_is_no_resume_point_keeps_nothing():
    store = FakeStore()
    save_resume_point(store, run(), "i-1", "BackupInstances", {"instance": {}})
    assert store.objects == {}


def test_the_retry_inventory_holds_each_failed_target_with_its_resume_point_and_nothing_else():
    store = FakeStore()
    save_resume_point(store, run(), "i-0000000a", "Snapshot", {"instance": {"instance_id": "i-0000000a"}, "run": {}})
    targets = {t.instance_id: t for t in (_target("i-0000000a"), _target("i-0000000b"), _target("i-0000000c"))}
    failed = [_failed("i-0000000a", "Snapshot"), _failed("i-0000000b", "BackupInstances")]
    location = write_retry_inventory(store, run(), failed, targets, 2)
    assert location["redrive"] == 2 and location["instances"] == 2
    assert location["key"] == f"{attempt_prefix(f'runs/{run().run_id}/exec-1', 2)}/inventory.json"
    items = store.get_json(location["key"])
    assert [i["instance_id"] for i in items] == ["i-0000000a", "i-0000000b"]
    assert items[0]["resume_at"] == "Snapshot" and "resume_at" not in items[1]
    assert InstanceTarget.from_dict(items[0]) == targets["i-0000000a"]


def _audit(instances: list[tuple[str, str]], created: int) -> dict[str, Any]:
    return {
        "run_id": "r",
        "summary": {"backed_up": 0, "failed": 0, "snapshots_created": created},
        "instances": [{"instance_id": i, "status": s} for i, s in instances],
        "breakers": [],
    }


def test_the_merged_audit_shows_each_instance_as_its_latest_attempt_left_it():
    first = _audit([("i-1", "backed_up"), ("i-2", "failed"), ("i-3", "failed")], created=1)
    redrive = _audit([("i-2", "backed_up"), ("i-3", "failed")], created=1)
    merged = merged_audit([first, None, redrive])
    assert merged is not None
    assert {i["instance_id"]: i["status"] for i in merged["instances"]} == {
        "i-1": "backed_up",
        "i-2": "backed_up",
        "i-3": "failed",
    }
    assert (merged["summary"]["backed_up"], merged["summary"]["failed"]) == (2, 1)
    assert merged["summary"]["snapshots_created"] == 2
    assert merged["attempts"] == [first["summary"], redrive["summary"]]
    assert first["instances"][1]["status"] == "failed"  # the first record is not changed


def test_no_audit_record_merges_to_none():
    assert merged_audit([None, None]) is None
