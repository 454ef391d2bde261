import json

import boto3
import pytest

from smart_vault.constants import (
    NEW_RESOURCE_VISIBILITY_SECONDS,
    TAG_DEVICE_MAP,
    TAG_INSTANCE_ID,
    TAG_INSTANCE_NAME,
    TAG_MANAGED,
    TAG_RUN_ID,
    TAG_RUN_TIME,
)
from smart_vault.errors import (
    InvalidInputError,
    PermissionDeniedError,
    SnapshotFailedError,
    ThrottledError,
    TransientAwsError,
    VolumePacingError,
)
from smart_vault.handlers import check, notify, prune, snapshot
from smart_vault_sim.aws_tap import aws_error
from smart_vault_sim.fleet import set_snapshot_state
from tests.conftest import DEPLOYMENT, REGION, run_context


def tags_of(snap):
    return {t["Key"]: t["Value"] for t in snap.get("Tags", [])}


def test_one_create_snapshots_covers_the_selected_volumes_with_tags(account):
    account.configure(copy_tags=["Name", "team"])
    web = account.add_instance(
        "web-1",
        tags={"backup": "True", "team": "web"},
        volumes=[("/dev/xvda", 8), ("/dev/sdf", 100), ("/dev/sdg", 5, {"backup": "False"})],
    )
    job = account.job(web.instance_id)

    backup = account.invoke(snapshot.handler, job)

    assert account.tap.calls["ec2:CreateSnapshots"] == 1
    assert account.tap.calls["ec2:CreateTags"] == 0  # tagged at creation
    assert backup["status"] == "pending" and backup["created"] is True
    assert backup["wait_seconds"] == 60
    made = account.snapshots(web.instance_id)
    assert {s["VolumeId"] for s in made} == {
        web.volume_ids["/dev/xvda"],
        web.volume_ids["/dev/sdf"],
    }
    tags = tags_of(made[0])
    assert tags[TAG_MANAGED] == DEPLOYMENT
    assert tags[TAG_INSTANCE_ID] == web.instance_id
    assert tags[TAG_INSTANCE_NAME] == "web-1"
    assert tags[TAG_RUN_ID] == "20261126T030000Z"
    assert tags[TAG_RUN_TIME] == "2026-11-26T03:00:00Z"
    assert tags["team"] == "web"
    assert web.volume_ids["/dev/sdf"] + "=/dev/sdf" in tags[TAG_DEVICE_MAP]
    assert {s["device"] for s in backup["snapshots"]} == {"/dev/xvda", "/dev/sdf"}


def test_re_invocation_returns_the_existing_snapshots(account):
    web = account.add_instance("web-1", volumes=[("/dev/xvda", 8), ("/dev/sdf", 10)])
    job = account.job(web.instance_id)
    first = account.invoke(snapshot.handler, job)
    second = account.invoke(snapshot.handler, job)
    assert account.tap.calls["ec2:CreateSnapshots"] == 1
    assert second["created"] is False
    assert [s["snapshot_id"] for s in second["snapshots"]] == [s["snapshot_id"] for s in first["snapshots"]]
    assert len(account.snapshots(web.instance_id)) == 2


def test_a_new_execution_of_the_same_run_finds_them_too(account):
    web = account.add_instance("web-1")
    account.invoke(snapshot.handler, account.job(web.instance_id))
    rerun = account.job(web.instance_id, run=run_context(name="exec-2"))
    again = account.invoke(snapshot.handler, rerun)
    assert again["created"] is False
    assert len(account.snapshots(web.instance_id)) == 1


def test_snapshots_in_error_do_not_count_as_done(account):
    web = account.add_instance("web-1")
    job = account.job(web.instance_id)
    first = account.invoke(snapshot.handler, job)
    set_snapshot_state(REGION, first["snapshots"][0]["snapshot_id"], "error")
    retry = account.invoke(snapshot.handler, job)
    assert retry["created"] is True
    assert retry["snapshots"][0]["snapshot_id"] != first["snapshots"][0]["snapshot_id"]


def test_dry_run_creates_nothing(account):
    web = account.add_instance("web-1")
    result = account.invoke(snapshot.handler, account.job(web.instance_id, run=run_context(dry_run=True)))
    assert result["status"] == "skipped"
    assert account.tap.calls["ec2:CreateSnapshots"] == 0
    assert account.snapshots(web.instance_id) == []


