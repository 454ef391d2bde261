"""Workflow: the state machine (the ASL file, substituted), its schedule, the status-change rule
and the dead-letter queue of both."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aws_cdk import ArnFormat, Duration, RemovalPolicy, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from smart_vault.constants import (
    BACKUP_SUBSTITUTION_FUNCTION_ARNS,
    MAP_RESULTS_PREFIX,
    RUNS_PREFIX,
    SUBSTITUTION_BUCKET,
    SUBSTITUTION_TOPIC,
)
from smart_vault_infra.checks import GUARD, acknowledge, acknowledge_log_retention
from smart_vault_infra.config import LOG_RETENTION, DeploymentConfig
from smart_vault_infra.paths import definition_path
from smart_vault_infra.storage import Storage


class Workflow(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: DeploymentConfig,
        storage: Storage,
        functions: dict[str, lambda_.Function],
    ) -> None:
        super().__init__(scope, construct_id)
        self._config = config
        self._storage = storage
        self.state_machine = self._state_machine(config.state_machine_name, functions)
        self.dead_letters = self._dead_letter_queue()
        self._schedule()
        self._preflight_schedule()
        self._status_change_alerts()

    def _state_machine(self, name: str, functions: dict[str, lambda_.Function]) -> sfn.StateMachine:
        stack = Stack.of(self)
        storage = self._storage
        substitutions = {
            placeholder: functions[key].function_arn for placeholder, key in BACKUP_SUBSTITUTION_FUNCTION_ARNS.items()
        }
        substitutions[SUBSTITUTION_BUCKET] = storage.bucket.bucket_name
        substitutions[SUBSTITUTION_TOPIC] = storage.topic.topic_arn
        machine = logged_state_machine(
            self,
            "StateMachine",
            name=name,
            definition=definition_path(),
            substitutions=substitutions,
            config=self._config,
            storage=storage,
        )
        # Distributed Map: the parent starts and watches child executions of itself, reads the
        # inventory and writes the Map's results. "IAM policies for using Distributed Map states"
        # (Step Functions developer guide): StartExecution on stateMachine:<name>, Describe/Stop
        # on execution:<name>/*. The fixed name avoids a role -> state machine -> role cycle.
        own_arn = stack.format_arn(
            service="states", resource="stateMachine", resource_name=name, arn_format=ArnFormat.COLON_RESOURCE_NAME
        )
        executions = stack.format_arn(
            service="states", resource="execution", resource_name=f"{name}/*", arn_format=ArnFormat.COLON_RESOURCE_NAME
        )
        allow = [
            iam.PolicyStatement(
                actions=["lambda:InvokeFunction"], resources=[f.function_arn for f in functions.values()]
            ),
            iam.PolicyStatement(actions=["states:StartExecution"], resources=[own_arn]),
            # Redrive of the parent redrives a Map Run's unsuccessful children with the state
            # machine's role ("IAM policies for redriving a Distributed Map", Step Functions
            # developer guide: states:RedriveExecution on execution:<name>/<label>:*).
            iam.PolicyStatement(
                actions=["states:DescribeExecution", "states:StopExecution", "states:RedriveExecution"],
                resources=[executions],
            ),
            iam.PolicyStatement(actions=["s3:GetObject"], resources=[storage.objects(RUNS_PREFIX)]),
            iam.PolicyStatement(
                actions=["s3:PutObject", "s3:GetObject", "s3:ListMultipartUploadParts", "s3:AbortMultipartUpload"],
                resources=[storage.objects(MAP_RESULTS_PREFIX)],
            ),
            # The fallback alert (an sns:publish Task) when Notify itself fails; the topic is
            # encrypted, so publishing also needs the key (SNS developer guide, "Key management").
            iam.PolicyStatement(actions=["sns:Publish"], resources=[storage.topic.topic_arn]),
            storage.key_use(),
        ]
        for statement in allow:
            machine.add_to_role_policy(statement)
        bucket = stack.get_logical_id(storage.bucket.node.default_child)  # type: ignore[arg-type]
        acknowledge(
            machine.role.node.find_child("DefaultPolicy"),
            "AwsSolutions-IAM5",
            "Distributed Map children are executions of this state machine with names Step "
            "Functions generates (execution:<name>/*); X-Ray and log delivery support no "
            "resource-level permissions (Resource::*); the inventory and Map results have generated "
            f"keys under {RUNS_PREFIX}/ and {MAP_RESULTS_PREFIX}/ only.",
            "Resource::*",
            f"Resource::<{bucket}.Arn>/{RUNS_PREFIX}/*",
            f"Resource::<{bucket}.Arn>/{MAP_RESULTS_PREFIX}/*",
            f"Resource::arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:{name}/*",
        )
        return machine

    def _dead_letter_queue(self) -> sqs.Queue:
        """Where the schedule and the status rule put what they could not deliver (alarmed on)."""
        queue = sqs.Queue(
            self,
            "DeadLetterQueue",
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=self._storage.key,
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        reason = (
            "This queue is the dead-letter queue of the schedule and the status-change rule; "
            "nothing reads it automatically, so a dead-letter queue of its own would never be used."
        )
        acknowledge(queue, "AwsSolutions-SQS3", reason)
        acknowledge(queue, GUARD + "sqs_dlq_check", f"CT.SQS.PR.1: {reason}")
        return queue

    def _schedule(self) -> None:
        scheduled_start(
            self,
            "Schedule",
            machine=self.state_machine,
            expression=self._config.schedule,
            description="Smart Vault scheduled backup run",
            name=self._config.schedule_name,
            source="smart-vault.schedule",
            config=self._config,
            storage=self._storage,
            dead_letters=self.dead_letters,
        )

    def _preflight_schedule(self) -> None:
        """A weekly preflight keeps checking: an SCP or key policy changed since the deploy is
        found before the night it would break (the PreflightFailed alarm)."""
        if self._config.preflight_schedule is None:
            return
        scheduled_start(
            self,
            "PreflightSchedule",
            machine=self.state_machine,
            expression=self._config.preflight_schedule,
            description="Smart Vault preflight (DryRun: changes nothing)",
            source="smart-vault.preflight-schedule",
            config=self._config,
            storage=self._storage,
            dead_letters=self.dead_letters,
            payload={"preflight": True},
        )

    def _status_change_alerts(self) -> None:
        """Timeouts and aborts happen outside any Catch: alert on the status change itself.

        FAILED is not matched: Notify has already alerted with the details (and its own fallback
        alert covers Notify failing), so a second, vaguer alert would only be noise."""
        rule = events.Rule(
            self,
            "ExecutionStatusRule",
            description="Alert when a Smart Vault execution times out or is aborted",
            event_pattern=events.EventPattern(
                source=["aws.states"],
                detail_type=["Step Functions Execution Status Change"],
                detail={
                    "status": ["TIMED_OUT", "ABORTED"],
                    "stateMachineArn": [self.state_machine.state_machine_arn],
                },
            ),
        )
        field = events.EventField.from_path
        # The target adds to the key policy an events.amazonaws.com statement without conditions,
        # as it must: SNS developer guide, "Key management": aws:SourceAccount/aws:SourceArn in a
        # key policy "is not supported for EventBridge-to-encrypted topics". It also covers the
        # encrypted dead-letter queue.
        rule.add_target(
            targets.SnsTopic(
                self._storage.topic,
                dead_letter_queue=self.dead_letters,
                message=events.RuleTargetInput.from_text(
                    f"Smart Vault execution {field('$.detail.name')} ended {field('$.detail.status')}: "
                    f"{field('$.detail.error')} {field('$.detail.cause')} "
                    "(https://console.aws.amazon.com/states/home#/v2/executions/details/"
                    f"{field('$.detail.executionArn')})"
                ),
            )
        )


def logged_state_machine(
    scope: Construct,
    construct_id: str,
    *,
    name: str,
    definition: Path,
    substitutions: dict[str, str],
    config: DeploymentConfig,
    storage: Storage,
) -> sfn.StateMachine:
    """A Standard state machine from an ASL file, traced, logging to its own encrypted log group
    (``<construct_id>Logs``) without execution data: the backup and the drill workflows alike."""
    log_group = logs.LogGroup(
        scope,
        f"{construct_id}Logs",
        log_group_name=f"/aws/vendedlogs/states/{name}",
        retention=logs.RetentionDays[LOG_RETENTION[config.log_retention_days]],
        encryption_key=storage.key,
        removal_policy=RemovalPolicy.DESTROY,
    )
    acknowledge_log_retention(log_group, config.log_retention_days)
    level = config.state_machine_log_level
    machine = sfn.StateMachine(
        scope,
        construct_id,
        state_machine_name=name,
        state_machine_type=sfn.StateMachineType.STANDARD,
        definition_body=sfn.DefinitionBody.from_file(str(definition)),
        definition_substitutions=substitutions,
        tracing_enabled=True,
        logs=sfn.LogOptions(destination=log_group, level=sfn.LogLevel[level], include_execution_data=False),
    )
    if level != "ALL":
        acknowledge(
            machine, "AwsSolutions-SF1", f"Logging level set to {level} by the state_machine_log_level context."
        )
    return machine


def scheduled_start(
    scope: Construct,
    construct_id: str,
    *,
    machine: sfn.StateMachine,
    expression: str,
    description: str,
    source: str,
    config: DeploymentConfig,
    storage: Storage,
    dead_letters: sqs.Queue,
    payload: dict[str, Any] | None = None,
    name: str | None = None,
) -> None:
    """An EventBridge Scheduler schedule (``construct_id``) and its role (``<construct_id>Role``)
    that start ``machine`` with the scheduled time as input (the backup and the drill alike), or
    with ``payload`` (the preflight)."""
    # EventBridge Scheduler, "Confused deputy prevention": aws:SourceArn must be the schedule
    # group's ARN (not a schedule's); the schedule lives in the default group.
    stack = Stack.of(scope)
    group = stack.format_arn(
        service="scheduler",
        resource="schedule-group",
        resource_name="default",
        arn_format=ArnFormat.SLASH_RESOURCE_NAME,
    )
    role = iam.Role(
        scope,
        f"{construct_id}Role",
        assumed_by=iam.ServicePrincipal(
            "scheduler.amazonaws.com",
            conditions={"StringEquals": {"aws:SourceAccount": stack.account, "aws:SourceArn": group}},
        ),
    )
    machine.grant_start_execution(role)
    # "Configuring a dead-letter queue" (Scheduler guide): the execution role sends to it;
    # an SSE-KMS queue's producers also need GenerateDataKey and Decrypt (SQS "Key management").
    role.add_to_policy(iam.PolicyStatement(actions=["sqs:SendMessage"], resources=[dead_letters.queue_arn]))
    role.add_to_policy(storage.key_use())
    scheduler.CfnSchedule(
        scope,
        construct_id,
        name=name,
        description=description,
        schedule_expression=expression,
        schedule_expression_timezone=config.time_zone,
        flexible_time_window=scheduler.CfnSchedule.FlexibleTimeWindowProperty(mode="OFF"),
        target=scheduler.CfnSchedule.TargetProperty(
            arn=machine.state_machine_arn,
            role_arn=role.role_arn,
            # The scheduled time is the run id: a redelivered or re-run slot never duplicates.
            input=json.dumps(
                payload
                or {"detail-type": "Scheduled Event", "source": source, "time": "<aws.scheduler.scheduled-time>"}
            ),
            retry_policy=scheduler.CfnSchedule.RetryPolicyProperty(
                maximum_event_age_in_seconds=3600, maximum_retry_attempts=10
            ),
            dead_letter_config=scheduler.CfnSchedule.DeadLetterConfigProperty(arn=dead_letters.queue_arn),
        ),
    )
