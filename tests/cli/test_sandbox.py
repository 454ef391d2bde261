"""`smart-vault sandbox`: the scenario's account served on a local endpoint, every verb family
run against it as an operator would, each CLI a separate process speaking HTTP to it."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from click.testing import CliRunner

from smart_vault_cli import sandbox as sandbox_cli
from smart_vault_cli.main import cli
from smart_vault_sim.scenario import parse_scenario

SCENARIO = {
    "name": "sandbox rehearsal",
    "settings": {"retention_days": 7, "keep_min": 1},
    "instances": [
        {"name": "web-1", "tags": {"backup": "True"}, "volumes": [{"device": "/dev/xvda"}, {"device": "/dev/sdf"}]},
        {"name": "db-1", "tags": {"backup": "True"}, "volumes": [{"device": "/dev/xvda"}]},
    ],
    # Three expired snapshots of one volume: deleting 3 of its 4 trips the circuit breaker.
    "existing_snapshots": [
        {"label": f"db-old-{age}", "instance": "db-1", "device": "/dev/xvda", "age_days": age} for age in (30, 31, 32)
    ],
    # web-1 fails once: the run FAILS, and a redrive completes it.
    "faults": [{"operation": "CreateSnapshots", "instance": "web-1", "error": "UnauthorizedOperation", "count": 1}],
    "runs": [{"at": "2026-11-26T03:00:00Z"}],
}
CLI = [sys.executable, "-m", "smart_vault_cli.main"]
STARTUP_SECONDS = 240


@dataclass
class Sandbox:
    env: dict[str, str]
    report: dict[str, Any]

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*CLI, *args], env=self.env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    folder = tmp_path_factory.mktemp("sandbox")
    scenario, report = folder / "scenario.json", folder / "report.json"
    scenario.write_text(json.dumps(SCENARIO))
    server = subprocess.Popen(
        [*CLI, "sandbox", str(scenario), "--port", "0", "--output", "json", "--report", str(report)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
    )
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        deadline = time.monotonic() + STARTUP_SECONDS
        assert server.stdout is not None
        while time.monotonic() < deadline:
            line = server.stdout.readline()
            if not line:
                pytest.fail(f"the sandbox ended before serving: {server.communicate()[1][-3000:]}")
            if line.startswith("{"):  # --output json: one document, the endpoint and its environment
                document = json.loads(line)
                assert document["unset"] == ["AWS_PROFILE", "AWS_SESSION_TOKEN"]
                env.update(document["environment"])
                break
        assert env["AWS_ENDPOINT_URL"].startswith("http://127.0.0.1:")
        yield Sandbox(env=env, report=json.loads(Path(report).read_text()))
    finally:
        server.terminate()  # SIGTERM: the sandbox stops its server and exits 0
        _, errors = server.communicate(timeout=60)
    assert server.returncode == 0, errors[-3000:]


def _run(sandbox: Sandbox) -> dict[str, Any]:
    return dict(sandbox.report["runs"][0])


def test_status_lists_the_scenario_run_through_the_endpoint(sandbox: Sandbox) -> None:
    run = _run(sandbox)
    name = run["execution"]["arn"].rsplit(":", 1)[1]

    listed = sandbox.cli("status")
    detail = sandbox.cli("status", name)

    assert listed.returncode == 0, listed.stderr
    assert name in listed.stdout and "FAILED" in listed.stdout
    assert detail.returncode == 0, detail.stderr
    for row in run["instances"]:
        assert row["instance_id"] in detail.stdout


def test_points_and_restore_dry_run_show_the_reported_snapshots(sandbox: Sandbox) -> None:
    db = next(r for r in _run(sandbox)["instances"] if r["name"] == "db-1")

    points = sandbox.cli("points", "db-1", "--json")
    restore = sandbox.cli("restore", "db-1", "--dry-run")

    assert points.returncode == 0, points.stderr
    newest = json.loads(points.stdout)[0]
    assert [v["snapshot_id"] for v in newest["volumes"]] == db["snapshots"]
    assert restore.returncode == 0, restore.stderr
    assert f"CreateVolume {db['snapshots'][0]}" in restore.stdout
    assert "dry run: no problem found; nothing was created" in restore.stdout


def test_plan_and_approve_release_the_tripped_breaker(sandbox: Sandbox) -> None:
    run = _run(sandbox)
    (breaker,) = run["breakers"]

    plan = sandbox.cli("plan")
    approve = sandbox.cli("approve", run["at"].replace("-", "").replace(":", ""))

    assert plan.returncode == 0, plan.stderr
    assert f"circuit breaker on {breaker['volume_id']}" in plan.stdout
    assert approve.returncode == 0, approve.stderr
    assert f"approved {breaker['volume_id']} in us-east-1" in approve.stdout
    assert f"{len(breaker['would_delete'])} snapshot(s)" in approve.stdout


def test_redrive_completes_the_failed_instance(sandbox: Sandbox) -> None:
    run = _run(sandbox)
    name = run["execution"]["arn"].rsplit(":", 1)[1]
    failed = [r["name"] for r in run["instances"] if r["status"] == "failed"]

    redriven = sandbox.cli("redrive", name, "--follow")
    after = sandbox.cli("status", name)

    assert failed == ["web-1"]
    assert redriven.returncode == 0, redriven.stdout + redriven.stderr
    assert redriven.stdout.strip().endswith("0 failed")
    assert "SUCCEEDED" in after.stdout


def test_any_aws_client_gets_the_emulators_answers_and_errors(sandbox: Sandbox) -> None:
    """What the emulator answers in front of moto (DryRun, locks) reaches an HTTP client as AWS
    sends it, errors included (botocore's parsers read them, as the AWS CLI's do)."""
    env = sandbox.env
    ec2 = boto3.Session(
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        region_name=env["AWS_REGION"],
    ).client("ec2", endpoint_url=env["AWS_ENDPOINT_URL"])
    snapshot_id = _run(sandbox)["created"][0]["snapshot_id"]

    with pytest.raises(ClientError) as dry_run:
        ec2.create_volume(SnapshotId=snapshot_id, AvailabilityZone="us-east-1a", DryRun=True)
    with pytest.raises(ClientError) as missing:
        ec2.describe_snapshots(SnapshotIds=["snap-00000000000000000"])
    locked = ec2.describe_locked_snapshots(SnapshotIds=[snapshot_id])

    assert dry_run.value.response["Error"]["Code"] == "DryRunOperation"
    assert missing.value.response["Error"]["Code"] == "InvalidSnapshot.NotFound"
    assert locked["Snapshots"] == []  # moto has no snapshot locks: the emulator answered


def test_a_port_in_use_is_refused_before_the_scenario_runs(tmp_path: Path) -> None:
    scenario = tmp_path / "scenario.json"
    scenario.write_text(json.dumps(SCENARIO))
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        started = time.monotonic()
        result = CliRunner().invoke(cli, ["sandbox", str(scenario), "--port", str(port)])

    assert result.exit_code == 2
    assert f"error: cannot serve on 127.0.0.1:{port}: Address already in use" in result.output
    assert time.monotonic() - started < 5  # refused before the emulated account is built


def test_the_sandbox_prints_the_shell_lines_that_point_at_it(capsys: pytest.CaptureFixture[str]):
    scenario = parse_scenario(SCENARIO)
    sandbox_cli._announce("http://127.0.0.1:5123", scenario, "SmartVault", quiet=True)
    lines = capsys.readouterr().out.splitlines()
    assert "export AWS_ENDPOINT_URL=http://127.0.0.1:5123" in lines
    assert "export SMART_VAULT_STACK=SmartVault" in lines
    assert lines[-1] == "unset AWS_PROFILE AWS_SESSION_TOKEN"
