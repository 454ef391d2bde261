"""Which condition keys a request carries: the Service Authorization Reference's table, per action
and resource type, so the emulator's context holds only keys AWS puts there.

A key the SAR does not list for an action (and the resource type authorized) is absent from the
request context on AWS, and a condition on an absent key does not match (IAM User Guide, "IAM JSON
policy elements: Condition operators"). So a policy that conditions CopySnapshot's source on
``aws:ResourceTag`` is denied on AWS, although the snapshot has tags: the SAR's CopySnapshot row
lists ``snapshot*`` with aws:RequestTag, aws:TagKeys and ec2:* keys only. The rows live in
``sar_condition_keys.json`` (each names its SAR page); this module loads them and filters a
request's context through them in one place, ``request_context``.

Global keys (IAM User Guide, "AWS global condition context keys": aws:SecureTransport,
aws:RequestedRegion, aws:PrincipalArn, aws:SourceArn, ...) are in every request and never
filtered. aws:RequestTag, aws:ResourceTag and aws:TagKeys are not: the SAR lists them per action,
and a service only supplies them where it lists them.
"""

from __future__ import annotations

import fnmatch
import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TABLE = Path(__file__).with_suffix(".json")

# IAM User Guide, "AWS global condition context keys" (principal, network, session and request
# properties). Compared case-insensitively; a trailing "/" entry is a prefix (aws:PrincipalTag/<key>).
GLOBAL_KEYS = frozenset(
    k.lower()
    for k in (
        "aws:CalledVia",
        "aws:CalledViaFirst",
        "aws:CalledViaLast",
        "aws:CurrentTime",
        "aws:EpochTime",
        "aws:FederatedProvider",
        "aws:MultiFactorAuthAge",
        "aws:MultiFactorAuthPresent",
        "aws:PrincipalAccount",
        "aws:PrincipalArn",
        "aws:PrincipalIsAWSService",
        "aws:PrincipalOrgID",
        "aws:PrincipalOrgPaths",
        "aws:PrincipalServiceName",
        "aws:PrincipalServiceNamesList",
        "aws:PrincipalType",
        "aws:Referer",
        "aws:RequestedRegion",
        "aws:ResourceAccount",
        "aws:ResourceOrgID",
        "aws:ResourceOrgPaths",
        "aws:SecureTransport",
        "aws:SourceAccount",
        "aws:SourceArn",
        "aws:SourceIdentity",
        "aws:SourceIp",
        "aws:SourceOrgID",
        "aws:SourceOrgPaths",
        "aws:SourceVpc",
        "aws:SourceVpce",
        "aws:TokenIssueTime",
        "aws:UserAgent",
        "aws:userid",
        "aws:username",
        "aws:ViaAWSService",
        "aws:VpcSourceIp",
    )
)
_GLOBAL_PREFIXES = ("aws:principaltag/",)


class UnlistedAction(KeyError):
    """A request carries condition keys for an action the table has no row for."""


@dataclass(frozen=True)
class Row:
    action: str
    sar: str  # the SAR page the row comes from
    resource_types: Mapping[str, tuple[str, ...]]  # "" : the keys of the row without a resource type

    def keys_for(self, resource_type: str) -> tuple[str, ...]:
        return (*self.resource_types.get("", ()), *self.resource_types.get(resource_type, ()))


@functools.cache
def rows() -> dict[str, Row]:
    """The table, by lower-case action name."""
    raw: dict[str, Any] = json.loads(TABLE.read_text())["actions"]
    return {
        action.lower(): Row(action, row["sar"], {rt.lower(): tuple(keys) for rt, keys in row["resource_types"].items()})
        for action, row in raw.items()
    }


def row(action: str) -> Row | None:
    return rows().get(action.lower())


def matching_actions(pattern: str) -> list[Row]:
    """The table's rows an Action element (``kms:ReEncrypt*``) names."""
    return [r for name, r in rows().items() if fnmatch.fnmatchcase(name, pattern.lower())]


def is_global(key: str) -> bool:
    lowered = key.lower()
    return lowered in GLOBAL_KEYS or lowered.startswith(_GLOBAL_PREFIXES)


@functools.lru_cache(maxsize=4096)
def _listed(pattern: str, key: str) -> bool:
    # aws:ResourceTag/${TagKey}, kms:EncryptionContext:${EncryptionContextKey}, s3:ExistingObjectTag/<key>
    glob = pattern.lower().split("${", 1)[0].split("<", 1)[0]
    if glob != pattern.lower():
        return key.lower().startswith(glob)
    return key.lower() == glob


def listed(action_row: Row, resource_type: str, key: str) -> bool:
    """Does the SAR list ``key`` for this action on this resource type (or action-wide)?"""
    return is_global(key) or any(_listed(p, key) for p in action_row.keys_for(resource_type))


def resource_type(resource: str) -> str:
    """The SAR resource type an ARN names ("" for "*")."""
    if resource == "*" or not resource.startswith("arn:"):
        return ""
    parts = resource.split(":", 5)
    if len(parts) < 6:
        return ""
    service, rest = parts[2], parts[5]
    if service == "s3":
        return "object" if "/" in rest else "bucket"
    if service in ("sns", "sqs"):
        return {"sns": "topic", "sqs": "queue"}[service]
    kind = rest.split("/", 1)[0].split(":", 1)[0]
    return kind.lower()  # snapshot, volume, key, alias, function, stateMachine, execution, log-group


def request_context(action: str, resource: str, context: Mapping[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
    """``context`` with only the keys the SAR lists for ``action`` on ``resource`` (and global keys).

    An action the table lacks may pass only global keys: any other key would be a guess, so the
    caller learns to add the action's SAR row instead."""
    action_row = row(action)
    if action_row is None:
        extra = sorted(k for k in context if not is_global(k))
        if extra:
            raise UnlistedAction(
                f"{action} is not in {TABLE.name}: add its Service Authorization Reference row "
                f"(the request carries {', '.join(extra)})"
            )
        return dict(context)
    kind = resource_type(resource)
    return {k: v for k, v in context.items() if listed(action_row, kind, k)}
