"""Where the repository keeps what the stack deploys: the one place that knows the layout."""

from __future__ import annotations

from pathlib import Path

from smart_vault.constants import DRILL_STATE_MACHINE_FILE, STATE_MACHINE_FILE

ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS_DIR = ROOT / "functions"


def definition_path() -> Path:
    """statemachine/smart_vault.asl.json: deployed by the stack, run by the simulator, drawn by graph."""
    return ROOT / "statemachine" / STATE_MACHINE_FILE


def drill_definition_path() -> Path:
    """statemachine/drill.asl.json: the restore drill's state machine."""
    return ROOT / "statemachine" / DRILL_STATE_MACHINE_FILE
