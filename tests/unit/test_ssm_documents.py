"""The shipped example SSM documents (ssm-documents/): the Linux freeze and thaw scripts run for
real in bash, with fsfreeze replaced by a stub that records what it is asked to do."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

DOCUMENTS = Path(__file__).resolve().parents[2] / "ssm-documents"
STUB = """#!/bin/bash
# fsfreeze -f|-u MOUNT: recorded; -u of a mount not frozen fails as the kernel answers it.
flag=$1 mount=$2
if [ "$flag" = -u ] && ! grep -qx "$mount" "$FROZEN" 2>/dev/null; then
  echo "fsfreeze: $mount: unfreeze failed: Invalid argument" >&2; exit 1
fi
if [ "$flag" = -f ] && [ "$mount" = "$FAIL_ON" ]; then echo "fsfreeze: $mount: freeze failed" >&2; exit 1; fi
echo "$flag $mount" >> "$CALLS"
if [ "$flag" = -f ]; then echo "$mount" >> "$FROZEN"
else grep -vx "$mount" "$FROZEN" > "$FROZEN.new"; mv "$FROZEN.new" "$FROZEN"; fi
"""


def script(name: str, **parameters: str) -> str:
    document = json.loads((DOCUMENTS / f"{name}.json").read_text())
    assert document["schemaVersion"] == "2.2"
    (step,) = document["mainSteps"]
    assert step["action"] == "aws:runShellScript"
    text = "\n".join(step["inputs"]["runCommand"])
    for key, spec in document.get("parameters", {}).items():
        text = text.replace(f"{{{{ {key} }}}}", parameters.get(key, spec["default"]))
    assert "{{" not in text
    return text


@pytest.fixture
def host(tmp_path):
    stub = tmp_path / "bin" / "fsfreeze"
    stub.parent.mkdir()
    stub.write_text(STUB)
    stub.chmod(0o755)
    env = {
        **os.environ,
        "PATH": f"{stub.parent}:{os.environ['PATH']}",
        "SMART_VAULT_STATE": str(tmp_path / "state"),
        "CALLS": str(tmp_path / "calls"),
        "FROZEN": str(tmp_path / "frozen"),
        "FAIL_ON": "",
    }

    def run(name: str, **parameters: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", "-c", script(name, **parameters)], env=env, capture_output=True, text=True, timeout=30
        )

    run.calls = lambda: (tmp_path / "calls").read_text().split("\n")[:-1]  # type: ignore[attr-defined]
    run.env = env  # type: ignore[attr-defined]
    return run


def test_freeze_then_thaw_freezes_each_mount_and_thaws_it(host):
    frozen = host("SmartVault-FsFreeze", MountPoints="/data /logs", WatchdogSeconds="30")
    assert frozen.returncode == 0, frozen.stderr
    thawed = host("SmartVault-FsThaw")
    assert thawed.returncode == 0, thawed.stderr
    assert host.calls() == ["-f /data", "-f /logs", "-u /data", "-u /logs"]


def test_the_watchdog_thaws_by_itself_and_the_late_thaw_says_so(host):
    assert host("SmartVault-FsFreeze", MountPoints="/data", WatchdogSeconds="1").returncode == 0
    deadline = time.monotonic() + 10
    while host.calls()[-1:] != ["-u /data"] and time.monotonic() < deadline:
        time.sleep(0.2)
    assert host.calls() == ["-f /data", "-u /data"]  # thawed with no post script
    late = host("SmartVault-FsThaw")
    assert late.returncode != 0 and "watchdog thawed" in late.stderr


def test_a_failed_freeze_thaws_what_it_froze_and_fails(host):
    host.env["FAIL_ON"] = "/logs"
    failed = host("SmartVault-FsFreeze", MountPoints="/data /logs /db")
    assert failed.returncode == 1 and "freeze of /logs failed" in failed.stderr
    assert host.calls() == ["-f /data", "-u /data"]


def test_the_root_file_system_is_never_frozen(host):
    refused = host("SmartVault-FsFreeze", MountPoints="/data /")
    assert refused.returncode == 2 and "SSM Agent" in refused.stderr
