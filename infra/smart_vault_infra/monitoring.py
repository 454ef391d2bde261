"""Monitoring: the alarms (all notify the alert topic) and the dashboard."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from smart_vault.constants import (
    METRIC_BACKUP_GIB,
    METRIC_COPIES_COMPLETED,
    METRIC_COPIES_DELETED,
    METRIC_COPIES_STARTED,
    METRIC_COPY_SLOT_WAITS,
    METRIC_DIMENSION_REGION,
    METRIC_DIMENSION_STEP,
    METRIC_DRILL_SUCCEEDED,
    METRIC_HOURS_SINCE_DRILL,
    METRIC_NAMESPACE,
    METRIC_SNAPSHOTS_CREATED,
    METRIC_SNAPSHOTS_DELETED,
    METRIC_SNAPSHOTS_FAILED,
    METRIC_STEP_FAILED,
    PREFLIGHT_FAILED_METRIC,
    SERVICE_NAME,
    construct_name,
)
from smart_vault_infra.config import DeploymentConfig

FIVE_MINUTES = Duration.minutes(5)


def custom_metric(name: str, *, period: Duration, statistic: str = "Sum") -> cloudwatch.Metric:
    """A Smart Vault EMF metric with Powertools' default dimension only."""
    return cloudwatch.Metric(
        namespace=METRIC_NAMESPACE,
        metric_name=name,
        dimensions_map={"service": SERVICE_NAME},
        period=period,
        statistic=statistic,
    )


def copies_completed(region: str, period: Duration) -> cloudwatch.Metric:
    return cloudwatch.Metric(
        namespace=METRIC_NAMESPACE,
        metric_name=METRIC_COPIES_COMPLETED,
        dimensions_map={"service": SERVICE_NAME, METRIC_DIMENSION_REGION: region},
        period=period,
        statistic="Sum",
        label=region,
    )


