"""Every verb against an emulated deployed stack, failure paths included."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import boto3
import pytest
from click.testing import CliRunner
from PIL import Image

from smart_vault_cli.graph import OUTCOMES
from smart_vault_cli.main import cli


def test_run_follow_reports_and_exits_1_on_failed_run(stack):
    result = stack.cli("run", "--follow")
    assert result.exit_code == 1, result.output
    assert "FAILED: 2 backed up or skipped, 1 failed" in result.output


def test_dry_run_succeeds_and_changes_nothing(stack):
    before = stack.account.ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]
    result = stack.cli("run", "--dry-run", "--follow")
    assert result.exit_code == 0, result.output
    assert "SUCCEEDED" in result.output
    after = stack.account.ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]
    assert len(after) == len(before)


def test_run_without_follow_prints_the_execution(stack):
    result = stack.cli("run")
    assert result.exit_code == 0
    assert "execution: arn:aws:states:" in result.output


def test_rerun_uses_the_same_input_and_creates_no_duplicates(stack):
    stack.cli("run", "--follow")
    first = stack.execution_names()[0]
    snapshots = len(stack.account.ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"])
    result = stack.cli("rerun", first)
    assert result.exit_code == 1  # bad-1 still fails
    assert len(stack.execution_names()) == 2
    assert len(stack.account.ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]) == snapshots


def test_rerun_unknown_execution(stack):
    result = stack.cli("rerun", "no-such-execution")
    assert result.exit_code == 2
    assert "no such execution: no-such-execution" in result.output


def test_redrive_says_why_it_cannot(stack):
    stack.cli("run", "--dry-run", "--follow")  # a run that succeeded has nothing to redrive
    result = stack.cli("redrive", stack.execution_names()[0])
    assert result.exit_code == 2
    assert "cannot redrive" in result.output and "smart-vault rerun" in result.output


def test_redrive_re_attempts_the_failed_instance_under_the_same_execution(stack):
    stack.cli("run", "--follow")
    name = stack.execution_names()[0]
    still_refused = stack.cli("rerun", name, "--redrive")  # bad-1 is still refused
    assert still_refused.exit_code == 1, still_refused.output
    assert "FAILED: 2 backed up or skipped, 1 failed" in still_refused.output
    stack.sim.tap.faults.clear()  # the permission is fixed
    result = stack.cli("redrive", name, "--follow")
    assert result.exit_code == 0, result.output
    assert "SUCCEEDED: 3 backed up or skipped, 0 failed" in result.output
    assert stack.execution_names() == [name]
    listing = stack.cli("status")
    row = next(line for line in listing.output.splitlines() if name[:14] in line)
    # Two redrives; the run as they left it: 3 instances backed up, 0 failed, 4 snapshots created.
    assert [cell.strip() for cell in row.split("│")[3:8]] == ["SUCCEEDED", "2", "3", "0", "4"]


def test_status_lists_and_details(stack):
    stack.cli("run", "--follow")
    name = stack.execution_names()[0]
    listing = stack.cli("status")
    assert listing.exit_code == 0, listing.output
    assert name[:20] in listing.output and "FAILED" in listing.output
    detail = stack.cli("status", name)
    assert detail.exit_code == 0, detail.output
    assert "bad-1" in detail.output and "UnauthorizedOperation" in detail.output
    assert "web-1" in detail.output and "backed_up" in detail.output


def test_status_unknown_execution(stack):
    result = stack.cli("status", "nope")
    assert result.exit_code == 2 and "no such execution" in result.output


def test_plan_shows_backups_and_prunes_without_changing_anything(stack):
    before = stack.account.ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]
    result = stack.cli("plan")
    assert result.exit_code == 0, result.output
    assert "web-1" in result.output and "db-1" in result.output and "other" not in result.output
    web_old = next(sid for sid, label in stack.account.labels.items() if label == "web-old")
    assert web_old in result.output
    assert stack.account.ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"] == before
    assert stack.execution_names() == []


def test_no_such_stack(stack):
    result = CliRunner().invoke(cli, ["--stack", "Nope", "--region", "us-east-1", "status"])
    assert result.exit_code == 2
    assert "no such stack: Nope" in result.output


def test_no_credentials(monkeypatch, tmp_path):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    result = CliRunner().invoke(cli, ["--region", "us-east-1", "status"])
    assert result.exit_code == 2
    assert "no AWS credentials found" in result.output


def test_plan_lists_orphaned_volumes_and_per_volume_breakers(stack):
    # web-1's root volume is detached after its snapshots were taken: those are orphans now.
    ec2 = stack.account.ec2
    web = stack.account.instance_ids["web-1"]
    root = next(v for v, (n, d) in stack.account.volumes.items() if n == "web-1" and d == "/dev/xvda")
    ec2.detach_volume(VolumeId=root, InstanceId=web)
    result = stack.cli("plan")
    assert result.exit_code == 0, result.output
    assert "Orphaned volumes (pruned down to orphan_keep): 1" in result.output
    assert root in result.output


def test_approve_refuses_bad_or_unknown_runs(stack):
    assert "RUN_ID must look like" in stack.cli("approve", "yesterday").output
    result = stack.cli("approve", "20261126T030000Z")
    assert result.exit_code == 2 and "no audit record for run 20261126T030000Z" in result.output


@pytest.mark.parametrize("verb", ["run", "rerun", "redrive", "status", "plan", "graph", "simulate", "approve"])
def test_every_verb_has_help(verb):
    result = CliRunner().invoke(cli, [verb, "--help"])
    assert result.exit_code == 0 and "Usage:" in result.output


def _colours(path):
    image = Image.open(path).convert("RGB")
    return {f"#{r:02x}{g:02x}{b:02x}" for r, g, b in image.getdata()}


def test_graph_of_an_execution_is_a_png_with_outcome_colours(stack, tmp_path):
    stack.cli("run", "--follow")
    out = tmp_path / "run.png"
    result = stack.cli("graph", "--execution", stack.execution_names()[0], "-o", str(out))
    assert result.exit_code == 0, result.output
    image = Image.open(out)
    assert image.format == "PNG" and image.width > 400 and image.height > 400
    colours = _colours(out)
    assert OUTCOMES["succeeded"][0] in colours and OUTCOMES["failed"][0] in colours


def test_graph_of_a_simulator_report(tmp_path):
    scenario = {
        "name": "graph",
        "instances": [
            {"name": "a", "tags": {"backup": "True"}, "volumes": [{"device": "/dev/xvda"}]},
            {"name": "b", "tags": {"backup": "True"}, "volumes": [{"device": "/dev/xvda"}]},
        ],
        "faults": [
            {"operation": "CreateSnapshots", "instance": "b", "error": "UnauthorizedOperation"},
            {"operation": "CreateSnapshots", "instance": "a", "error": "RequestLimitExceeded", "count": 1},
        ],
        "runs": [{"at": "2026-11-26T03:00:00Z"}],
    }
    (tmp_path / "s.json").write_text(json.dumps(scenario))
    runner = CliRunner()
    assert (
        runner.invoke(cli, ["simulate", str(tmp_path / "s.json"), "--report", str(tmp_path / "r.json")]).exit_code == 0
    )
    result = runner.invoke(cli, ["graph", "--report", str(tmp_path / "r.json"), "-o", str(tmp_path / "g.png")])
    assert result.exit_code == 0, result.output
    colours = _colours(tmp_path / "g.png")
    for outcome in ("succeeded", "caught", "failed", "not_reached"):
        assert OUTCOMES[outcome][0] in colours, outcome
    svg = runner.invoke(cli, ["graph", "--report", str(tmp_path / "r.json"), "-o", str(tmp_path / "g.svg")])
    assert svg.exit_code == 0 and (tmp_path / "g.svg").read_text().lstrip().startswith("<?xml")
    bad = runner.invoke(
        cli, ["graph", "--report", str(tmp_path / "r.json"), "--run", "5", "-o", str(tmp_path / "x.png")]
    )
    assert bad.exit_code == 2 and "--run 5" in bad.output


def test_plan_and_status_show_lock_expiry(stack):
    # Given web-old (30 days, due for deletion) locked in governance mode for 60 more days
    web_old = next(sid for sid, label in stack.account.labels.items() if label == "web-old")
    stack.account.ec2.lock_snapshot(SnapshotId=web_old, LockMode="governance", LockDuration=60)
    until = "2027-01-25T03:00:00Z"  # the simulator's clock (the first run) + 60 days
    # Then plan keeps it and says until when, instead of listing it as a deletion
    planned = stack.cli("plan")
    assert planned.exit_code == 0, planned.output
    assert f"kept {web_old}: locked until {until}" in " ".join(planned.output.split())
    # And a run keeps it too; status shows the kept count, the first expiry and the snapshot
    stack.cli("run", "--follow")
    listing = stack.cli("status")
    assert listing.exit_code == 0, listing.output
    assert until[:10] in listing.output
    detail = stack.cli("status", stack.execution_names()[0])
    assert f"kept {web_old}: locked until {until}" in " ".join(detail.output.split())
    assert web_old in {s["SnapshotId"] for s in stack.account.ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]}


def test_status_names_a_failed_copy_as_needing_attention(copy_stack):
    # Given the destination refusing every copy: web-1 fails at Copy and keeps its local snapshot.
    copy_stack.sim.tap.fail("CopySnapshot", "InternalError")
    copy_stack.sim.run_at(0, datetime(2026, 11, 26, 3, tzinfo=UTC))
    (row,) = json.loads(copy_stack.cli("status", "--output", "json").stdout)
    (line,) = row["copy_problems"]
    assert line.startswith("copy failed for web-1 (i-") and "InternalError" in line
    assert line in copy_stack.cli("status", "--output", "text").output


def test_status_and_plan_show_copies_per_destination(copy_stack):
    # Given one run that copied web-1's snapshot to us-west-2.
    copy_stack.sim.run_at(0, datetime(2026, 11, 26, 3, tzinfo=UTC))
    name = copy_stack.execution_names()[0]
    listing = copy_stack.cli("status")
    assert listing.exit_code == 0, listing.output
    assert "1 (pruned 0)" in listing.output
    detail = copy_stack.cli("status", name)
    assert detail.exit_code == 0, detail.output
    assert "us-west-2 1/1 (pruned 0)" in detail.output
    before = boto3.client("ec2", region_name="us-west-2").describe_snapshots(OwnerIds=["self"])["Snapshots"]
    plan = copy_stack.cli("plan")
    assert plan.exit_code == 0, plan.output
    assert "Off-site copies per destination" in plan.output and "us-west-2" in plan.output
    assert boto3.client("ec2", region_name="us-west-2").describe_snapshots(OwnerIds=["self"])["Snapshots"] == before
