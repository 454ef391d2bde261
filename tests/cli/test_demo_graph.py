"""The README's picture of the demo run is `make graph`'s output for the current workflow: a state
added to statemachine/ without `make graph` leaves docs/demo-run.png stale, and this fails."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image, ImageChops

from smart_vault_cli.main import cli

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot renders the graph")
def test_docs_demo_run_png_is_make_graph_of_the_current_workflow(tmp_path):
    # When the demo is simulated and drawn as `make graph` does
    runner = CliRunner()
    report, picture = tmp_path / "demo-report.json", tmp_path / "demo-run.png"
    simulated = runner.invoke(
        cli, ["simulate", str(ROOT / "scenarios" / "demo.json"), "--report", str(report), "--quiet"]
    )
    assert simulated.exit_code == 0, simulated.output
    drawn = runner.invoke(cli, ["graph", "--report", str(report), "-o", str(picture)])
    assert drawn.exit_code == 0, drawn.output
    # Then the committed picture is that one, pixel for pixel (else: make graph)
    with Image.open(ROOT / "docs" / "demo-run.png") as committed, Image.open(picture) as fresh:
        assert committed.size == fresh.size, "docs/demo-run.png is stale: run make graph"
        difference = ImageChops.difference(committed.convert("RGB"), fresh.convert("RGB"))
        assert difference.getbbox() is None, "docs/demo-run.png is stale: run make graph"