def test_vanished_instance_is_skipped_with_a_reason(account):
    web = account.add_instance("web-1")
    job = account.job(web.instance_id)
    # AWS answers InvalidInstanceID.NotFound when the instance was terminated since discovery.
    account.tap.fail("CreateSnapshots", "InvalidInstanceID.NotFound")
    result = account.invoke(snapshot.handler, job)
    assert result["status"] == "skipped"
    assert "InvalidInstanceID.NotFound" in result["reason"]


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        ("RequestLimitExceeded", ThrottledError),
        ("SnapshotCreationPerVolumeRateExceeded", VolumePacingError),
        ("ConcurrentSnapshotLimitExceeded", VolumePacingError),
        ("InternalError", TransientAwsError),
        ("UnauthorizedOperation", PermissionDeniedError),
    ],
)
def test_create_errors_raise_the_class_the_workflow_retries(account, code, kind):
    web = account.add_instance("web-1")
    job = account.job(web.instance_id)
    account.tap.fail("CreateSnapshots", code, count=1)
    with pytest.raises(kind, match=code):
        account.invoke(snapshot.handler, job)
    assert account.snapshots(web.instance_id) == []
    # The retry the workflow makes then succeeds, once.
    assert account.invoke(snapshot.handler, job)["created"] is True
    assert account.tap.calls["ec2:CreateSnapshots"] == 2


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda j: j["instance"].update(instance_id="web-1"), "instance.instance_id"),
        (
            lambda j: j["instance"]["volumes"][0].update(volume_id=None),
            "instance.volumes[0].volume_id",
        ),
        (lambda j: j["run"].update(run_time="soon"), "run.run_time"),
        (lambda j: j.pop("run"), "run"),
    ],
)
def test_invalid_job_is_rejected_before_any_call(account, mutate, field):
    web = account.add_instance("web-1")
    job = account.job(web.instance_id)
    mutate(job)
    with pytest.raises(InvalidInputError, match=field.replace("[", r"\[").replace("]", r"\]")):
        account.invoke(snapshot.handler, job)
    assert sum(account.tap.calls.values()) == 0


def started(account, volumes=(("/dev/xvda", 8), ("/dev/sdf", 10))):
    web = account.add_instance("web-1", volumes=volumes)
    job = account.job(web.instance_id)
    job["backup"] = account.invoke(snapshot.handler, job)
    account.tap.reset_counts()
    return job


def test_check_reports_completed_with_one_describe(account):
    job = started(account)
    result = account.invoke(check.handler, job)
    assert result["status"] == "completed"
    assert result["checks"] == 1 and result["waited_seconds"] == 60
    assert account.tap.calls == {"ec2:DescribeSnapshots": 1}


def test_check_backs_off_while_pending(account):
    # moto completes snapshots at once; on AWS they stay pending for minutes to hours.
    job = started(account)
    for snap in job["backup"]["snapshots"]:
        set_snapshot_state(REGION, snap["snapshot_id"], "pending")
    waits = []
    for _ in range(5):
        job["backup"] = account.invoke(check.handler, job)
        waits.append(job["backup"]["wait_seconds"])
    assert job["backup"]["status"] == "pending"
    assert waits == [120, 240, 480, 960, 1800]  # doubles, capped at wait_max_seconds
    for snap in job["backup"]["snapshots"]:
        set_snapshot_state(REGION, snap["snapshot_id"], "completed")
    assert account.invoke(check.handler, job)["status"] == "completed"


def test_check_fails_on_error_state_naming_the_snapshot(account):
    job = started(account)
    bad = job["backup"]["snapshots"][1]["snapshot_id"]
    set_snapshot_state(REGION, bad, "error")
    with pytest.raises(SnapshotFailedError, match=bad):
        account.invoke(check.handler, job)


def test_check_of_a_skipped_backup_stays_skipped(account):
    job = started(account)
    job["backup"] = {"status": "skipped", "reason": "instance no longer exists"}
    assert account.invoke(check.handler, job)["status"] == "skipped"
    assert sum(account.tap.calls.values()) == 0


def test_an_opted_out_root_volume_is_left_out_by_exclude_boot_volume(account):
    # AWS fails CreateSnapshots when ExcludeDataVolumeIds names the root volume (the emulator too).
    web = account.add_instance("web-1", volumes=[("/dev/xvda", 8, {"backup": "False"}), ("/dev/sdf", 10)])
    backup = account.invoke(snapshot.handler, account.job(web.instance_id))
    assert [s["device"] for s in backup["snapshots"]] == ["/dev/sdf"]
    assert {s["VolumeId"] for s in account.snapshots(web.instance_id)} == {web.volume_ids["/dev/sdf"]}


