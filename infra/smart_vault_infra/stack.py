"""SmartVaultStack: schedule -> state machine -> five functions, with alarms, encryption and least
privilege. Environment-agnostic: nothing is looked up at synth time."""

from __future__ import annotations

import json

from aws_cdk import (
    Acknowledgment,
    ArnFormat,
    CfnOutput,
    Duration,
    RemovalPolicy,
    Stack,
    Validations,
)
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_ssm as ssm
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct, IConstruct

from smart_vault.constants import (
    FUNCTION_HANDLERS,
    METRIC_BACKUP_GIB,
    METRIC_DIMENSION_STEP,
    METRIC_NAMESPACE,
    METRIC_SNAPSHOTS_CREATED,
    METRIC_SNAPSHOTS_DELETED,
    METRIC_SNAPSHOTS_FAILED,
    METRIC_STEP_FAILED,
    OUTPUT_BUCKET_NAME,
    OUTPUT_DASHBOARD_URL,
    OUTPUT_STATE_MACHINE_ARN,
    OUTPUT_TOPIC_ARN,
    RUNS_PREFIX,
    SERVICE_NAME,
    SUBSTITUTION_BUCKET,
    SUBSTITUTION_FUNCTION_ARNS,
    SUBSTITUTION_TOPIC,
    TAG_MANAGED,
)
from smart_vault_infra.config import DeploymentConfig
from smart_vault_infra.paths import FUNCTIONS_DIR, definition_path

# Memory and timeout per function: discovery and notify handle the whole fleet, the rest one
# instance. Duration alarms fire at 80% of the timeout.
SIZING = {
    "discover": (1024, Duration.minutes(5)),
    "snapshot": (256, Duration.minutes(1)),
    "check": (256, Duration.minutes(1)),
    "prune": (256, Duration.minutes(3)),
    "notify": (1024, Duration.minutes(10)),
}
RETENTION = {
    1: "ONE_DAY",
    3: "THREE_DAYS",
    5: "FIVE_DAYS",
    7: "ONE_WEEK",
    14: "TWO_WEEKS",
    30: "ONE_MONTH",
    60: "TWO_MONTHS",
    90: "THREE_MONTHS",
    120: "FOUR_MONTHS",
    150: "FIVE_MONTHS",
    180: "SIX_MONTHS",
    365: "ONE_YEAR",
    400: "THIRTEEN_MONTHS",
    545: "EIGHTEEN_MONTHS",
    731: "TWO_YEARS",
    1096: "THREE_YEARS",
    1827: "FIVE_YEARS",
    3653: "TEN_YEARS",
}


# Acknowledgment ids of cdk-validator-cfnguard (Control Tower proactive controls) findings.
GUARD = "cdk-validator-cfnguard::"


def acknowledge(scope: IConstruct, rule: str, reason: str, *findings: str) -> None:
    """Acknowledge a cdk-nag finding on one construct, with the reason it is acceptable there."""
    ids = [f"{rule}[{finding}]" for finding in findings] or [rule]
    for finding_id in ids:
        Validations.of(scope).acknowledge(Acknowledgment(id=finding_id, reason=reason))


class SmartVaultStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, config: DeploymentConfig, **kwargs: object) -> None:
        super().__init__(scope, construct_id, **kwargs)  # type: ignore[arg-type]
        self.config = config
        settings = config.settings
        deployment = settings.deployment_id

        self.key = self._key()
        self.bucket = self._bucket()
        self.topic = self._topic()
        self.powertools = lambda_.LayerVersion.from_layer_version_arn(
            self,
            "PowertoolsLayer",
            ssm.StringParameter.value_for_string_parameter(
                self, f"/aws/service/powertools/python/arm64/python3.14/{config.powertools_version}"
            ),
        )
        self.functions = {key: self._function(key) for key in FUNCTION_HANDLERS}
        self._grant_function_permissions()

        state_machine_name = f"{deployment}-backup"
        self.state_machine = self._state_machine(state_machine_name)
        self.dead_letters = self._dead_letter_queue()
        self._schedule()
        self._status_change_alerts()
        self.alarms = self._alarms()
        self.dashboard = self._dashboard()

        CfnOutput(
            self,
            OUTPUT_STATE_MACHINE_ARN,
            value=self.state_machine.state_machine_arn,
            description="Smart Vault backup workflow",
        )
        CfnOutput(self, OUTPUT_TOPIC_ARN, value=self.topic.topic_arn, description="Alerts topic")
        CfnOutput(
            self,
            OUTPUT_BUCKET_NAME,
            value=self.bucket.bucket_name,
            description="Inventory and audit records",
        )
        CfnOutput(
            self,
            OUTPUT_DASHBOARD_URL,
            value=f"https://{self.region}.console.aws.amazon.com/cloudwatch/home?region={self.region}"
            f"#dashboards:name={self.dashboard.dashboard_name}",
        )

    # -- encryption, storage, alerts ------------------------------------------------------
    def _key(self) -> kms.Key:
        key = kms.Key(
            self,
            "Key",
            description="Smart Vault: alerts topic, inventory bucket, dead-letter queue and logs",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.RETAIN,
        )
        # CloudWatch alarms publish to the encrypted topic. SNS developer guide, "Key management"
        # (compatibility with AWS services): the source service needs kms:GenerateDataKey* and
        # kms:Decrypt; aws:SourceAccount/aws:SourceArn protect against the confused deputy.
        key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchAlarmsPublishToTheEncryptedTopic",
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                resources=["*"],
                conditions={
                    "StringEquals": {"aws:SourceAccount": self.account},
                    "ArnLike": {"aws:SourceArn": self._alarm_arns()},
                },
            )
        )
        # CloudWatch Logs, "Encrypt log data in CloudWatch Logs using AWS KMS": the regional
        # service principal, limited by the encryption context to this account's log groups.
        key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchLogsEncryptsThisAccountsLogGroups",
                actions=[
                    "kms:Encrypt*",
                    "kms:Decrypt*",
                    "kms:ReEncrypt*",
                    "kms:GenerateDataKey*",
                    "kms:Describe*",
                ],
                principals=[iam.ServicePrincipal(f"logs.{self.region}.amazonaws.com")],
                resources=["*"],
                conditions={
                    "ArnLike": {
                        "kms:EncryptionContext:aws:logs:arn": self.format_arn(
                            service="logs", resource="*", arn_format=ArnFormat.NO_RESOURCE_NAME
                        )
                    }
                },
            )
        )
        # Control Tower CT.KMS.PR.3: grants only for AWS services acting on our behalf.
        key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="GrantsOnlyForAwsResources",
                effect=iam.Effect.DENY,
                actions=["kms:CreateGrant"],
                principals=[iam.AnyPrincipal()],
                resources=["*"],
                conditions={
                    "BoolIfExists": {"kms:GrantIsForAWSResource": "false", "aws:PrincipalIsAWSService": "false"}
                },
            )
        )
        return key

    def _alarm_arns(self) -> str:
        """Every alarm of this deployment: their names start with the deployment id."""
        return self.format_arn(
            service="cloudwatch",
            resource="alarm",
            resource_name=f"{self.config.settings.deployment_id}-*",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )

    def _bucket(self) -> s3.Bucket:
        bucket = s3.Bucket(
            self,
            "InventoryBucket",
            encryption=s3.BucketEncryption.KMS,
            encryption_key=self.key,
            bucket_key_enabled=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            versioned=True,
            removal_policy=RemovalPolicy.RETAIN,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-run-records",
                    prefix=f"{RUNS_PREFIX}/",
                    expiration=Duration.days(self.config.audit_retention_days),
                    noncurrent_version_expiration=Duration.days(30),
                ),
                s3.LifecycleRule(
                    id="expire-map-results",
                    prefix="map-results/",
                    expiration=Duration.days(30),
                    noncurrent_version_expiration=Duration.days(1),
                ),
                s3.LifecycleRule(id="abort-uploads", abort_incomplete_multipart_upload_after=Duration.days(1)),
            ],
        )
        acknowledge(
            bucket,
            "AwsSolutions-S1",
            "Only the Smart Vault functions and state machine write here, each under its "
            "own least-privilege role; object-level access is recorded by CloudTrail data events "
            "where the account enables them, so a second access-log bucket adds cost, not audit.",
        )
        acknowledge(
            bucket,
            GUARD + "s3_bucket_logging_enabled_check",
            "CT.S3.PR.2: as AwsSolutions-S1 above; CloudTrail data events are the account's audit.",
        )
        acknowledge(
            bucket,
            GUARD + "s3_event_notifications_enabled_check",
            "CT.S3.PR.4: nothing reacts to these objects; Notify reads them within the same run.",
        )
        acknowledge(
            bucket,
            GUARD + "s3_bucket_object_lock_enabled_check",
            "CT.S3.PR.9: run records and Map results expire by lifecycle and a re-run rewrites them; "
            "versioning keeps earlier versions for 30 days. The snapshots themselves are the backup.",
        )
        return bucket

    def _topic(self) -> sns.Topic:
        topic = sns.Topic(
            self,
            "AlertTopic",
            display_name="Smart Vault alerts",
            master_key=self.key,
            enforce_ssl=True,
        )
        # enforce_ssl and the EventBridge target create a topic policy, which replaces SNS's
        # default one: CloudWatch alarms must be allowed explicitly or every alarm is silent.
        # SNS developer guide, "Example cases for Amazon SNS access control".
        topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchAlarmsPublish",
                actions=["sns:Publish"],
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                resources=[topic.topic_arn],
                conditions={
                    "StringEquals": {"aws:SourceAccount": self.account},
                    "ArnLike": {"aws:SourceArn": self._alarm_arns()},
                },
            )
        )
        if self.config.alarm_email:
            topic.add_subscription(subscriptions.EmailSubscription(self.config.alarm_email))
        return topic

    # -- functions --------------------------------------------------------------------------
    def _function(self, key: str) -> lambda_.Function:
        memory, timeout = SIZING[key]
        log_group = logs.LogGroup(
            self,
            f"{key.title()}Logs",
            retention=logs.RetentionDays[RETENTION[self.config.log_retention_days]],
            encryption_key=self.key,
            removal_policy=RemovalPolicy.DESTROY,
        )
        # Own role without the AWS managed basic-execution policy: logs go to our group only.
        role = iam.Role(
            self,
            f"{key.title()}Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"Smart Vault {key} function",
        )
        log_group.grant_write(role)
        environment = {
            **self.config.settings.to_env(),
            "BUCKET_NAME": self.bucket.bucket_name,
            "TOPIC_ARN": self.topic.topic_arn,
            "POWERTOOLS_SERVICE_NAME": SERVICE_NAME,
            "POWERTOOLS_METRICS_NAMESPACE": METRIC_NAMESPACE,
            "POWERTOOLS_LOG_LEVEL": "INFO",
        }
        function = lambda_.Function(
            self,
            f"{key.title()}Function",
            description=f"Smart Vault: {key}",
            runtime=lambda_.Runtime.PYTHON_3_14,
            architecture=lambda_.Architecture.ARM_64,
            handler=FUNCTION_HANDLERS[key],
            code=lambda_.Code.from_asset(str(FUNCTIONS_DIR), exclude=["**/__pycache__", "*.pyc", "**/*.egg-info"]),
            memory_size=memory,
            timeout=timeout,
            role=role,
            layers=[self.powertools],
            environment=environment,
            log_group=log_group,
            logging_format=lambda_.LoggingFormat.JSON,
            tracing=lambda_.Tracing.ACTIVE,
        )
        acknowledge(
            function,
            GUARD + "lambda_inside_vpc_check",
            "CT.LAMBDA.PR.3: the functions call only AWS APIs (EC2, S3, SNS) and reach no private "
            "network; a VPC would add NAT or five interface endpoints and nothing to protect.",
        )
        self._acknowledge_log_retention(log_group)
        return function

    def _acknowledge_log_retention(self, log_group: logs.LogGroup) -> None:
        days = self.config.log_retention_days
        if days < 365:
            acknowledge(
                log_group,
                GUARD + "cloudwatch_log_group_retention_period_check",
                f"CT.CLOUDWATCH.PR.2: operational logs are kept log_retention_days ({days}), the "
                "operator's choice; every run's audit record is kept in S3 for audit_retention_days.",
            )

    def _ec2(self, resource: str) -> str:
        account = "" if resource.startswith("snapshot") else self.account
        return f"arn:{self.partition}:ec2:{self.region}:{account}:{resource}"

    def _grant_function_permissions(self) -> None:
        fns = self.functions
        deployment = self.config.settings.deployment_id
        describe = iam.PolicyStatement(
            actions=["ec2:DescribeSnapshots"], resources=["*"]
        )  # Describe* supports no resource-level permissions
        fns["discover"].add_to_role_policy(
            iam.PolicyStatement(actions=["ec2:DescribeInstances", "ec2:DescribeVolumes"], resources=["*"])
        )
        for key in ("snapshot", "check", "prune"):
            fns[key].add_to_role_policy(describe)
        # Creating snapshots: the instance and its volumes are sources; the snapshots must carry
        # this deployment's marker from creation on, and tags may only be written by the create.
        fns["snapshot"].add_to_role_policy(
            iam.PolicyStatement(
                actions=["ec2:CreateSnapshots"],
                resources=[self._ec2("instance/*"), self._ec2("volume/*")],
            )
        )
        fns["snapshot"].add_to_role_policy(
            iam.PolicyStatement(
                actions=["ec2:CreateSnapshots"],
                resources=[self._ec2("snapshot/*")],
                conditions={"StringEquals": {f"aws:RequestTag/{TAG_MANAGED}": deployment}},
            )
        )
        fns["snapshot"].add_to_role_policy(
            iam.PolicyStatement(
                actions=["ec2:CreateTags"],
                resources=[self._ec2("snapshot/*")],
                conditions={"StringEquals": {"ec2:CreateAction": "CreateSnapshots"}},
            )
        )
        fns["prune"].add_to_role_policy(
            iam.PolicyStatement(
                actions=["ec2:DeleteSnapshot"],
                resources=[self._ec2("snapshot/*")],
                conditions={"StringEquals": {f"aws:ResourceTag/{TAG_MANAGED}": deployment}},
            )
        )
        runs = self.bucket.arn_for_objects(f"{RUNS_PREFIX}/*")
        for key in ("discover", "prune", "notify"):
            fns[key].add_to_role_policy(iam.PolicyStatement(actions=["s3:PutObject"], resources=[runs]))
        fns["notify"].add_to_role_policy(iam.PolicyStatement(actions=["s3:GetObject"], resources=[runs]))
        fns["notify"].add_to_role_policy(
            iam.PolicyStatement(
                actions=["s3:ListBucket"],
                resources=[self.bucket.bucket_arn],
                conditions={"StringLike": {"s3:prefix": [f"{RUNS_PREFIX}/*"]}},
            )
        )
        fns["notify"].add_to_role_policy(iam.PolicyStatement(actions=["sns:Publish"], resources=[self.topic.topic_arn]))
        for key in ("discover", "prune", "notify"):
            fns[key].add_to_role_policy(self._use_key())
        for key, fn in fns.items():
            findings = {
                "discover": ["Resource::*", f"Resource::<{self._logical(self.bucket)}.Arn>/runs/*"],
                "snapshot": [
                    "Resource::*",
                    "Resource::arn:<AWS::Partition>:ec2:<AWS::Region>::snapshot/*",
                    "Resource::arn:<AWS::Partition>:ec2:<AWS::Region>:<AWS::AccountId>:instance/*",
                    "Resource::arn:<AWS::Partition>:ec2:<AWS::Region>:<AWS::AccountId>:volume/*",
                ],
                "check": ["Resource::*"],
                "prune": [
                    "Resource::*",
                    "Resource::arn:<AWS::Partition>:ec2:<AWS::Region>::snapshot/*",
                    f"Resource::<{self._logical(self.bucket)}.Arn>/runs/*",
                ],
                "notify": ["Resource::*", f"Resource::<{self._logical(self.bucket)}.Arn>/runs/*"],
            }[key]
            acknowledge(
                fn.role.node.find_child("DefaultPolicy"),  # type: ignore[union-attr]
                "AwsSolutions-IAM5",
                f"{key}: Resource::* only for actions without resource-level permissions (EC2 "
                "Describe*, X-Ray PutTraceSegments/PutTelemetryRecords); snapshot/instance/volume "
                "ARNs are unknown before the call, so CreateSnapshots requires the managed tag "
                "(aws:RequestTag), CreateTags only inside a create (ec2:CreateAction) and "
                "DeleteSnapshot the marker (aws:ResourceTag); run records have generated keys under "
                "runs/ only.",
                *findings,
            )

    def _use_key(self) -> iam.PolicyStatement:
        return iam.PolicyStatement(actions=["kms:GenerateDataKey", "kms:Decrypt"], resources=[self.key.key_arn])

    def _logical(self, construct: Construct) -> str:
        return self.get_logical_id(construct.node.default_child)  # type: ignore[arg-type]

    # -- workflow ------------------------------------------------------------------------------
    def _state_machine(self, name: str) -> sfn.StateMachine:
        level = self.config.state_machine_log_level
        log_group = logs.LogGroup(
            self,
            "StateMachineLogs",
            log_group_name=f"/aws/vendedlogs/states/{name}",
            retention=logs.RetentionDays[RETENTION[self.config.log_retention_days]],
            encryption_key=self.key,
            removal_policy=RemovalPolicy.DESTROY,
        )
        self._acknowledge_log_retention(log_group)
        substitutions = {
            placeholder: self.functions[key].function_arn for placeholder, key in SUBSTITUTION_FUNCTION_ARNS.items()
        }
        substitutions[SUBSTITUTION_BUCKET] = self.bucket.bucket_name
        substitutions[SUBSTITUTION_TOPIC] = self.topic.topic_arn
        machine = sfn.StateMachine(
            self,
            "StateMachine",
            state_machine_name=name,
            state_machine_type=sfn.StateMachineType.STANDARD,
            definition_body=sfn.DefinitionBody.from_file(str(definition_path())),
            definition_substitutions=substitutions,
            tracing_enabled=True,
            logs=sfn.LogOptions(destination=log_group, level=sfn.LogLevel[level], include_execution_data=False),
        )
        machine.add_to_role_policy(
            iam.PolicyStatement(
                actions=["lambda:InvokeFunction"],
                resources=[f.function_arn for f in self.functions.values()],
            )
        )
        # Distributed Map: the parent starts and watches child executions of itself, reads the
        # inventory and writes the Map's results. "IAM policies for using Distributed Map states"
        # (Step Functions developer guide): StartExecution on stateMachine:<name>, Describe/Stop
        # on execution:<name>/*. The fixed name avoids a role -> state machine -> role cycle.
        own_arn = self.format_arn(
            service="states", resource="stateMachine", resource_name=name, arn_format=ArnFormat.COLON_RESOURCE_NAME
        )
        executions = self.format_arn(
            service="states", resource="execution", resource_name=f"{name}/*", arn_format=ArnFormat.COLON_RESOURCE_NAME
        )
        machine.add_to_role_policy(iam.PolicyStatement(actions=["states:StartExecution"], resources=[own_arn]))
        machine.add_to_role_policy(
            iam.PolicyStatement(actions=["states:DescribeExecution", "states:StopExecution"], resources=[executions])
        )
        machine.add_to_role_policy(
            iam.PolicyStatement(
                actions=["s3:GetObject"],
                resources=[self.bucket.arn_for_objects(f"{RUNS_PREFIX}/*")],
            )
        )
        machine.add_to_role_policy(
            iam.PolicyStatement(
                actions=[
                    "s3:PutObject",
                    "s3:GetObject",
                    "s3:ListMultipartUploadParts",
                    "s3:AbortMultipartUpload",
                ],
                resources=[self.bucket.arn_for_objects("map-results/*")],
            )
        )
        # The fallback alert (an sns:publish Task) when Notify itself fails; the topic is encrypted,
        # so publishing also needs the key (SNS developer guide, "Key management").
        machine.add_to_role_policy(iam.PolicyStatement(actions=["sns:Publish"], resources=[self.topic.topic_arn]))
        machine.add_to_role_policy(self._use_key())
        machine_findings = [
            "Resource::*",
            f"Resource::<{self._logical(self.bucket)}.Arn>/runs/*",
            f"Resource::<{self._logical(self.bucket)}.Arn>/map-results/*",
            f"Resource::arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:{name}/*",
        ]
        acknowledge(
            machine.role.node.find_child("DefaultPolicy"),
            "AwsSolutions-IAM5",
            "Distributed Map children are executions of this state machine with names Step "
            "Functions generates (execution:<name>/*); X-Ray and log delivery support no "
            "resource-level permissions (Resource::*); the inventory and Map results have generated "
            "keys under runs/ and map-results/ only.",
            *machine_findings,
        )
        if level != "ALL":
            acknowledge(
                machine,
                "AwsSolutions-SF1",
                f"Logging level set to {level} by the state_machine_log_level context.",
            )
        return machine

    def _dead_letter_queue(self) -> sqs.Queue:
        """Where the schedule and the status rule put what they could not deliver (alarmed on)."""
        queue = sqs.Queue(
            self,
            "DeadLetterQueue",
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=self.key,
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        acknowledge(
            queue,
            "AwsSolutions-SQS3",
            "This queue is the dead-letter queue of the schedule and the status-change rule; "
            "nothing reads it automatically, so a dead-letter queue of its own would never be used.",
        )
        acknowledge(queue, GUARD + "sqs_dlq_check", "CT.SQS.PR.1: as AwsSolutions-SQS3 above.")
        return queue

    def _schedule(self) -> None:
        # EventBridge Scheduler, "Confused deputy prevention": aws:SourceArn must be the schedule
        # group's ARN (not a schedule's); the schedule lives in the default group.
        group = self.format_arn(
            service="scheduler",
            resource="schedule-group",
            resource_name="default",
            arn_format=ArnFormat.SLASH_RESOURCE_NAME,
        )
        role = iam.Role(
            self,
            "ScheduleRole",
            assumed_by=iam.ServicePrincipal(
                "scheduler.amazonaws.com",
                conditions={"StringEquals": {"aws:SourceAccount": self.account, "aws:SourceArn": group}},
            ),
        )
        self.state_machine.grant_start_execution(role)
        # "Configuring a dead-letter queue" (Scheduler guide): the execution role sends to it;
        # an SSE-KMS queue's producers also need GenerateDataKey and Decrypt (SQS "Key management").
        role.add_to_policy(iam.PolicyStatement(actions=["sqs:SendMessage"], resources=[self.dead_letters.queue_arn]))
        role.add_to_policy(self._use_key())
        scheduler.CfnSchedule(
            self,
            "Schedule",
            description="Smart Vault scheduled backup run",
            schedule_expression=self.config.schedule,
            schedule_expression_timezone=self.config.time_zone,
            flexible_time_window=scheduler.CfnSchedule.FlexibleTimeWindowProperty(mode="OFF"),
            target=scheduler.CfnSchedule.TargetProperty(
                arn=self.state_machine.state_machine_arn,
                role_arn=role.role_arn,
                # The scheduled time is the run id: a redelivered or re-run slot never duplicates.
                input=json.dumps(
                    {
                        "detail-type": "Scheduled Event",
                        "source": "smart-vault.schedule",
                        "time": "<aws.scheduler.scheduled-time>",
                    }
                ),
                retry_policy=scheduler.CfnSchedule.RetryPolicyProperty(
                    maximum_event_age_in_seconds=3600, maximum_retry_attempts=10
                ),
                dead_letter_config=scheduler.CfnSchedule.DeadLetterConfigProperty(arn=self.dead_letters.queue_arn),
            ),
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
        # The target adds to the key policy an events.amazonaws.com statement without conditions,
        # as it must: SNS developer guide, "Key management": aws:SourceAccount/aws:SourceArn in a
        # key policy "is not supported for EventBridge-to-encrypted topics". It also covers the
        # encrypted dead-letter queue.
        rule.add_target(
            targets.SnsTopic(
                self.topic,
                dead_letter_queue=self.dead_letters,
                message=events.RuleTargetInput.from_text(
                    f"Smart Vault execution {events.EventField.from_path('$.detail.name')} ended "
                    f"{events.EventField.from_path('$.detail.status')}: "
                    f"{events.EventField.from_path('$.detail.error')} "
                    f"{events.EventField.from_path('$.detail.cause')} "
                    f"(https://console.aws.amazon.com/states/home#/v2/executions/details/"
                    f"{events.EventField.from_path('$.detail.executionArn')})"
                ),
            )
        )

    # -- alarms and dashboard -------------------------------------------------------------------
    def _alarm(
        self,
        construct_id: str,
        metric: cloudwatch.IMetric,
        *,
        threshold: float,
        description: str,
        comparison: cloudwatch.ComparisonOperator = cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluation_periods: int = 1,
        missing: cloudwatch.TreatMissingData = cloudwatch.TreatMissingData.NOT_BREACHING,
    ) -> cloudwatch.Alarm:
        alarm = cloudwatch.Alarm(
            self,
            construct_id,
            # Named after the deployment: the topic and key policies allow alarm:<deployment>-*.
            alarm_name=f"{self.config.settings.deployment_id}-{construct_id}",
            metric=metric,
            threshold=threshold,
            comparison_operator=comparison,
            evaluation_periods=evaluation_periods,
            datapoints_to_alarm=evaluation_periods,
            treat_missing_data=missing,
            alarm_description=description,
        )
        alarm.add_alarm_action(cw_actions.SnsAction(self.topic))
        return alarm

    def _alarms(self) -> list[cloudwatch.Alarm]:
        alarms = []
        five = Duration.minutes(5)
        for key, function in self.functions.items():
            name = key.title()
            timeout = SIZING[key][1].to_milliseconds()
            # No Errors alarm: errors that Step Functions retried successfully are not failures;
            # what still fails after retries is counted by StepFailed below.
            alarms += [
                self._alarm(
                    f"{name}Throttles",
                    function.metric_throttles(period=five, statistic="Sum"),
                    threshold=0,
                    description=f"Smart Vault {key} function was throttled",
                ),
                self._alarm(
                    f"{name}DurationNearTimeout",
                    function.metric_duration(period=five, statistic="p99"),
                    threshold=timeout * 0.8,
                    description=f"Smart Vault {key} function p99 duration above 80% of its timeout",
                ),
            ]
        machine = self.state_machine
        hour = Duration.hours(1)
        alarms += [
            self._alarm(
                "ExecutionsFailed",
                machine.metric_failed(period=five),
                threshold=0,
                description="A Smart Vault backup run failed",
            ),
            self._alarm(
                "ExecutionsTimedOut",
                machine.metric_timed_out(period=five),
                threshold=0,
                description="A Smart Vault backup run timed out",
            ),
            self._alarm(
                "ExecutionsAborted",
                machine.metric_aborted(period=five),
                threshold=0,
                description="A Smart Vault backup run was aborted",
            ),
            self._alarm(
                "ExecutionThrottled",
                machine.metric_throttled(period=five),
                threshold=0,
                description="Step Functions throttled Smart Vault",
            ),
            self._alarm(
                "SnapshotsFailedAlarm",
                cloudwatch.Metric(
                    namespace=METRIC_NAMESPACE,
                    metric_name=METRIC_SNAPSHOTS_FAILED,
                    dimensions_map={"service": SERVICE_NAME},
                    period=five,
                    statistic="Sum",
                ),
                threshold=0,
                description="Volumes whose backup failed in a Smart Vault run",
            ),
            # RecordFailure emits StepFailed with dimensions service and Step, one series per step:
            # a Metrics Insights query sums them all, including steps added later (CloudWatch,
            # "Create a CloudWatch alarm based on a Metrics Insights query": one aggregated series).
            self._alarm(
                "StepsFailed",
                cloudwatch.MathExpression(
                    expression=f"SELECT SUM({METRIC_STEP_FAILED}) FROM SCHEMA({METRIC_NAMESPACE}, "
                    f"{METRIC_DIMENSION_STEP}, service) WHERE service = '{SERVICE_NAME}'",
                    period=five,
                    label="Failed steps (after retries)",
                    using_metrics={},
                ),
                threshold=0,
                description="A Smart Vault step failed after its retries (the alert names instance and step)",
            ),
            self._alarm(
                "DeadLetters",
                self.dead_letters.metric_approximate_number_of_messages_visible(period=five, statistic="Maximum"),
                threshold=0,
                description="The schedule or the status-change rule could not deliver (see the dead-letter queue)",
            ),
            # Backups that silently stop (schedule disabled, permissions broken before Discover)
            # produce no failure: alarm when no run succeeded for the interval plus a margin.
            self._alarm(
                "NoSuccessfulBackup",
                machine.metric_succeeded(period=hour, statistic="Sum"),
                threshold=1,
                comparison=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
                evaluation_periods=self.config.expected_interval_hours + 2,
                missing=cloudwatch.TreatMissingData.BREACHING,
                description=f"No successful Smart Vault run in {self.config.expected_interval_hours + 2} hours",
            ),
        ]
        return alarms

    def _dashboard(self) -> cloudwatch.Dashboard:
        machine = self.state_machine

        def custom(name: str, stat: str = "Sum") -> cloudwatch.Metric:
            return cloudwatch.Metric(
                namespace=METRIC_NAMESPACE,
                metric_name=name,
                dimensions_map={"service": SERVICE_NAME},
                statistic=stat,
                period=Duration.hours(1),
            )

        dashboard = cloudwatch.Dashboard(
            self, "Dashboard", dashboard_name=f"{self.config.settings.deployment_id}-backups"
        )
        dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Executions",
                left=[
                    machine.metric_succeeded(),
                    machine.metric_failed(),
                    machine.metric_timed_out(),
                    machine.metric_aborted(),
                ],
            ),
            cloudwatch.GraphWidget(
                title="Snapshots",
                left=[
                    custom(METRIC_SNAPSHOTS_CREATED),
                    custom(METRIC_SNAPSHOTS_DELETED),
                    custom(METRIC_SNAPSHOTS_FAILED),
                ],
            ),
            cloudwatch.GraphWidget(title="GiB backed up", left=[custom(METRIC_BACKUP_GIB)]),
        )
        dashboard.add_widgets(
            cloudwatch.GraphWidget(title="Errors per step", left=[f.metric_errors() for f in self.functions.values()]),
            cloudwatch.GraphWidget(
                title="Duration p99 per step",
                left=[f.metric_duration(statistic="p99") for f in self.functions.values()],
            ),
        )
        return dashboard
