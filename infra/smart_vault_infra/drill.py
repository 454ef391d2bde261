"""Drill: the restore drill's own small state machine (statemachine/drill.asl.json) and its
weekly schedule. Its functions are rows of the function_specs table like the backup's."""

from __future__ import annotations

from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from smart_vault.constants import DRILL_SUBSTITUTION_FUNCTION_ARNS, SUBSTITUTION_TOPIC
from smart_vault_infra.checks import acknowledge
from smart_vault_infra.config import DeploymentConfig
from smart_vault_infra.paths import drill_definition_path
from smart_vault_infra.storage import Storage
from smart_vault_infra.workflow import logged_state_machine, scheduled_start


class Drill(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: DeploymentConfig,
        storage: Storage,
        functions: dict[str, lambda_.Function],
        dead_letters: sqs.Queue,
    ) -> None:
        super().__init__(scope, construct_id)
        self._config = config
        self._storage = storage
        self.state_machine = self._state_machine(functions)
        self._schedule(dead_letters)

    def _state_machine(self, functions: dict[str, lambda_.Function]) -> sfn.StateMachine:
        name = self._config.drill_state_machine_name
        storage = self._storage
        substitutions = {
            placeholder: functions[key].function_arn for placeholder, key in DRILL_SUBSTITUTION_FUNCTION_ARNS.items()
        }
        substitutions[SUBSTITUTION_TOPIC] = storage.topic.topic_arn
        machine = logged_state_machine(
            self,
            "DrillStateMachine",
            name=name,
            definition=drill_definition_path(),
            substitutions=substitutions,
            config=self._config,
            storage=storage,
        )
        # Only the drill's three functions, and the fallback alert when its report fails.
        machine.add_to_role_policy(
            iam.PolicyStatement(
                actions=["lambda:InvokeFunction"],
                resources=[functions[key].function_arn for key in DRILL_SUBSTITUTION_FUNCTION_ARNS.values()],
            )
        )
        machine.add_to_role_policy(iam.PolicyStatement(actions=["sns:Publish"], resources=[storage.topic.topic_arn]))
        machine.add_to_role_policy(storage.key_use())
        acknowledge(
            machine.role.node.find_child("DefaultPolicy"),
            "AwsSolutions-IAM5",
            "X-Ray and log delivery support no resource-level permissions (Resource::*).",
            "Resource::*",
        )
        return machine

    def _schedule(self, dead_letters: sqs.Queue) -> None:
        """EventBridge Scheduler starts the drill like the backup (same confused-deputy condition,
        same dead-letter queue, the scheduled time as the drill id)."""
        scheduled_start(
            self,
            "DrillSchedule",
            machine=self.state_machine,
            expression=self._config.drill_schedule,
            description="Smart Vault restore drill",
            source="smart-vault.drill-schedule",
            config=self._config,
            storage=self._storage,
            dead_letters=dead_letters,
        )
