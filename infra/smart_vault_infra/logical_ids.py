"""Logical ids that ignore the concern constructs, so moving resources into them replaces nothing.

CDK derives a resource's CloudFormation logical id from its construct path below the stack. The
stack is composed of one construct per concern (Storage, Functions, ...); the ids are computed as
if those constructs were not there, i.e. exactly as when every resource was the stack's own child.
"""

from __future__ import annotations

import hashlib
import re

# aws-cdk-lib core, makeUniqueId: "Default" is left out of the path, "Resource" out of the readable
# part; the id is the readable part plus 8 hex digits of the path's MD5.
_HIDDEN = "Default"
_HIDDEN_FROM_HUMAN = "Resource"
_HASH_LENGTH = 8
_MAX_HUMAN_LENGTH = 240
_MAX_ID_LENGTH = 255


def _alphanumeric(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]", "", text)


def logical_id(path: list[str]) -> str:
    """The logical id CDK gives the construct at this path (ids below the stack)."""
    components = [c for c in path if c != _HIDDEN]
    if not components:
        raise ValueError("a logical id needs a path")
    if len(components) == 1 and len(_alphanumeric(components[0])) <= _MAX_ID_LENGTH:
        return _alphanumeric(components[0])
    digest = hashlib.md5("/".join(components).encode(), usedforsecurity=False).hexdigest()
    readable: list[str] = []
    for component in components:  # a child named like the end of its parent is not repeated
        if not readable or not readable[-1].endswith(component):
            readable.append(component)
    human = "".join(_alphanumeric(c) for c in readable if c != _HIDDEN_FROM_HUMAN)
    return human[:_MAX_HUMAN_LENGTH] + digest[:_HASH_LENGTH].upper()
