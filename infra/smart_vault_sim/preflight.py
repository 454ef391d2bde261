"""The preflight in the simulator: the account facts a scenario adds for it, and its runs.

- ``deny``: what a service control policy or permission boundary would do, modelled as an
  explicit Deny statement on the caller's role (an explicit deny in any applicable policy wins:
  IAM User Guide, "Policy evaluation logic"). The emulator's evaluator sees SCPs nowhere else.
- ``alert_subscriptions``: the alert topic's subscriptions. moto confirms every e-mail
  subscription at once; on AWS an e-mail subscription stays unconfirmed until its recipient
  follows the link, and ListSubscriptionsByTopic lists it with ``SubscriptionArn``
  ``PendingConfirmation`` (Amazon SNS Developer Guide, "Subscribing an endpoint to an Amazon SNS
  topic"; API Reference, ListSubscriptionsByTopic). Pending ones are answered that way here.
- ``runs[].workflow: "preflight"`` starts the backup state machine with ``{"preflight": true}``
  and reports ``runs[].preflight`` from the record PreflightReport wrote.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from botocore.awsrequest import AWSResponse

from smart_vault.constants import TAG_MANAGED
from smart_vault.models import RunContext
from smart_vault.preflight.report import SNAPSHOT_QUOTA
from smart_vault.validation import format_time
from smart_vault_sim import fleet
from smart_vault_sim.aws_tap import DRILL_MACHINE, STATE_MACHINE
from smart_vault_sim.drills import side_run_fields
from smart_vault_sim.iam import Policy
from smart_vault_sim.scenario import DenyDef, SubscriptionDef

if TYPE_CHECKING:
    from datetime import datetime

    from smart_vault_sim.simulator import Simulation
    from smart_vault_sim.stack_iam import StackIam

PENDING = "PendingConfirmation"
_CALLERS = {"state_machine": STATE_MACHINE, "drill_state_machine": DRILL_MACHINE}


def apply_denies(iam: StackIam, denies: tuple[DenyDef, ...]) -> None:
    """Each ``deny`` entry as one more policy of that role: Effect Deny, its action and resource."""
    for i, deny in enumerate(denies):
        caller = _CALLERS.get(deny.role, deny.role)
        role = iam.roles[caller]
        document = {"Statement": [{"Effect": "Deny", "Action": deny.action, "Resource": deny.resource}]}
        iam.roles[caller] = replace(role, policies=(*role.policies, Policy.parse(f"scenario-deny-{i}", document)))


class Subscriptions:
    """The alert topic's subscriptions, with pending ones listed as AWS lists them."""

    def __init__(self, subscriptions: tuple[SubscriptionDef, ...]) -> None:
        self.subscriptions = subscriptions
        self.pending: set[str] = set()  # endpoints whose confirmation nobody followed

    def create(self, sns: Any, topic_arn: str) -> None:
        for sub in self.subscriptions:
            sns.subscribe(TopicArn=topic_arn, Protocol=sub.protocol, Endpoint=sub.endpoint)
            if sub.status == "pending":
                self.pending.add(sub.endpoint)

    def install(self, events: Any) -> None:
        events.register("after-call.sns.ListSubscriptionsByTopic", self._listed)

    def _listed(self, parsed: dict[str, Any], **_: Any) -> None:
        for sub in parsed.get("Subscriptions") or ():
            if sub.get("Endpoint") in self.pending:
                sub["SubscriptionArn"] = PENDING


# Service Quotas in moto knows no Amazon EBS quota; the emulated account answers "Snapshots per
# Region" (service code ebs, default 100,000 in "Amazon EBS endpoints and quotas", AWS General
# Reference) with this value, or a scenario's. Answered after the IAM check, like every model.
DEFAULT_SNAPSHOT_QUOTA = 100_000


def _json_body(params: dict[str, Any]) -> dict[str, Any]:
    """The request a JSON-protocol service (Service Quotas, Recycle Bin) was sent, as botocore
    serialised it before the call."""
    body = params.get("body") or {}
    return dict(json.loads(body or "{}") if isinstance(body, bytes | str) else body)


