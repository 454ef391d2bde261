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

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from smart_vault_sim.aws_tap import DRILL_MACHINE, STATE_MACHINE
from smart_vault_sim.iam import Policy
from smart_vault_sim.scenario import DenyDef, SubscriptionDef

if TYPE_CHECKING:
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