def test_an_opted_out_root_volume_is_left_out_by_exclude_boot_volume_only(account):
    # The CreateSnapshots reference (InstanceSpecification): "If you specify the ID of the root
    # volume [in ExcludeDataVolumeIds], the request fails." moto accepts it, so the check that
    # EC2 makes is injected here, with the error code EC2 uses for a bad parameter value.
    web = account.add_instance(
        "web-1",
        volumes=[("/dev/xvda", 8, {"backup": "False"}), ("/dev/sdf", 100), ("/dev/sdg", 5, {"backup": "False"})],
    )
    root = web.volume_ids["/dev/xvda"]
    requests = []

    def ec2_rejects_root_in_exclude_data_volumes(params, model, **_):
        spec = params["InstanceSpecification"]
        requests.append(spec)
        if root in spec.get("ExcludeDataVolumeIds", ()):
            raise aws_error("InvalidParameterValue", model.name, f"Volume {root} is a root volume")

    events = boto3._get_default_session().events
    events.register("before-parameter-build.ec2.CreateSnapshots", ec2_rejects_root_in_exclude_data_volumes)
    try:
        backup = account.invoke(snapshot.handler, account.job(web.instance_id))
    finally:
        events.unregister("before-parameter-build.ec2.CreateSnapshots", ec2_rejects_root_in_exclude_data_volumes)

    [spec] = requests
    assert spec["ExcludeBootVolume"] is True
    assert spec["ExcludeDataVolumeIds"] == [web.volume_ids["/dev/sdg"]]
    assert [s["volume_id"] for s in backup["snapshots"]] == [web.volume_ids["/dev/sdf"]]
    assert {s["VolumeId"] for s in account.snapshots(web.instance_id)} == {web.volume_ids["/dev/sdf"]}


def test_check_names_a_snapshot_deleted_before_it_completed(account):
    # The check asks by snapshot-id filter, which leaves a deleted snapshot out (SnapshotIds would
    # fail the whole call with InvalidSnapshot.NotFound); it must say which snapshot disappeared,
    # once EC2 has had the time to list a new snapshot (eventual consistency).
    job = started(account)
    gone = job["backup"]["snapshots"][0]["snapshot_id"]
    account.ec2.delete_snapshot(SnapshotId=gone)
    job["backup"]["waited_seconds"] = NEW_RESOURCE_VISIBILITY_SECONDS

    with pytest.raises(SnapshotFailedError, match=f"disappeared before completing: {gone}$"):
        account.invoke(check.handler, job)
    assert account.tap.calls["ec2:DescribeSnapshots"] == 1


def test_check_waits_for_a_new_snapshot_ec2_does_not_list_yet(account):
    # "Eventual consistency in the Amazon EC2 API": a resource just created may be missing from
    # the next Describe. Shortly after CreateSnapshots, a snapshot not listed is still pending.
    job = started(account)
    unlisted = job["backup"]["snapshots"][0]["snapshot_id"]
    account.ec2.delete_snapshot(SnapshotId=unlisted)

    result = account.invoke(check.handler, job)
    assert result["status"] == "pending" and unlisted in [s["snapshot_id"] for s in result["snapshots"]]


def test_rerun_target_that_cannot_be_backed_up_is_skipped_without_ec2_calls(account):
    gone = "i-0123456789abcdef0"
    from smart_vault.handlers import discover

    run = run_context()
    result = account.invoke(
        discover.handler,
        {
            "event": {"time": run.run_time, "instance_ids": [gone]},
            "execution_arn": run.execution_arn,
            "execution_name": run.execution_name,
        },
    )
    body = account.s3.get_object(Bucket=result["inventory"]["bucket"], Key=result["inventory"]["key"])["Body"]
    [item] = json.loads(body.read())
    job = {"instance": item, "run": result["run"]}
    account.tap.reset_counts()

    job["backup"] = account.invoke(snapshot.handler, job)
    job["backup"] = account.invoke(check.handler, job)
    outcome = account.invoke(prune.handler, job)

    assert outcome["status"] == "skipped"
    assert outcome["reason"] == "instance does not exist (named in instance_ids)"
    assert not any(call.startswith("ec2:") for call in account.tap.calls)
    summary = account.invoke(notify.handler, {"action": "summarize", **result})
    assert (summary["skipped"], summary["failed"]) == (1, 0)
    assert summary["skipped_instances"] == [
        {"instance_id": gone, "name": "", "reason": "instance does not exist (named in instance_ids)"}
    ]