class ServiceQuotas:
    def __init__(self, snapshot_quota: int = DEFAULT_SNAPSHOT_QUOTA) -> None:
        self.snapshot_quota = snapshot_quota

    def install(self, events: Any) -> None:
        events.register("before-call.service-quotas.GetServiceQuota", self._answer)

    def _answer(self, params: dict[str, Any], model: Any, **_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        body = _json_body(params)
        service, code = body.get("ServiceCode"), body.get("QuotaCode")
        if (service, code) != SNAPSHOT_QUOTA:
            error = {"Error": {"Code": "NoSuchResourceException", "Message": f"quota {service}/{code} not modelled"}}
            return AWSResponse("https://servicequotas", 400, {}, None), error
        quota = {
            "ServiceCode": service,
            "QuotaCode": code,
            "QuotaName": "Snapshots per Region",
            "Value": float(self.snapshot_quota),
        }
        return AWSResponse("https://servicequotas", 200, {}, None), {"Quota": quota}


class RecycleBin:
    """Recycle Bin ListRules, which moto does not implement: the stack's tag-level rule exists
    when ``recycle_bin_days`` is set (tests may delete it from ``rules`` as an operator could).
    Recycle Bin API Reference, ListRules: ResourceType, optional ResourceTags; Rules[] with
    Identifier, RetentionPeriod, LockState, RuleArn."""

    def __init__(self, days: int | None, deployment_id: str) -> None:
        self.rules: list[dict[str, Any]] = []
        if days is not None:
            self.rules.append(
                {
                    "Identifier": "sim-rule-1",
                    "RetentionPeriod": {"RetentionPeriodValue": days, "RetentionPeriodUnit": "DAYS"},
                    "LockState": "unlocked",
                    "ResourceTags": [{"ResourceTagKey": TAG_MANAGED, "ResourceTagValue": deployment_id}],
                }
            )

    def install(self, events: Any) -> None:
        events.register("before-call.rbin.ListRules", self._answer)

    def _answer(self, params: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        body = _json_body(params)
        wanted = {(t["ResourceTagKey"], t.get("ResourceTagValue")) for t in body.get("ResourceTags") or ()}
        found = [
            {k: v for k, v in r.items() if k != "ResourceTags"}
            for r in self.rules
            if body.get("ResourceType") == "EBS_SNAPSHOT"
            and wanted <= {(t["ResourceTagKey"], t["ResourceTagValue"]) for t in r["ResourceTags"]}
        ]
        return AWSResponse("https://rbin", 200, {}, None), {"Rules": found}


class EbsDefaultKey:
    """GetEbsDefaultKmsKeyId, which moto does not implement: the key EBS encrypts new volumes
    with when encryption by default is on (EC2 API Reference, GetEbsDefaultKmsKeyId: "the
    default KMS key for encryption by default"), the AWS managed key unless a scenario names one."""

    def __init__(self, region: str, account: str, key: str | None = None) -> None:
        self.key = key or f"arn:aws:kms:{region}:{account}:alias/aws/ebs"

    def install(self, events: Any) -> None:
        events.register("before-call.ec2.GetEbsDefaultKmsKeyId", self._answer)

    def _answer(self, **_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        return AWSResponse("https://ec2", 200, {}, None), {"KmsKeyId": self.key}


def fingerprint(sim: Simulation) -> dict[str, Any]:
    """Everything preflight must leave as it was: snapshots (tier, tags), volumes (tags), locks,
    in the source Region and every copy destination. States are left out: a pending snapshot
    completing or a new volume becoming available meanwhile is time, not the preflight."""
    found: dict[str, Any] = {}
    regions = [sim.scenario.region, *(d.region for d in sim.scenario.settings.copy_regions)]
    for region in regions:
        backend = fleet.ec2_backend(region)
        found[region] = {
            "snapshots": {
                sid: [str(getattr(snap, "storage_tier", "")), sorted(backend.tags.get(sid, {}).items())]
                for sid, snap in sorted(backend.snapshots.items())
            },
            "volumes": {vid: sorted(backend.tags.get(vid, {}).items()) for vid, vol in sorted(backend.volumes.items())},
        }
    found["locks"] = {sid: repr(lock) for sid, lock in sorted(sim.locks.locks.items())}
    return found


def run_preflight(sim: Simulation, index: int, at: datetime, *, notify: bool = False) -> dict[str, Any]:
    """One preflight execution (``{"preflight": true}``) of the backup state machine at ``at``;
    the report row ``runs[]`` with ``workflow: "preflight"`` and ``preflight``."""
    sim.clock = at
    events = sim.hooks.new_run()
    sim.tap.reset_counts()
    sim.host.metrics.clear()
    denied_before = len(sim.authorizer.denied) if sim.authorizer else 0
    topic = sim._topic()
    sent_before = len(topic.sent_notifications)
    before = fingerprint(sim)
    name = f"sv-preflight-{RunContext.run_id_for(at)}-{index:04d}"
    started = time.monotonic()
    arn = sim.account.sfn.start_execution(
        stateMachineArn=sim.account.state_machine_arn,
        name=name,
        input=json.dumps({"preflight": True, "notify": notify}),
    )["executionArn"]
    description = sim._wait_for(arn)
    history = sim._history(arn)
    execution = sim._execution_figures(description, history, events)
    execution["wall_seconds"] = round(time.monotonic() - started, 3)
    output = json.loads(description.get("output") or "{}")
    after = fingerprint(sim)
    return {
        "at": format_time(at),
        "workflow": "preflight",
        "execution": execution,
        "preflight": {
            "status": output.get("status") or "failed",
            "checks": list(output.get("checks") or ()),
            "record": output.get("record"),
            "error": description.get("error"),
            "cause": _last_failure(history),
        },
        "account_unchanged": before == after,
        **side_run_fields(sim, topic, sent_before=sent_before, denied_before=denied_before),
    }


def _last_failure(history: list[dict[str, Any]]) -> str | None:
    """What the last failed Task said (a failed preflight must say why)."""
    for event in reversed(history):
        details = event.get("taskFailedEventDetails") or event.get("lambdaFunctionFailedEventDetails")
        if details:
            return f"{details.get('error')}: {str(details.get('cause') or '')[:2000]}"
    return None