class Monitoring(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: DeploymentConfig,
        topic: sns.ITopic,
        functions: dict[str, lambda_.Function],
        state_machine: sfn.StateMachine,
        drill_state_machine: sfn.StateMachine,
        dead_letters: sqs.Queue,
    ) -> None:
        super().__init__(scope, construct_id)
        self._config = config
        self._topic = topic
        self.alarms = (
            self._function_alarms(functions)
            + self._run_alarms(state_machine, dead_letters)
            + self._drill_alarms(drill_state_machine)
            + [self._preflight_alarm()]
        )
        self.dashboard = self._dashboard(functions, state_machine)

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
            # Named after the deployment: the topic and key policies allow exactly these alarms.
            alarm_name=self._config.alarm_name(construct_id),
            metric=metric,
            threshold=threshold,
            comparison_operator=comparison,
            evaluation_periods=evaluation_periods,
            datapoints_to_alarm=evaluation_periods,
            treat_missing_data=missing,
            alarm_description=description,
        )
        alarm.add_alarm_action(cw_actions.SnsAction(self._topic))
        return alarm

    def _function_alarms(self, functions: dict[str, lambda_.Function]) -> list[cloudwatch.Alarm]:
        # No Errors alarm: errors that Step Functions retried successfully are not failures; what
        # still fails after its retries is counted by StepsFailed.
        alarms = []
        for key, function in functions.items():
            name = construct_name(key)
            alarms += [
                self._alarm(
                    f"{name}Throttles",
                    function.metric_throttles(period=FIVE_MINUTES, statistic="Sum"),
                    threshold=0,
                    description=f"Smart Vault {key} function was throttled",
                ),
                self._alarm(
                    f"{name}DurationNearTimeout",
                    function.metric_duration(period=FIVE_MINUTES, statistic="p99"),
                    threshold=function.timeout.to_milliseconds() * 0.8,  # type: ignore[union-attr]
                    description=f"Smart Vault {key} function p99 duration above 80% of its timeout",
                ),
            ]
        return alarms

    def _copy_alarms(self, silence: int) -> list[cloudwatch.Alarm]:
        """Off-site copies: a failed Copy step, and a destination that stopped receiving copies."""
        regions = [d.region for d in self._config.settings.copy_regions]
        if not regions:
            return []
        alarms = [
            self._alarm(
                "CopiesFailed",
                cloudwatch.Metric(
                    namespace=METRIC_NAMESPACE,
                    metric_name=METRIC_STEP_FAILED,
                    dimensions_map={"service": SERVICE_NAME, METRIC_DIMENSION_STEP: "Copy"},
                    period=FIVE_MINUTES,
                    statistic="Sum",
                ),
                threshold=0,
                description="An off-site copy failed (the alert names the instance, Region and AWS error)",
            )
        ]
        for region in regions:
            alarms.append(
                self._alarm(
                    f"StaleCopies-{region}",
                    copies_completed(region, Duration.hours(1)),
                    threshold=1,
                    comparison=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
                    evaluation_periods=silence,
                    missing=cloudwatch.TreatMissingData.BREACHING,
                    description=f"No off-site copy completed in {region} for {silence} hours",
                )
            )
        return alarms

    def _run_alarms(self, machine: sfn.StateMachine, dead_letters: sqs.Queue) -> list[cloudwatch.Alarm]:
        silence = self._config.expected_interval_hours + 2
        return [
            *self._copy_alarms(silence),
            self._alarm(
                "ExecutionsFailed",
                machine.metric_failed(period=FIVE_MINUTES),
                threshold=0,
                description="A Smart Vault backup run failed",
            ),
            self._alarm(
                "ExecutionsTimedOut",
                machine.metric_timed_out(period=FIVE_MINUTES),
                threshold=0,
                description="A Smart Vault backup run timed out",
            ),
            self._alarm(
                "ExecutionsAborted",
                machine.metric_aborted(period=FIVE_MINUTES),
                threshold=0,
                description="A Smart Vault backup run was aborted",
            ),
            self._alarm(
                "ExecutionThrottled",
                machine.metric_throttled(period=FIVE_MINUTES),
                threshold=0,
                description="Step Functions throttled Smart Vault",
            ),
            self._alarm(
                "SnapshotsFailedAlarm",
                custom_metric(METRIC_SNAPSHOTS_FAILED, period=FIVE_MINUTES),
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
                    period=FIVE_MINUTES,
                    label="Failed steps (after retries)",
                    using_metrics={},
                ),
                threshold=0,
                description="A Smart Vault step failed after its retries (the alert names instance and step)",
            ),
            self._alarm(
                "DeadLetters",
                dead_letters.metric_approximate_number_of_messages_visible(period=FIVE_MINUTES, statistic="Maximum"),
                threshold=0,
                description="The schedule or the status-change rule could not deliver (see the dead-letter queue)",
            ),
            # Backups that silently stop (schedule disabled, permissions broken before Discover)
            # produce no failure: alarm when no run succeeded for the interval plus a margin.
            self._alarm(
                "NoSuccessfulBackup",
                machine.metric_succeeded(period=Duration.hours(1), statistic="Sum"),
                threshold=1,
                comparison=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
                evaluation_periods=silence,
                missing=cloudwatch.TreatMissingData.BREACHING,
                description=f"No successful Smart Vault run in {silence} hours",
            ),
        ]

    def _drill_alarms(self, machine: sfn.StateMachine) -> list[cloudwatch.Alarm]:
        window = 2 * self._config.drill_interval_hours
        failed = self._alarm(
            "DrillFailed",
            cloudwatch.MathExpression(
                expression="failed + timedout + aborted",
                using_metrics={
                    "failed": machine.metric_failed(period=FIVE_MINUTES),
                    "timedout": machine.metric_timed_out(period=FIVE_MINUTES),
                    "aborted": machine.metric_aborted(period=FIVE_MINUTES),
                },
                period=FIVE_MINUTES,
                label="Restore drills that did not pass",
            ),
            threshold=0,
            description="A Smart Vault restore drill failed (the alert names instance, step and AWS error)",
        )
        # PutMetricAlarm: "An alarm's total current evaluation period can be no longer than seven
        # days". Two drill intervals within it: no DrillSucceeded datapoint for that long alarms,
        # silence included. Longer (weekly by default): each drill reports the hours since the
        # last drill that passed, and the alarm fires when that exceeds two intervals
        # (docs/decisions.md, "Restore drills").
        if window <= 7 * 24:
            metric: cloudwatch.IMetric = custom_metric(METRIC_DRILL_SUCCEEDED, period=Duration.hours(1))
            none_passed = self._alarm(
                "NoSuccessfulDrill",
                metric,
                threshold=1,
                comparison=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
                evaluation_periods=window,
                missing=cloudwatch.TreatMissingData.BREACHING,
                description=f"No Smart Vault restore drill passed in {window} hours",
            )
        else:
            metric = custom_metric(METRIC_HOURS_SINCE_DRILL, period=Duration.days(1), statistic="Maximum")
            none_passed = self._alarm(
                "NoSuccessfulDrill",
                metric,
                threshold=window,
                description=f"No Smart Vault restore drill passed in {window} hours (two drill intervals)",
            )
        return [failed, none_passed]

    def _preflight_alarm(self) -> cloudwatch.Alarm:
        """The last preflight found a denied or failed check (PreflightReport writes 1, or 0 when
        it passed, so the alarm clears on the next clean preflight)."""
        return self._alarm(
            "PreflightFailed",
            custom_metric(PREFLIGHT_FAILED_METRIC, period=Duration.hours(1), statistic="Maximum"),
            threshold=1,
            comparison=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            description="A Smart Vault preflight found a denied or failed check (`smart-vault preflight` shows it)",
        )

    def _dashboard(self, functions: dict[str, lambda_.Function], machine: sfn.StateMachine) -> cloudwatch.Dashboard:
        hour = Duration.hours(1)
        dashboard = cloudwatch.Dashboard(self, "Dashboard", dashboard_name=f"{self._config.deployment_id}-backups")
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
                    custom_metric(METRIC_SNAPSHOTS_CREATED, period=hour),
                    custom_metric(METRIC_SNAPSHOTS_DELETED, period=hour),
                    custom_metric(METRIC_SNAPSHOTS_FAILED, period=hour),
                ],
            ),
            cloudwatch.GraphWidget(title="GiB backed up", left=[custom_metric(METRIC_BACKUP_GIB, period=hour)]),
        )
        dashboard.add_widgets(
            cloudwatch.GraphWidget(title="Errors per step", left=[f.metric_errors() for f in functions.values()]),
            cloudwatch.GraphWidget(
                title="Duration p99 per step",
                left=[f.metric_duration(statistic="p99") for f in functions.values()],
            ),
        )
        if self._config.settings.copy_regions:
            dashboard.add_widgets(
                cloudwatch.GraphWidget(
                    title="Off-site copies completed per Region",
                    left=[copies_completed(d.region, hour) for d in self._config.settings.copy_regions],
                ),
                cloudwatch.GraphWidget(
                    title="Off-site copies",
                    left=[
                        custom_metric(METRIC_COPIES_STARTED, period=hour),
                        custom_metric(METRIC_COPIES_DELETED, period=hour),
                        custom_metric(METRIC_COPY_SLOT_WAITS, period=hour),
                    ],
                ),
            )
        return dashboard
