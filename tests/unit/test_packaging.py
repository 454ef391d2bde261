"""pyproject.toml asks for moto extras that moto has: pip only warns about an unknown extra
("does not provide the extra 'lambda'") and installs nothing for it."""

from __future__ import annotations

import re
import tomllib
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_moto_extra_asked_for_is_one_moto_provides():
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    (moto,) = [d for d in dependencies if d.startswith("moto[")]
    wanted = re.fullmatch(r"moto\[([^\]]+)\]==.*", moto)
    assert wanted is not None, moto
    provided = set(metadata.metadata("moto").get_all("Provides-Extra") or ())
    assert provided, "moto's metadata lists no extras"
    extras = wanted.group(1).split(",")
    assert [e for e in extras if e not in provided] == []
    assert {"ec2", "stepfunctions", "awslambda"} <= set(extras)
