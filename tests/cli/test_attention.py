"""What needs an operator's attention, through the CLI: `status` per run (breakers with their
approve command, orphans, dry runs, drills), its filters and --follow; `approve --list` and
`--dry-run`; `drill [--follow]`; `settings`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from smart_vault_cli import main
from tests.cli.conftest import Stack, deployed

# web-1 has three snapshots past retention but may delete one per run: its breaker trips.
BREAKER = {
    "name": "cli breaker",
    "settings": {"keep_min": 1, "retention_days": 7, "max_deletes_per_run": 1},
    "instances": [{"name": "web-1", "tags": {"backup": "True"}, "volumes": [{"device": "/dev/xvda"}]}],
    "existing_snapshots": [
        {"label": f"old-{n}", "instance": "web-1", "device": "/dev/xvda", "age_days": 20 + n} for n in range(3)
    ],
    "runs": [{"at": "2026-11-26T03:00:00Z"}],
}


# The same snapshots, no breaker in the way: a run deletes the two past retention beyond keep_min.
DRY = BREAKER | {"name": "cli dry run", "settings": {"keep_min": 1, "retention_days": 7, "max_delete_fraction": 1.0}}


@pytest.fixture
def breaker_stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    monkeypatch.setattr(main, "_POLL_SECONDS", 0)
    with deployed(BREAKER, monkeypatch) as emulated:
        yield emulated


def _json(stack: Stack, *args: str) -> Any:
    result = stack.cli(*args, "--output", "json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _one_run(stack: Stack, *args: str) -> dict[str, Any]:
    stack.cli("run", "--follow", *args)
    (row,) = _json(stack, "status")
    return dict(row)


def test_status_names_each_stopped_volume_with_its_approve_command(breaker_stack: Stack):
    row = _one_run(breaker_stack)
    root = next(iter(breaker_stack.account.volumes))
    assert row["breakers"] == [f"{root} in us-east-1"]
    (command,) = row["approve"]
    assert command.startswith("smart-vault approve 2") and command.endswith(f"--volume {root} --in-region us-east-1")
    assert row["dry_run"] is False and row["would_delete"] is None
    table = breaker_stack.cli("status", "--output", "text").output
    assert f"breaker on {root} in us-east-1: {command}" in table


def test_approve_list_shows_open_breakers_and_dry_run_writes_nothing(breaker_stack: Stack):
    assert "No open circuit breaker." in breaker_stack.cli("approve", "--list").output
    row = _one_run(breaker_stack)
    (opened,) = _json(breaker_stack, "approve", "--list")
    assert opened["approved"] is False and len(opened["would_delete"]) == 3
    assert opened["approve"] == row["approve"][0]
    run_id = opened["run_id"]

    dry = breaker_stack.cli("approve", run_id, "--dry-run")
    assert dry.exit_code == 0 and "would approve" in dry.output and "nothing written" in dry.output
    assert _json(breaker_stack, "approve", "--list")[0]["approved"] is False  # nothing written

    assert _json(breaker_stack, "approve", run_id)[0]["snapshot_ids"] == sorted(opened["would_delete"])
    (released,) = _json(breaker_stack, "approve", "--list")
    assert released["approved"] is True
    assert "yes (the next run deletes them)" in breaker_stack.cli("approve", "--list", "--output", "text").output


def test_approve_needs_a_run_id_or_list(breaker_stack: Stack):
    assert breaker_stack.cli("approve").exit_code == 2
    assert "--list takes no RUN_ID" in breaker_stack.cli("approve", "20261126T030000Z", "--list").output


def test_status_marks_a_dry_run_with_what_it_would_delete(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(main, "_POLL_SECONDS", 0)
    with deployed(DRY, monkeypatch) as stack:
        dry = _one_run(stack, "--dry-run")
        assert dry["dry_run"] is True and dry["would_delete"] > 0 and dry["deleted"] == 0
        line = f"DRY RUN: would delete {dry['would_delete']} snapshot(s)"
        assert line in stack.cli("status", "--output", "text").output
        stack.cli("run", "--follow")
        real = _json(stack, "status")[0]
        assert real["dry_run"] is False and real["would_delete"] is None
        assert real["deleted"] == dry["would_delete"]  # what the dry run said is what a run does


def test_status_shows_orphans_pruned_and_kept(stack: Stack, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(main, "_POLL_SECONDS", 0)
    web = stack.account.instance_ids["web-1"]
    root = next(v for v, (n, d) in stack.account.volumes.items() if n == "web-1" and d == "/dev/xvda")
    stack.account.ec2.detach_volume(VolumeId=root, InstanceId=web)
    orphans = _one_run(stack)["orphans"]
    assert orphans["status"] == "pruned" and orphans["volumes"] == 1
    assert orphans["deleted"] + orphans["kept"] == 2  # web-old and web-recent, down to orphan_keep 1
    line = f"orphans: pruned {orphans['deleted']}, kept {orphans['kept']}"
    assert line in stack.cli("status", "--output", "text").output


def test_status_filters_by_status_and_start(stack: Stack, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(main, "_POLL_SECONDS", 0)
    stack.cli("run", "--follow")  # bad-1 fails: FAILED
    stack.cli("run", "--dry-run", "--follow")  # SUCCEEDED
    assert [r["status"] for r in _json(stack, "status", "--status", "FAILED")] == ["FAILED"]
    assert [r["status"] for r in _json(stack, "status", "--status", "SUCCEEDED")] == ["SUCCEEDED"]
    assert len(_json(stack, "status", "--since", "1h")) == 2
    assert _json(stack, "status", "--since", "2099-01-01T00:00:00Z") == []
    bad = stack.cli("status", "--since", "yesterday")
    assert bad.exit_code == 2 and "--since must be" in bad.output


def test_status_execution_follow_waits_and_exits_on_its_status(stack: Stack, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(main, "_POLL_SECONDS", 0)
    stack.cli("run")
    (name,) = stack.execution_names()
    followed = stack.cli("status", name, "--follow", "--output", "json")
    assert followed.exit_code == 1  # bad-1 failed: the execution FAILED
    document = json.loads(followed.stdout)
    assert document["execution"]["status"] == "FAILED" and len(document["instances"]) == 3
    assert stack.cli("status", "--follow").exit_code == 2  # --follow needs an execution


def test_drill_starts_the_restore_drill_and_status_shows_its_result(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    monkeypatch.setattr(main, "_POLL_SECONDS", 0)
    stack.cli("run", "--follow")  # recovery points to drill
    callers: set[tuple[str, str]] = set()
    stack.sim.tap.checks.append(lambda call: callers.add((call.caller, f"{call.service}:{call.operation}")))
    followed = stack.cli("drill", "--follow", "--output", "json")
    assert followed.exit_code == 0, followed.output
    document = json.loads(followed.stdout)
    assert document["status"] == "SUCCEEDED" and document["drill"]["passed"] == 1
    denied = stack.sim.authorizer.denied if stack.sim.authorizer else []
    assert [d for d in denied if "drill" in d] == []
    # The drill machine's own calls were made, and authorized, with the drill machine's role, as
    # on AWS: not the backup machine's, though the operator (not the simulator) started it.
    assert ("drill-state-machine", "lambda:Invoke") in callers
    assert not {c for c in callers if c[0] == "state-machine"}, callers
    drills = [r for r in _json(stack, "status") if r["workflow"] == "drill"]
    assert len(drills) == 1 and drills[0]["name"] == document["execution_arn"].rsplit(":", 1)[1]
    assert drills[0]["drill"]["status"] == document["drill"]["status"]
    drilled = document["drill"]
    assert (
        f"drill {drilled['status']}: {drilled['passed']}/{drilled['instances']} restored"
        in stack.cli("status", "--output", "text").output
    )
    # `points` says which points a drill verified, and marks the others never verified.
    listed = json.loads(stack.cli("points", "--json").output)
    verified = [p for p in listed if p["verified_at"]]
    assert len({p["instance_id"] for p in verified}) == drilled["passed"] == 1
    assert any(p["verified_at"] is None for p in listed)
    assert "never" in stack.cli("points").output
    # `status` says where the drill proved the point and what it found there.
    assert drills[0]["drill"]["region"] == "us-east-1" and drills[0]["drill"]["filesystems"] == ["ext4"]
    assert "restored in us-east-1, verified ext4 (" in stack.cli("status", "--output", "text").output

    # A drill execution by its name, as `status` lists it (not only by its ARN): its instances.
    name = drills[0]["name"]
    detail = _json(stack, "status", name)
    assert (detail["workflow"], detail["execution"]["status"]) == ("drill", "SUCCEEDED")
    rows = {r["status"]: r for r in detail["instances"]}
    assert sorted(rows) == ["no_restorable_point", "passed"] and rows["passed"]["volumes"] > 0
    assert rows["no_restorable_point"]["detail"] == "no managed snapshot yet"  # bad-1 never backed up
    assert detail["drill"] == drilled
    assert f"drill {name}: SUCCEEDED" in stack.cli("status", name).output
    drawn = _json(stack, "graph", "--execution", name, "-o", str(tmp_path / "drill.svg"))
    assert drawn["title"].startswith(f"Smart Vault drill execution {name}")


def test_settings_shows_the_configuration_the_functions_run_with(breaker_stack: Stack):
    document = _json(breaker_stack, "settings")
    assert document["source"].endswith(":function:smart-vault-discover")
    assert document["settings"]["max_deletes_per_run"] == 1 and document["settings"]["retention_days"] == 7
    assert document["environment"]["MAX_DELETES_PER_RUN"] == "1"
    text = breaker_stack.cli("settings", "--output", "text").output
    assert "max_deletes_per_run\t1" in text
