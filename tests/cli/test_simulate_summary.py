"""`smart-vault simulate` as an operator reads it: progress on stderr while it runs, every run's
detail (no longer hidden after five runs), identical runs collapsed, and what happened."""

from __future__ import annotations

import json
import re

import pytest
from click.testing import CliRunner

from smart_vault_cli.main import cli

WEEK = {
    "name": "a week with a failing instance and an AMI pin",
    "settings": {"retention_days": 30, "keep_min": 1},
    "instances": [
        {"name": "web-1", "tags": {"backup": "True"}, "volumes": [{"device": "/dev/xvda"}]},
        {"name": "bad-1", "tags": {"backup": "True"}, "volumes": [{"device": "/dev/xvda"}]},
    ],
    "existing_snapshots": [
        {"label": "golden", "instance": "web-1", "device": "/dev/xvda", "age_days": 90, "used_by_ami": True}
    ],
    "faults": [
        {"operation": "CreateSnapshots", "instance": "bad-1", "error": "UnauthorizedOperation"},
        {"operation": "CreateSnapshots", "instance": "web-1", "error": "RequestLimitExceeded", "count": 1},
    ],
    "runs": [{"at": "2026-11-26T03:00:00Z"}, {"every": "1d", "count": 6}],
}


@pytest.fixture(scope="module")
def week(tmp_path_factory):
    folder = tmp_path_factory.mktemp("week")
    (folder / "s.json").write_text(json.dumps(WEEK))
    result = CliRunner().invoke(cli, ["simulate", str(folder / "s.json"), "--report", str(folder / "r.json")])
    assert result.exit_code == 0, result.output
    return result, json.loads((folder / "r.json").read_text())


def test_simulate_shows_its_progress_on_stderr(week):
    result, report = week
    assert "synthesizing the stack…" in result.stderr
    for number, run in enumerate(report["runs"], start=1):
        assert f"run {number} of 7 at {run['at']}" in result.stderr
    assert "synthesizing" not in result.stdout and "of 7 at" not in result.stdout  # stdout: the summary only


def test_simulate_shows_every_runs_detail_and_collapses_identical_runs(week):
    result, report = week
    out = result.stdout
    # Seven runs: the failing instance is still shown per run, not hidden after five
    assert re.search(r"FAIL bad-1 .*UnauthorizedOperation", out)
    # Run 1 (its throttled CreateSnapshots retried) stands alone; the quiet nights after run 2 are named once
    assert f"Run 1 at {report['runs'][0]['at']}:" in out and f"Run 2 at {report['runs'][1]['at']}:" in out
    assert f"Runs 3-7 ({report['runs'][2]['at']} to {report['runs'][6]['at']}): same as run 2" in out
    assert f"Run 5 at {report['runs'][4]['at']}:" not in out
    # The alert's message is printed once; the next run's identical one refers to it
    assert "(the same message as run 1)" in out


def test_simulate_ends_with_what_happened(week):
    result, report = week
    what = result.stdout.split("What happened over 7 run(s):")[1]
    assert "failures: 2\n    execution FAILED: SmartVault.InstancesFailed 1 instance(s) failed: bad-1" in what
    assert re.search(r"\n    bad-1: Snapshot: .*UnauthorizedOperation.* \(runs 1-7\)", what)
    web = next(row for row in report["runs"][0]["instances"] if row["name"] == "web-1")
    pin = web["kept_by_ami"][0]["image_id"]
    assert f"AMI pins: 1\n    golden kept: used by {pin} (runs 1-7)" in what
    # web-1's throttled CreateSnapshots was retried by Step Functions; bad-1's denial never is
    assert "retries: 1\n    state Snapshot retried 1x (run 1)\n" in what
    assert "CreateSnapshots:RequestLimitExceeded answered 1x (run 1)" in what
    assert "CreateSnapshots:UnauthorizedOperation answered 1x (runs 1-7)" in what
    assert "breakers: none" in what and "orphans: none" in what and "copies refused: none" in what


def test_simulate_quiet_prints_no_progress(tmp_path):
    scenario = {**WEEK, "faults": [], "runs": [{"at": "2026-11-26T03:00:00Z"}]}
    (tmp_path / "s.json").write_text(json.dumps(scenario))
    result = CliRunner().invoke(cli, ["simulate", "--quiet", str(tmp_path / "s.json")])
    assert result.exit_code == 0 and result.stdout == "" and result.stderr == ""


def test_a_drill_says_where_it_restored_what_it_verified_and_why_a_row_failed(tmp_path):
    scenario = {
        "name": "a drill of a good and a corrupt volume",
        "settings": {"drill": {"instances_per_drill": 3}},
        "instances": [
            {"name": "web-1", "tags": {"backup": "True"}, "volumes": [{"device": "/dev/xvda", "filesystem": "xfs"}]},
            {
                "name": "bad-1",
                "tags": {"backup": "True"},
                "volumes": [{"device": "/dev/xvda", "filesystem": "corrupt"}],
            },
        ],
        "runs": [{"at": "2026-11-26T03:00:00Z"}, {"at": "2026-11-29T05:00:00Z", "workflow": "drill"}],
    }
    (tmp_path / "s.json").write_text(json.dumps(scenario))
    result = CliRunner().invoke(cli, ["simulate", str(tmp_path / "s.json"), "--report", str(tmp_path / "r.json")])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert any("drill failed in us-east-1" in line for line in lines)
    [good] = [line for line in lines if "ok   web-1" in line and "point" in line]
    assert "verified xfs" in good
    [bad] = [line for line in lines if "FAIL bad-1" in line]
    assert "step Verify:" in bad and "SHA256 checksum" in bad
