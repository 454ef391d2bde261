"""A small IAM policy evaluator: enough of AWS's evaluation logic to judge the stack's own policies.

Sources: IAM User Guide, "Policy evaluation logic" (and "Determining whether a request is allowed
or denied within an account"), "IAM JSON policy elements: Condition operators", "Single-valued vs.
multivalued context keys", "IAM JSON policy elements: Resource".

Covered:
- decision order: an explicit ``Deny`` in any policy wins; otherwise an ``Allow`` in an
  identity-based policy or in the resource-based policy of the resource (same account) allows;
  otherwise the request is implicitly denied;
- ``Action``/``NotAction`` (case-insensitive, ``*`` and ``?`` wildcards), ``Resource``/``NotResource``
  (ARN segments matched one by one; a wildcard in the resource segment may span colons),
  ``Principal`` ``*``, ``{"AWS": ...}`` and ``{"Service": ...}`` in resource-based policies;
- condition operators String{Equals,NotEquals,EqualsIgnoreCase,NotEqualsIgnoreCase,Like,NotLike},
  Arn{Equals,Like,NotEquals,NotLike}, Bool, Null and Numeric{Equals,NotEquals,LessThan,
  LessThanEquals,GreaterThan,GreaterThanEquals}, each with ``...IfExists`` and with the
  ``ForAnyValue:``/``ForAllValues:`` set operators; several keys in one operator and several
  operators in one block must all match, several values of one key match if any does (a negated
  operator: if none does); a key missing from the request makes a condition false, except for
  ``IfExists``, negated operators, ``ForAllValues`` and ``Null``.

Not covered (a policy that uses them is refused with ``UnsupportedPolicy``, never guessed):
``NotPrincipal``, policy variables (``${aws:username}``), Date and IpAddress operators, Binary.
Not modelled at all: service control and resource control policies, permission boundaries,
session policies, cross-account access, KMS grants. ARN parsing uses policyuniverse; wildcard
matching uses the standard library's ``fnmatch`` translation with ``[`` taken literally.
"""

from __future__ import annotations

import fnmatch
import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Any

from policyuniverse.arn import ARN


class UnsupportedPolicy(ValueError):
    """A policy uses an IAM feature this evaluator does not model."""


class Decision(Enum):
    ALLOW = "allow"
    EXPLICIT_DENY = "explicit deny"
    IMPLICIT_DENY = "implicit deny"


@dataclass(frozen=True)
class Request:
    """One authorization check: one action on one resource, with its request context."""

    action: str  # "ec2:CreateSnapshots"
    resource: str  # an ARN, or "*" for actions without resource-level permissions
    context: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # condition key -> values
    principal_arn: str = ""  # the role ARN (for Principal {"AWS": ...})
    service_principal: str = ""  # "cloudwatch.amazonaws.com" when a service calls

    def key(self) -> tuple[Any, ...]:
        return (
            self.action.lower(),
            self.resource,
            tuple(sorted((k.lower(), v) for k, v in self.context.items())),
            self.principal_arn,
            self.service_principal,
        )


