from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "infra"))


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Synthesize the app once for the whole session (cdk-nag runs as part of it)."""
    from app import build_app

    outdir = tmp_path_factory.mktemp("cdk.out")
    context = json.loads((ROOT / "cdk.json").read_text())["context"]
    app = build_app(context={**context, "alarm_email": "ops@example.com"}, outdir=str(outdir))
    assembly = app.synth()
    stack = assembly.get_stack_by_name("SmartVault")
    return {"outdir": outdir, "template": stack.template, "path": outdir / stack.template_file}


@pytest.fixture(scope="session")
def template(synthesized: dict[str, Any]) -> Any:
    from aws_cdk.assertions import Template

    return Template.from_json(synthesized["template"])
