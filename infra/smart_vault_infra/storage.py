"""Storage: the KMS key, the inventory/audit bucket and the alert topic (all encrypted with the key)."""

from __future__ import annotations

from aws_cdk import ArnFormat, Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from smart_vault.constants import MAP_RESULTS_PREFIX, RUNS_PREFIX
from smart_vault_infra.checks import GUARD, acknowledge
from smart_vault_infra.config import DeploymentConfig


class Storage(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, config: DeploymentConfig) -> None:
        super().__init__(scope, construct_id)
        self._config = config
        stack = Stack.of(self)
        # Every alarm of this deployment (their names start with the deployment id).
        self._alarm_arns = stack.format_arn(
            service="cloudwatch",
            resource="alarm",
            resource_name=config.alarm_names,
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        self.key = self._key(stack)
        self.bucket = self._bucket()
        self.topic = self._topic(stack)

    def _key(self, stack: Stack) -> kms.Key:
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
        # (EventBridge's statement is added by the rule target, without conditions: see Workflow.)
        key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchAlarmsPublishToTheEncryptedTopic",
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                resources=["*"],
                conditions={
                    "StringEquals": {"aws:SourceAccount": stack.account},
                    "ArnLike": {"aws:SourceArn": self._alarm_arns},
                },
            )
        )
        # CloudWatch Logs, "Encrypt log data in CloudWatch Logs using AWS KMS": the regional
        # service principal, limited by the encryption context to this account's log groups.
        # Without the guide's kms:Describe*: DescribeKey carries no kms:EncryptionContext (Service
        # Authorization Reference, AWS KMS), so under this condition it never matched anyway.
        key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchLogsEncryptsThisAccountsLogGroups",
                actions=["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*"],
                principals=[iam.ServicePrincipal(f"logs.{stack.region}.amazonaws.com")],
                resources=["*"],
                conditions={
                    "ArnLike": {
                        "kms:EncryptionContext:aws:logs:arn": stack.format_arn(
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
                    expiration=Duration.days(self._config.audit_retention_days),
                    noncurrent_version_expiration=Duration.days(30),
                ),
                s3.LifecycleRule(
                    id="expire-map-results",
                    prefix=f"{MAP_RESULTS_PREFIX}/",
                    expiration=Duration.days(30),
                    noncurrent_version_expiration=Duration.days(1),
                ),
                s3.LifecycleRule(id="abort-uploads", abort_incomplete_multipart_upload_after=Duration.days(1)),
            ],
        )
        no_access_log = (
            "Only the Smart Vault functions and state machine write here, each under its own "
            "least-privilege role; object-level access is recorded by CloudTrail data events where "
            "the account enables them, so a second access-log bucket adds cost, not audit."
        )
        acknowledge(bucket, "AwsSolutions-S1", no_access_log)
        acknowledge(bucket, GUARD + "s3_bucket_logging_enabled_check", f"CT.S3.PR.2: {no_access_log}")
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

    def _topic(self, stack: Stack) -> sns.Topic:
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
                    "StringEquals": {"aws:SourceAccount": stack.account},
                    "ArnLike": {"aws:SourceArn": self._alarm_arns},
                },
            )
        )
        if self._config.alarm_email:
            topic.add_subscription(subscriptions.EmailSubscription(self._config.alarm_email))
        return topic

    def key_use(self) -> iam.PolicyStatement:
        """What a writer or reader of the encrypted bucket, topic or queue needs of the key."""
        return iam.PolicyStatement(actions=["kms:GenerateDataKey", "kms:Decrypt"], resources=[self.key.key_arn])

    def objects(self, prefix: str) -> str:
        """ARN of the bucket's objects under a prefix."""
        return self.bucket.arn_for_objects(f"{prefix}/*")