@functools.lru_cache(maxsize=4096)
def _pattern(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    # IAM knows only * and ?; a "[" in a policy is a literal character, not a character class.
    regex = fnmatch.translate(pattern.replace("[", "\0")).replace("\0", r"\[")
    return re.compile(regex, re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL)


def glob_match(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    return _pattern(pattern, ignore_case).fullmatch(value) is not None


def arn_match(pattern: str, arn: str) -> bool:
    """IAM's ARN matching: partition, service, region and account one by one; the resource part,
    where a wildcard may expand beyond colons, as a whole."""
    if pattern == "*":
        return True
    expected, actual = ARN(pattern), ARN(arn)
    if expected.error or actual.error:
        return glob_match(pattern, arn)
    segments = (
        (expected.partition, actual.partition),
        (expected.tech, actual.tech),
        (expected.region, actual.region),
        (expected.account_number, actual.account_number),
    )
    return all(glob_match(p or "", v or "") for p, v in segments) and glob_match(expected.name or "", actual.name or "")


def _values(raw: Any) -> tuple[str, ...]:
    items = raw if isinstance(raw, list) else [raw]
    return tuple(str(v).lower() if isinstance(v, bool) else str(v) for v in items)


def _check_literal(value: str, where: str) -> None:
    if "${" in value:
        raise UnsupportedPolicy(f"{where}: policy variables are not modelled ({value})")


_NEGATED = {
    "StringNotEquals",
    "StringNotEqualsIgnoreCase",
    "StringNotLike",
    "ArnNotEquals",
    "ArnNotLike",
    "NumericNotEquals",
}


def _numeric(op: str, policy: str, value: str) -> bool:
    try:
        a, b = float(value), float(policy)
    except ValueError:
        return False
    return {
        "NumericEquals": a == b,
        "NumericNotEquals": a == b,  # negation applied by the caller
        "NumericLessThan": a < b,
        "NumericLessThanEquals": a <= b,
        "NumericGreaterThan": a > b,
        "NumericGreaterThanEquals": a >= b,
    }[op]


def _positive(op: str) -> str:
    """The operator whose match a negated operator negates."""
    return op.replace("Not", "", 1) if op in _NEGATED else op


def _matches(op: str, policy: str, value: str) -> bool:
    base = _positive(op)
    if base == "StringEquals":
        return policy == value
    if base == "StringEqualsIgnoreCase":
        return policy.lower() == value.lower()
    if base == "StringLike":
        return glob_match(policy, value)
    if base in ("ArnEquals", "ArnLike"):
        return arn_match(policy, value)
    if base == "Bool":
        return policy.lower() == value.lower()
    if base.startswith("Numeric"):
        return _numeric(base, policy, value)
    raise UnsupportedPolicy(f"condition operator {op} is not modelled")


_OPERATORS = {
    "StringEquals",
    "StringNotEquals",
    "StringEqualsIgnoreCase",
    "StringNotEqualsIgnoreCase",
    "StringLike",
    "StringNotLike",
    "ArnEquals",
    "ArnLike",
    "ArnNotEquals",
    "ArnNotLike",
    "Bool",
    "Null",
    "NumericEquals",
    "NumericNotEquals",
    "NumericLessThan",
    "NumericLessThanEquals",
    "NumericGreaterThan",
    "NumericGreaterThanEquals",
}


@dataclass(frozen=True)
class Condition:
    qualifier: str  # "", "ForAnyValue", "ForAllValues"
    operator: str  # without IfExists
    if_exists: bool
    key: str  # lower-case
    values: tuple[str, ...]

    @classmethod
    def parse(cls, full_operator: str, key: str, raw: Any, where: str) -> Condition:
        qualifier, _, operator = full_operator.rpartition(":")
        if qualifier not in ("", "ForAnyValue", "ForAllValues"):
            raise UnsupportedPolicy(f"{where}: set operator {qualifier} is not modelled")
        if_exists = operator.endswith("IfExists")
        operator = operator.removesuffix("IfExists")
        if operator not in _OPERATORS:
            raise UnsupportedPolicy(f"{where}: condition operator {full_operator} is not modelled")
        values = _values(raw)
        for value in values:
            _check_literal(value, where)
        return cls(qualifier, operator, if_exists, key.lower(), values)

    def holds(self, context: Mapping[str, tuple[str, ...]]) -> bool:
        present = context.get(self.key)
        if self.operator == "Null":  # "true": the key must be absent
            return (present is None) == (self.values[0].lower() == "true")
        if not present:
            if self.qualifier == "ForAllValues":
                return True
            if self.qualifier == "ForAnyValue":
                return False
            return self.if_exists or self.operator in _NEGATED
        negated = self.operator in _NEGATED

        def one(value: str) -> bool:
            hit = any(_matches(self.operator, p, value) for p in self.values)
            return not hit if negated else hit

        if self.qualifier == "ForAllValues":
            return all(one(v) for v in present)
        # ForAnyValue, and a plain operator on a multivalued key (treated as "any value").
        return any(one(v) for v in present)


def _principal_matches(principal: Any, request: Request) -> bool:
    if principal == "*":
        return True
    if not isinstance(principal, Mapping):
        raise UnsupportedPolicy(f"principal {principal!r} is not modelled")
    aws = _values(principal.get("AWS", []))
    services = _values(principal.get("Service", []))
    if "*" in aws:
        return True
    if request.principal_arn and request.principal_arn in aws:
        return True
    return bool(request.service_principal) and request.service_principal in services


@dataclass(frozen=True)
class Statement:
    sid: str
    effect: str
    actions: tuple[str, ...]
    not_action: bool
    resources: tuple[str, ...]
    not_resource: bool
    conditions: tuple[Condition, ...]
    principal: Any = None  # resource-based policies only

    @classmethod
    def parse(cls, raw: Mapping[str, Any], where: str) -> Statement:
        if "NotPrincipal" in raw:
            raise UnsupportedPolicy(f"{where}: NotPrincipal is not modelled")
        not_action = "NotAction" in raw
        not_resource = "NotResource" in raw
        actions = _values(raw["NotAction" if not_action else "Action"])
        resources = _values(raw.get("NotResource" if not_resource else "Resource", "*"))
        for value in (*actions, *resources):
            _check_literal(value, where)
        conditions = tuple(
            Condition.parse(operator, key, values, where)
            for operator, block in (raw.get("Condition") or {}).items()
            for key, values in block.items()
        )
        return cls(
            sid=str(raw.get("Sid", "")),
            effect=str(raw["Effect"]),
            actions=actions,
            not_action=not_action,
            resources=resources,
            not_resource=not_resource,
            conditions=conditions,
            principal=raw.get("Principal"),
        )

    def applies(self, request: Request, *, resource_based: bool) -> bool:
        """Whether this statement speaks to the request (``request.context`` keys in lower case)."""
        action_hit = any(glob_match(a, request.action, ignore_case=True) for a in self.actions)
        if action_hit == self.not_action:
            return False
        resource_hit = any(arn_match(r, request.resource) for r in self.resources)
        if resource_hit == self.not_resource:
            return False
        if resource_based and not _principal_matches(self.principal, request):
            return False
        return all(c.holds(request.context) for c in self.conditions)


@dataclass(frozen=True)
class Policy:
    name: str
    statements: tuple[Statement, ...]

    @classmethod
    def parse(cls, name: str, document: Mapping[str, Any]) -> Policy:
        raw = document.get("Statement", [])
        items = raw if isinstance(raw, list) else [raw]
        return cls(name, tuple(Statement.parse(s, f"{name}[{i}]") for i, s in enumerate(items)))


def evaluate(
    request: Request,
    identity: Sequence[Policy] = (),
    resource_policy: Policy | None = None,
) -> Decision:
    """The decision AWS reaches within one account, from identity and resource-based policies."""
    # Condition key names are case-insensitive (IAM User Guide, "IAM JSON policy elements: Condition").
    request = replace(request, context={k.lower(): v for k, v in request.context.items()})
    allowed = False
    sources: Iterable[tuple[Policy, bool]] = [
        *((p, False) for p in identity),
        *([(resource_policy, True)] if resource_policy else []),
    ]
    for policy, resource_based in sources:
        for statement in policy.statements:
            if not statement.applies(request, resource_based=resource_based):
                continue
            if statement.effect == "Deny":
                return Decision.EXPLICIT_DENY
            allowed = True
    return Decision.ALLOW if allowed else Decision.IMPLICIT_DENY
