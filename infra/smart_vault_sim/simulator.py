"""`smart-vault simulate`: the real workflow on an emulated AWS account, with a virtual clock.

The state machine is statemachine/smart_vault.asl.json with its ``${...}`` placeholders filled
as CloudFormation fills them on deploy; moto's Step Functions interpreter executes it; every
Lambda task runs the real handler in-process (see lambda_host); faults are real botocore errors
(see aws_tap). Contract of the input and the report: docs/scenarios.md.
"""

from __future__ import annotations

import dataclasses
import gc
import json
import logging
import os
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from unittest import mock

import boto3
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.ec2.models.availability_zones_and_regions import Zone

from smart_vault.aws import reset_clients
from smart_vault.constants import (
    BACKUP_SUBSTITUTION_FUNCTION_ARNS,
    FUNCTION_HANDLERS,
    SCHEDULE_NAME_ENV,
    SUBSTITUTION_BUCKET,
    SUBSTITUTION_TOPIC,
    TAG_INSTANCE_ID,
    TAG_MANAGED,
    TAG_PRE_SCRIPT,
    TAG_RUN_ID,
    TAG_SOURCE_SNAPSHOT,
    TAG_SOURCE_VOLUME,
)
from smart_vault.models import RunContext, execution_prefix, orphans_key, outcomes_prefix, skipped_key
from smart_vault.observability import logger
from smart_vault.redrive.attempts import attempt_prefix, merged_audit
from smart_vault.retention import deferral
from smart_vault.settings import Settings, VaultSettings, get_settings
from smart_vault.validation import format_time
from smart_vault_infra.paths import definition_path
from smart_vault_sim import (
    drills,
    fleet,
    fleet_keys,
    moto_fixes,
    moto_speed,
    preflight,
    regions,
    sfn_paging,
    tiering,
    zones,
)
from smart_vault_sim.authorization import Authorizer
from smart_vault_sim.aws_tap import DRILL_MACHINE, MACHINES, OPERATOR, STATE_MACHINE, AwsTap, Fault
from smart_vault_sim.dry_run import answer_dry_run
from smart_vault_sim.ebs_direct import EbsDirect
from smart_vault_sim.ec2_buckets import Ec2Load
from smart_vault_sim.history import read_history
from smart_vault_sim.history import retries as _retries
from smart_vault_sim.history import state_outcomes as _state_outcomes
from smart_vault_sim.iam import Policy
from smart_vault_sim.initialization import VolumeInitialization
from smart_vault_sim.lambda_host import LambdaHost, function_name
from smart_vault_sim.limits import RequestLimits
from smart_vault_sim.redrive import Redrives, this_attempt
from smart_vault_sim.restore_rules import restored_targets
from smart_vault_sim.run_command import RunCommand, SsmDef
from smart_vault_sim.scenario import REDRIVE, SIMULATOR_OWNED, Scenario
from smart_vault_sim.scenario_checks import ScenarioError
from smart_vault_sim.seeding import seeded
from smart_vault_sim.sfn_hooks import PAYLOAD_LIMIT, InterpreterHooks, RunEvents
from smart_vault_sim.snapshot_lag import Lag, switched_on
from smart_vault_sim.snapshot_locks import SnapshotLocks
from smart_vault_sim.stack_iam import Emulated, Role, StackIam, is_drill_machine, synthesized_template
from smart_vault_sim.workflow_io import readable as _readable
from smart_vault_sim.workflow_io import scheduled_event, substitute

# Operations whose request names only a snapshot: a fault naming an instance targets its new snapshots.
PER_SNAPSHOT_OPERATIONS = ("LockSnapshot",)
HISTORY_LIMIT = 25_000
WALL_LIMIT_SECONDS = 900  # a stuck interpreter is an internal error, not a hang
DEPLOYMENT_ID = "smart-vault-sim"
SCHEDULE_NAME = f"{DEPLOYMENT_ID}-backup"  # the backup schedule the stack deploys (preflight checks it)
BUCKET = "smart-vault-sim-inventory"
FUNCTION_PREFIX = "smart-vault"
# The emulated bucket and topic are not encrypted by moto; the stack's key ARN stands for the key
# whose permissions the stack's policies must grant (see authorization.Authorizer._with_kms).
KEY_ARN = f"arn:aws:kms:{{region}}:{fleet.ACCOUNT_ID}:key/0f1e2d3c-4b5a-6978-8a9b-acbdcedf0011"
STATE_MACHINE_SESSION = "StepFunctionsSession"  # Step Functions' role session (random on AWS)
TemplateEdit = Callable[[dict[str, Any]], None]


@dataclass
class Account:
    """The emulated account's clients and what the simulator knows about its resources."""

    region: str
    ec2: Any
    s3: Any
    sns: Any
    sfn: Any
    topic_arn: str
    state_machine_arn: str
    drill_state_machine_arn: str = ""
    instance_ids: dict[str, str] = field(default_factory=dict)  # name -> id
    volumes: dict[str, tuple[str, str]] = field(default_factory=dict)  # volume id -> (name, device)
    labels: dict[str, str] = field(default_factory=dict)  # snapshot id -> label
    amis: dict[str, str] = field(default_factory=dict)  # snapshot id -> AMI that uses it
    detached_volumes: set[str] = field(default_factory=set)  # deleted volumes of existing snapshots
    terminated: set[str] = field(default_factory=set)  # names terminated by terminated_at


@contextmanager
def _collect_garbage_rarely() -> Iterator[None]:
    """A fleet run keeps millions of objects alive (every child's state); with the default
    thresholds the cycle collector rescans them again and again (1,000 instances: 3 s of
    collections, growing faster than the fleet). Collect every 50,000 allocations instead."""
    previous = gc.get_threshold()
    gc.set_threshold(50_000, 20, 20)
    try:
        yield
    finally:
        gc.set_threshold(*previous)


@contextmanager
def _environment(values: Mapping[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


class Simulation:
    def __init__(
        self,
        scenario: Scenario,
        *,
        verbose: bool = False,
        edit_template: TemplateEdit | None = None,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        self.scenario = scenario
        self.verbose = verbose
        self.progress = progress or (lambda _line: None)  # `simulate` prints it on stderr
        self.announce = progress  # a first synthesis: to stderr unless the caller hears progress
        self.tap = AwsTap()
        self.zones: list[Zone] = []  # the scenario Region's zones while emulated (zones.opted_in)
        self.hooks = InterpreterHooks()
        # The 14 days are measured on the scenario's clock, within a run on its virtual time.
        self.redrives = Redrives(now=lambda: self.clock + timedelta(seconds=self.hooks.clock.now()))
        self.pending_checks: dict[str, int] = {}  # snapshot id -> checks left that see pending
        self.clock: datetime = scenario.runs[0]
        self._last_backup: tuple[str, str, str] = ("", "", "")  # ARN, run id, name of the latest backup run
        self.edit_template = edit_template  # tests: narrow the synthesized stack before it is judged
        self.authorizer: Authorizer | None = None
        self.limits = RequestLimits()
        self.locks = SnapshotLocks(scenario.region, lambda: self.clock)
        self.snapshot_faults: list[tuple[Fault, str]] = []  # (fault, instance id) per PER_SNAPSHOT_OPERATIONS
        self.wall_limit_seconds = WALL_LIMIT_SECONDS  # make bench raises it for large fleets
        # EC2's token buckets and per-volume rules on the fleet's virtual clock (ec2_buckets).
        self.hooks.lambda_seconds = self.tap.last_duration
        self.ec2_load = Ec2Load(
            backend=lambda: fleet.ec2_backend(scenario.region),
            relative_now=lambda: self.hooks.clock.now() + self.tap.elapsed,
            overrides=scenario.ec2_api_limits,
        )
        self._names_by_id: dict[str, str] = {}
        self._specs_by_name: dict[str, Any] = {}
        self.copying = regions.CopyEmulation(
            regions=scenario.settings.copy_regions, checks_for=self._checks_for, now=lambda: self.clock
        )
        self.locks.other_regions = self.copying_regions()
        # The EBS direct APIs over the snapshots' block content model (ebs_direct), on the
        # scenario clock (tokens) and the run's virtual seconds (request-rate quotas).
        self.ebs_direct = EbsDirect(
            now=lambda: self.clock,
            seconds=lambda: self.hooks.clock.now() + self.tap.elapsed,
            # Copies are made from the scenario's Region (CopyEmulation keys them by destination).
            source_of=lambda cid: (
                (scenario.region, self.copying.source_of[cid][1]) if cid in self.copying.source_of else None
            ),
        )
        # DescribeVolumeStatus and VolumeInitializationRate (moto has neither), same clock.
        self.initialization = VolumeInitialization(
            region=scenario.region, seconds=lambda: self.hooks.clock.now() + self.tap.elapsed
        )
        self.fleet_keys = fleet_keys.FleetKeys()  # volumes' customer managed keys (fleet_keys)
        # EC2's eventual consistency (snapshot_lag), when the scenario or the environment asks.
        self.lag = Lag() if switched_on(scenario.eventual_consistency) else None
        self.subscriptions = preflight.Subscriptions(scenario.alert_subscriptions)
        # SSM Run Command on the virtual clock (run_command); when each new snapshot started.
        self.run_command = RunCommand(
            now=lambda: self.hooks.clock.now() + self.tap.elapsed,
            clock=lambda: self.clock,
            instance=self._ssm_of,
            region=scenario.region,
        )
        self.snapshot_started: dict[str, float] = {}

    def synthesize(self) -> None:
        """Synthesize the stack now (cached per context), so that a timed run does not include it."""
        self._template()

    def _template(self) -> dict[str, Any] | None:
        """The synthesized stack, with the simulation's settings as CDK context (None: IAM off)."""
        if not self.scenario.enforce_iam:
            return None
        template = synthesized_template(cdk_context(self.scenario.settings), announce=self.announce)
        if self.edit_template is not None:
            self.edit_template(template)
        return template

    def _enforce_iam(self, template: dict[str, Any]) -> None:
        """Every function and state machine call is authorized against the stack's IAM from now on."""
        account = self.account
        emulated = Emulated(
            region=self.scenario.region,
            account=fleet.ACCOUNT_ID,
            bucket=BUCKET,
            topic_arn=account.topic_arn,
            state_machine_arn=account.state_machine_arn,
            function_arns={key: self.host.arn(key) for key in FUNCTION_HANDLERS},
            key_arn=KEY_ARN.format(region=self.scenario.region),
            drill_state_machine_arn=account.drill_state_machine_arn,
        )
        iam = StackIam.from_template(template, emulated)
        preflight.apply_denies(iam, self.scenario.deny)
        sessions = {key: function_name(FUNCTION_PREFIX, key) for key in FUNCTION_HANDLERS}
        sessions[STATE_MACHINE] = STATE_MACHINE_SESSION
        sessions[DRILL_MACHINE] = drills.DRILL_SESSION
        self.authorizer = Authorizer(iam, region=self.scenario.region, account=fleet.ACCOUNT_ID, sessions=sessions)
        self.tap.checks.append(self.authorizer)
        machine_arn = account.state_machine_arn
        self.hooks.authorize_children = lambda: (
            self.authorizer.start_child_executions(machine_arn) if self.authorizer else None
        )

    # -- set-up -------------------------------------------------------------------------
    def _env(self) -> dict[str, str]:
        settings_env = {
            **{k: v for k, v in self.scenario.settings.to_env().items()},
            "DEPLOYMENT_ID": DEPLOYMENT_ID,
            "BUCKET_NAME": BUCKET,
            SCHEDULE_NAME_ENV: SCHEDULE_NAME,
        }
        return {
            "AWS_DEFAULT_REGION": self.scenario.region,
            "AWS_REGION": self.scenario.region,
            "AWS_ACCESS_KEY_ID": "simulated",
            "AWS_SECRET_ACCESS_KEY": "simulated",
            "AWS_SESSION_TOKEN": "simulated",
            "POWERTOOLS_TRACE_DISABLED": "true",
            "POWERTOOLS_LOG_LEVEL": "DEBUG" if self.verbose else "ERROR",
            "POWERTOOLS_METRICS_NAMESPACE": "SmartVault",
            # moto's 1,300 built-in AMI snapshots would slow every DescribeSnapshots filter.
            "MOTO_EC2_LOAD_DEFAULT_AMIS": "false",
            # The account is emulated: an operator's AWS_ENDPOINT_URL (or a profile's endpoint_url)
            # would send its calls past moto (AWS SDKs and Tools Reference Guide, "Service-specific
            # endpoints": AWS_IGNORE_CONFIGURED_ENDPOINT_URLS).
            "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "true",
            **settings_env,
        }

    def _ssm_of(self, instance_id: str) -> tuple[str, SsmDef, str] | None:
        """The scenario's instance behind an id: its name, its ``ssm`` and the document that
        freezes it (its pre-script tag, else the deployment's), for run_command."""
        spec = self._instance_def(instance_id)
        if spec is None:
            return None
        pre = spec.tags.get(TAG_PRE_SCRIPT, self.scenario.settings.consistency_pre_document)
        return spec.name, spec.ssm or SsmDef(), pre

    def _on_created(self, snapshot: Any, instance_id: str) -> None:
        # A fault naming the instance on a call that names only the snapshot (LockSnapshot)
        # applies to the snapshots the instance's backups create.
        for fault, owner in self.snapshot_faults:
            if owner == instance_id:
                fault.targets += (snapshot.id,)
        spec = self._instance_def(instance_id)
        if spec is None:
            return
        if spec.snapshot_error:
            snapshot.status = "error"
        elif spec.snapshot_checks_until_complete:
            snapshot.status = "pending"
            self.pending_checks[snapshot.id] = spec.snapshot_checks_until_complete
        self.ec2_load.on_created(snapshot, spec.snapshot_seconds)
        self.snapshot_started[snapshot.id] = round(self.hooks.clock.now() + self.tap.elapsed, 3)

    def _checks_for(self, instance_id: str) -> int:
        spec = self._instance_def(instance_id)
        return spec.snapshot_checks_until_complete if spec is not None else 0

    def _instance_def(self, instance_id: str) -> Any:
        if len(self._names_by_id) != len(self.account.instance_ids):
            self._names_by_id = {v: k for k, v in self.account.instance_ids.items()}
            self._specs_by_name = {i.name: i for i in self.scenario.instances}
        return self._specs_by_name.get(self._names_by_id.get(instance_id, ""))

    def _advance_pending(self, params: dict[str, Any], model: Any, context: Any = None, **_: Any) -> None:
        """Each completion check of a pending snapshot brings it one check closer to done."""
        if self.tap.caller(context) in (None, *MACHINES):
            return
        self.ec2_load.complete_due()
        named = list(params.get("SnapshotIds") or ())
        for spec in params.get("Filters") or ():
            if spec.get("Name") == "snapshot-id":
                named += spec.get("Values") or ()
        for snapshot_id in named:
            left = self.pending_checks.get(snapshot_id)
            if left is None:
                continue
            if left > 0:
                self.pending_checks[snapshot_id] = left - 1
            else:
                fleet.set_snapshot_state(self.scenario.region, snapshot_id, "completed", at=self.clock)
                del self.pending_checks[snapshot_id]
                self.ec2_load.completed(snapshot_id)

    def _build_account(self, template: dict[str, Any] | None) -> Account:
        region = self.scenario.region
        s3 = boto3.client("s3", region_name=region)
        if region == "us-east-1":
            s3.create_bucket(Bucket=BUCKET)
        else:
            s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": region})
        sns = boto3.client("sns", region_name=region)
        topic_arn = sns.create_topic(Name="smart-vault-alerts")["TopicArn"]
        self.subscriptions.create(sns, topic_arn)
        sfn = boto3.client("stepfunctions", region_name=region)
        values = {name: self.host.arn(key) for name, key in BACKUP_SUBSTITUTION_FUNCTION_ARNS.items()}
        values[SUBSTITUTION_BUCKET] = BUCKET
        values[SUBSTITUTION_TOPIC] = topic_arn
        definition = substitute(definition_path().read_text(), values)
        name, role = _state_machine_identity(template)
        machine = sfn.create_state_machine(
            name=name,
            definition=definition,
            roleArn=f"arn:aws:iam::{fleet.ACCOUNT_ID}:role/{role}",
            type="STANDARD",
        )
        account = Account(
            region=region,
            ec2=boto3.client("ec2", region_name=region),
            s3=s3,
            sns=sns,
            sfn=sfn,
            topic_arn=topic_arn,
            state_machine_arn=machine["stateMachineArn"],
        )
        drill_name, drill_role = drills.identity(template, DEPLOYMENT_ID)
        account.drill_state_machine_arn = sfn.create_state_machine(
            name=drill_name,
            definition=drills.definition(drills.substitutions(self, topic_arn)),
            roleArn=f"arn:aws:iam::{fleet.ACCOUNT_ID}:role/{drill_role}",
            type="STANDARD",
        )["stateMachineArn"]
        self.tap.drill_machine_arn = account.drill_state_machine_arn
        # The backup schedule as the stack deploys it (the simulator itself starts each run at
        # its `at`; the schedule is there for preflight's check that it is enabled).
        boto3.client("scheduler", region_name=region).create_schedule(
            Name=SCHEDULE_NAME,
            ScheduleExpression="cron(0 3 * * ? *)",
            FlexibleTimeWindow={"Mode": "OFF"},
            Target={"Arn": account.state_machine_arn, "RoleArn": f"arn:aws:iam::{fleet.ACCOUNT_ID}:role/schedule"},
            State="ENABLED",
        )
        self._add_fleet(account)
        self._add_existing_snapshots(account)
        self._add_faults(account)
        return account

    def _add_fleet(self, account: Account) -> None:
        names = [v.kms_key for spec in self.scenario.instances for v in spec.volumes if v.kms_key]
        key_arns = fleet_keys.create_keys(account.region, names)
        for spec in self.scenario.instances:
            built = fleet.add_instance(
                account.ec2,
                region=account.region,
                name=spec.name,
                tags=spec.tags,
                volumes=[
                    fleet.VolumeSpec(
                        device=v.device,
                        size_gib=v.size_gib,
                        tags=v.tags,
                        volume_type=v.type,
                        kms_key=key_arns.get(v.kms_key) if v.kms_key else None,
                    )
                    for v in spec.volumes
                ],
                state=spec.state,
            )
            account.instance_ids[spec.name] = built.instance_id
            filesystems = {v.device: v.filesystem for v in spec.volumes}
            for device, volume_id in built.volume_ids.items():
                account.volumes[volume_id] = (spec.name, device)
                self.ebs_direct.set_filesystem(volume_id, filesystems[device])

    def _add_existing_snapshots(self, account: Account) -> None:
        first = self.scenario.runs[0]
        by_device = {(n, d): v for v, (n, d) in account.volumes.items()}
        # A detached snapshot's volume existed once: create it, snapshot it, then delete it, so
        # the snapshot names a volume id that DescribeVolumes no longer knows (as on AWS).
        gone: dict[tuple[str, str], str] = {}
        for snap in self.scenario.existing_snapshots:
            if snap.detached and (snap.instance, snap.device) not in gone:
                volume_id = fleet.add_volume(
                    account.ec2, region=account.region, instance_id=account.instance_ids[snap.instance]
                )
                gone[(snap.instance, snap.device)] = volume_id
                account.volumes[volume_id] = (snap.instance, snap.device)
        for snap in self.scenario.existing_snapshots:
            instance_id = account.instance_ids[snap.instance]
            tags = {TAG_INSTANCE_ID: instance_id, TAG_RUN_ID: f"pre-existing-{snap.label}"}
            if snap.managed:
                tags[TAG_MANAGED] = snap.deployment or DEPLOYMENT_ID
            key = (snap.instance, snap.device)
            snapshot_id = fleet.add_snapshot(
                account.ec2,
                region=account.region,
                volume_id=gone[key] if snap.detached else by_device[key],
                start_time=first - timedelta(days=snap.age_days),
                tags=tags,
                state=snap.state,
                description=f"existing snapshot {snap.label}",
            )
            account.labels[snapshot_id] = snap.label
            if snap.used_by_ami:
                account.amis[snapshot_id] = fleet.pin_to_ami(
                    account.ec2, region=account.region, snapshot_id=snapshot_id, name=f"ami-of-{snap.label}"
                )
        for volume_id in gone.values():
            account.ec2.delete_volume(VolumeId=volume_id)
        account.detached_volumes.update(gone.values())

    def _add_faults(self, account: Account) -> None:
        for fault in self.scenario.faults:
            if fault.function is not None:
                named = (account.instance_ids[fault.instance],) if fault.instance else ()
                self.host.failures.append(
                    Fault(operation=fault.function, code=fault.error, remaining=fault.count, targets=named)
                )
                continue
            targets: list[str] = []
            if fault.instance:
                instance_id = account.instance_ids[fault.instance]
                targets = [
                    instance_id,
                    *(v for v, (n, _) in account.volumes.items() if n == fault.instance),
                ]
            if fault.snapshot:
                targets += [sid for sid, label in account.labels.items() if label == fault.snapshot]
            more = restored_targets(account.region, targets[0]) if fault.instance else None
            added = self.tap.fail(fault.operation, fault.error, count=fault.count, targets=targets, more_targets=more)
            if fault.instance and fault.operation in PER_SNAPSHOT_OPERATIONS:
                self.snapshot_faults.append((added, account.instance_ids[fault.instance]))

    def _terminate_due(self, at: datetime) -> None:
        """Terminate each instance whose ``terminated_at`` has come by this run, once."""
        for spec in self.scenario.instances:
            if spec.terminated_at is None or spec.terminated_at > at or spec.name in self.account.terminated:
                continue
            self.account.ec2.terminate_instances(InstanceIds=[self.account.instance_ids[spec.name]])
            self.account.terminated.add(spec.name)

    # -- running ------------------------------------------------------------------------
    @contextmanager
    def emulated(self) -> Iterator[Account]:
        """The emulated account with the stack's resources, the fleet and the hooks in place."""
        template = self._template()  # before the emulated account: synthesis is not an AWS call
        warnings.filterwarnings("ignore", message="No application metrics to publish")
        logging.getLogger("moto").setLevel(logging.CRITICAL)
        logging.getLogger("moto.stepfunctions").disabled = True
        with (
            _environment(self._env()),
            _collect_garbage_rarely(),
            mock_aws(config={"stepfunctions": {"execute_state_machine": True}}),
            moto_fixes.patched(now=lambda: self.clock, on_created=self._on_created),
            moto_speed.patched(),
            sfn_paging.paginated(),  # GetExecutionHistory in pages of maxResults, as AWS answers
            self.locks.everywhere(),
            self.ebs_direct.everywhere(),
            self.initialization.everywhere(),
            self.lag.everywhere() if self.lag else nullcontext(),
            tiering.patched(now=lambda: self.clock),
            regions.patched(self.copying),
            fleet_keys.patched(self.fleet_keys),
            zones.opted_in(self.scenario.region) as self.zones,
            self.hooks.installed(),
            # RedriveExecution, redrive fields, $$.Execution.RedriveCount (moto has none), with
            # the 14 days measured on the scenario's clock.
            self.redrives.installed(),
            # A handler's backoff sleeps pass on the virtual clock (smart_vault.retention.deferral).
            mock.patch.object(deferral, "pause", self.tap.wait),
            # Last: the same scenario gets the same ids (seeding.py).
            seeded(self.scenario.name, (self.scenario.region, *self.copying_regions())),
        ):
            reset_clients()
            logger.setLevel("DEBUG" if self.verbose else "CRITICAL")
            self.tap.install()
            # moto has no snapshot lock: modelled on the virtual clock, answered before moto.
            self.locks.install(boto3._get_default_session().events)
            self.ebs_direct.install(boto3._get_default_session().events)
            self.initialization.install(boto3._get_default_session().events)
            if self.lag:
                self.lag.install(boto3._get_default_session().events)
            self.subscriptions.install(boto3._get_default_session().events)
            self.run_command.install(boto3._get_default_session().events)
            preflight.ServiceQuotas().install(boto3._get_default_session().events)
            self.recycle_bin = preflight.RecycleBin(self.scenario.settings.recycle_bin_days, DEPLOYMENT_ID)
            self.recycle_bin.install(boto3._get_default_session().events)
            preflight.EbsDefaultKey(self.scenario.region, fleet.ACCOUNT_ID).install(boto3._get_default_session().events)
            boto3._get_default_session().events.register(
                "before-parameter-build.ec2.DescribeSnapshots", self._advance_pending
            )
            self.host = LambdaHost(
                prefix=FUNCTION_PREFIX, region=self.scenario.region, account=fleet.ACCOUNT_ID, tap=self.tap
            )
            self.host.install()
            self.account = self._build_account(template)
            if template is not None:
                self._enforce_iam(template)
            # DryRun: answered once IAM allowed it, before anything can act on it (dry_run.py).
            self.tap.checks.append(answer_dry_run)
            self.tap.operator_checks.append(answer_dry_run)
            self.tap.checks.append(self.limits)  # after IAM: AWS authorizes a request before validating it
            self.tap.operator_checks.append(self.limits)
            self.tap.checks.append(self.ec2_load)  # an invalid or denied request takes no token
            if self.scenario.settings.copy_regions:
                self.copying.create_keys()
                self.copying.key_allowed = self.authorizer.key_allowed if self.authorizer else None
                self.copying.source_key_problem = self.fleet_keys.copy_source_problem
                self.tap.checks.append(self.copying)
            self.fleet_keys.allowed = self.authorizer.ebs_key_allowed if self.authorizer else None
            self.tap.checks.append(self.fleet_keys)
            os.environ["TOPIC_ARN"] = self.account.topic_arn
            get_settings.cache_clear()
            try:
                yield self.account
            finally:
                reset_clients()
                get_settings.cache_clear()

    def copying_regions(self) -> tuple[str, ...]:
        return tuple(d.region for d in self.scenario.settings.copy_regions)

    def operator_session(self, **kwargs: Any) -> Any:
        """A boto3 session as the operator CLI opens one, its calls counted and faulted."""
        return self.tap.watch(boto3.Session(**kwargs))

    def authorize_operator(self, document: Mapping[str, Any]) -> None:
        """From now on the operator's calls are authorized against this identity policy (the
        example policy for `smart-vault restore`, docs/restore.md), as the functions' against their roles."""
        assert self.authorizer is not None, "needs settings.enforce_iam"
        arn = f"arn:aws:iam::{fleet.ACCOUNT_ID}:role/smart-vault-operator"
        role = Role(
            logical_id="Operator", arn=arn, name="smart-vault-operator", policies=(Policy.parse("operator", document),)
        )
        self.authorizer.iam.roles[OPERATOR] = role
        self.tap.operator_checks.insert(0, self.authorizer)

    def run(self) -> dict[str, Any]:
        self.progress("synthesizing the stack…" if self.scenario.enforce_iam else "building the emulated account…")
        with self.emulated():
            return self.report()

    def report(self) -> dict[str, Any]:
        """Inside ``emulated()``: every run of the scenario, and the snapshots after the last."""
        runs = []
        for i, at in enumerate(self.scenario.runs):
            workflow = self.scenario.workflows[i] if i < len(self.scenario.workflows) else "backup"
            kind = "" if workflow == "backup" else f" ({workflow})"
            self.progress(f"run {i + 1} of {len(self.scenario.runs)}{kind} at {format_time(at)}")
            runs.append(self.run_at(i, at))
        return {"scenario": self.scenario.name, "runs": runs, "final_snapshots": self._final_snapshots()}

    def run_at(self, index: int, at: datetime) -> dict[str, Any]:
        """One run inside ``emulated()``, for callers that act between runs (tests, demos)."""
        workflows = self.scenario.workflows
        if index < len(workflows) and workflows[index] == "drill":
            return drills.run_drill(self, index, at)
        if index < len(workflows) and workflows[index] == "preflight":
            return preflight.run_preflight(self, index, at)
        return self._run_once(index, at, redrive=index < len(workflows) and workflows[index] == REDRIVE)

    def final_snapshots(self) -> list[dict[str, Any]]:
        return self._final_snapshots()

    def _snapshot_ids(self) -> set[str]:
        backend = fleet.ec2_backend(self.scenario.region)
        return {sid for sid, snap in backend.snapshots.items() if snap.volume.id in self.account.volumes}

    def _run_once(self, index: int, at: datetime, *, redrive: bool = False) -> dict[str, Any]:
        self.clock = at
        self._terminate_due(at)
        events = self.hooks.new_run()
        self.tap.reset_counts()
        self.ec2_load.start_run(at.timestamp())
        denied_before = len(self.authorizer.denied) if self.authorizer else 0
        refused_before = len(self.limits.refused)
        self.host.metrics.clear()
        before = self._snapshot_ids()
        copies_before = self._copy_ids()
        self.copying.new_run()
        self.run_command.new_run()
        backend = fleet.ec2_backend(self.scenario.region)
        before_details = {sid: backend.snapshots[sid] for sid in before}
        topic = self._topic()
        sent_before = len(topic.sent_notifications)

        started = time.monotonic()
        if redrive:
            arn, run_id, name = self._redrive(index)
        else:
            run_id = RunContext.run_id_for(at)
            name = f"sv-{run_id}-{index:04d}"
            arn = self.account.sfn.start_execution(
                stateMachineArn=self.account.state_machine_arn,
                name=name,
                input=json.dumps(scheduled_event(at, self.scenario.region, fleet.ACCOUNT_ID)),
            )["executionArn"]
            self._last_backup = (arn, run_id, name)
        description = self._wait_for(arn)
        wall = time.monotonic() - started
        # A redriven execution keeps its history: this attempt's events follow the last
        # ExecutionRedriven (Step Functions Developer Guide, "Redriving executions").
        history = [dict(e) for e in this_attempt(self._history(arn))]
        attempt = int(description.get("redriveCount") or 0)

        after = self._snapshot_ids()
        copies_after = self._copy_ids()
        created = sorted(after - before)
        deleted = sorted(before - after)
        audit = self._read(f"{attempt_prefix(execution_prefix(run_id, name), attempt)}/audit.json")
        # The audit record is Notify's reconciled view (every selected instance, journaled
        # deletions confirmed); the raw outcome records only when the run never got that far.
        # After a redrive, the picture is every attempt's record, the later over the earlier.
        pictures = [
            self._read(f"{attempt_prefix(execution_prefix(run_id, name), k)}/audit.json") for k in range(attempt + 1)
        ]
        merged = merged_audit(pictures)
        outcomes = _audit_outcomes(merged) if merged else self._outcomes(run_id, name)
        orphan_record = (audit or {}).get("orphans") or self._read(orphans_key(execution_prefix(run_id, name)))
        orphans = self._orphans(orphan_record)
        execution = self._execution_figures(description, history, events)
        execution["wall_seconds"] = round(wall, 3)
        execution["arn"] = arn
        execution["redrive_count"] = attempt
        alerts = [
            # message_bytes: the published Message as SNS measures it (its 262,144-byte limit).
            {"subject": n[2] or "", "message": _readable(n[1]), "message_bytes": len(n[1].encode())}
            for n in topic.sent_notifications[sent_before:]
        ]
        return {
            "at": format_time(at),
            "execution": execution,
            "instances": self._instances(outcomes),
            **({"redriven_instances": self._redriven(run_id, name, attempt, audit)} if redrive else {}),
            "created": [self._describe_created(sid) for sid in created],
            # A dry run only: the snapshots it predicts the real run would create.
            **({"would_create": _would_create(outcomes)} if _dry_run(audit, outcomes) else {}),
            "deleted": [
                {
                    "snapshot_id": sid,
                    "label": self.account.labels.get(sid),
                    "instance": self.account.volumes[before_details[sid].volume.id][0],
                }
                for sid in deleted
            ],
            "skipped_deletes": [
                {
                    "snapshot_id": s["snapshot_id"],
                    "label": self.account.labels.get(s["snapshot_id"]),
                    "instance": o.get("name"),
                    "reason": s["reason"],
                }
                for o in [*outcomes.values(), *orphans]
                for s in o.get("skipped_deletes") or ()
            ],
            "orphans": [{k: v for k, v in o.items() if k != "skipped_deletes"} for o in orphans],
            "breakers": [
                {
                    "instance": self._name(b["instance_id"]) or b["instance"],
                    "volume_id": b["volume_id"],
                    "would_delete": b["would_delete"],
                    "reason": b["reason"],
                    "orphan": b["orphan"],
                    "region": b.get("region"),
                    "approved_run_id": b.get("approved_run_id"),
                    "approved_snapshot_ids": b.get("approved_snapshot_ids") or [],
                    "release": b["release"],
                }
                for b in (audit or {}).get("breakers") or ()
            ],
            "copies": [self._describe_copy(region, cid) for region, cid in sorted(copies_after - copies_before)],
            "copies_deleted": [
                {"snapshot_id": cid, "region": region} for region, cid in sorted(copies_before - copies_after)
            ],
            "copies_peak_in_flight": dict(self.copying.peak_in_flight),
            "copies_refused_limit": self.copying.refused,
            "ssm_commands": self.run_command.report(),
            "alerts": alerts,
            "metrics": dict(sorted(self.host.metrics.items())),
            "api_calls": dict(sorted(self.tap.calls.items())),
            "state_machine_api_calls": dict(sorted(self.tap.state_machine_calls.items())),
            "iam_enforced": self.authorizer is not None,
            "iam_denied": self.authorizer.denied[denied_before:] if self.authorizer else [],
            "requests_refused": self.limits.refused[refused_before:],
            "faults_injected": dict(sorted(self.tap.injected.items())),
            "ec2_throttling": {"RequestLimitExceeded": 0, **dict(sorted(self.ec2_load.throttled.items()))},
            "virtual_seconds": round(self.hooks.clock.parent, 3),
            "lambda": {
                "invocations": self.tap.invocations,
                "seconds": round(self.tap.lambda_seconds, 3),
                "seconds_by_function": {k: round(v, 3) for k, v in sorted(self.tap.function_seconds.items())},
            },
            "states": _state_outcomes(history, [c.states for c in events.children.values()]),
        }

    def _redrive(self, index: int) -> tuple[str, str, str]:
        """RedriveExecution of the backup run before ``index``: its ARN, run id and name."""
        arn, run_id, name = self._last_backup
        try:
            self.account.sfn.redrive_execution(executionArn=arn)
        except ClientError as error:
            code, message = error.response["Error"]["Code"], error.response["Error"].get("Message", "")
            raise ScenarioError(f"runs[{index}].redrive", f"AWS refused the redrive: {code}: {message}") from None
        return arn, run_id, name

    def _redriven(self, run_id: str, name: str, attempt: int, audit: dict[str, Any] | None) -> list[str]:
        """The instances this attempt re-ran: its retry inventory, or (a redrive from Discover)
        every instance its audit record covers."""
        items = self._read(f"{attempt_prefix(execution_prefix(run_id, name), attempt)}/inventory.json")
        if items is None:
            items = [i for i in (audit or {}).get("instances") or () if i.get("status") != "skipped"]
        return sorted(self._name(i["instance_id"]) or i["instance_id"] for i in items)

    def _topic(self) -> Any:
        from moto.sns.models import sns_backends

        return sns_backends[fleet.ACCOUNT_ID][self.scenario.region].topics[self.account.topic_arn]

    def _wait_for(self, arn: str) -> dict[str, Any]:
        deadline = time.monotonic() + self.wall_limit_seconds
        while time.monotonic() < deadline:
            ended = self.hooks.executions_ended
            description = self.account.sfn.describe_execution(executionArn=arn)
            if description["status"] != "RUNNING":
                return dict(description)
            self.hooks.wait_for_execution_end(ended, timeout=1.0)
        raise RuntimeError(f"the emulated execution did not finish within {self.wall_limit_seconds} s")

    def _history(self, arn: str) -> list[dict[str, Any]]:
        return read_history(self.account.sfn, arn)

    def _execution_figures(
        self, description: dict[str, Any], history: list[dict[str, Any]], events: RunEvents
    ) -> dict[str, Any]:
        parent_entered = sum(1 for e in history if e["type"].endswith("StateEntered"))
        parent_retries = _retries([(e["type"], "") for e in history])
        child_entered = sum(
            sum(n for t, n in c.types.items() if t.endswith("StateEntered")) for c in events.children.values()
        )
        child_retries = sum(_retries(c.states) for c in events.children.values())
        max_child = max((c.events for c in events.children.values()), default=0)
        status = description["status"]
        error, cause = description.get("error"), description.get("cause")
        limit_breach = None
        if len(history) > HISTORY_LIMIT or max_child > HISTORY_LIMIT:
            limit_breach = f"execution history exceeded {HISTORY_LIMIT} events"
            error = "States.Runtime"
        elif events.largest_payload > PAYLOAD_LIMIT:
            limit_breach = (
                f"state {events.largest_payload_state} passed {events.largest_payload} bytes, "
                f"above the {PAYLOAD_LIMIT}-byte payload limit"
            )
            error = "States.DataLimitExceeded"
        if limit_breach:
            status, cause = "FAILED", limit_breach
        return {
            "status": status,
            "state_transitions": parent_entered + parent_retries + child_entered + child_retries,
            "history_events": len(history),
            "max_child_history_events": max_child,
            "child_executions": len(events.children),
            "error": error,
            "cause": cause,
            "largest_payload_bytes": events.largest_payload,
            "virtual_wait_seconds": events.virtual_wait_seconds,
            "virtual_retry_seconds": round(events.retry_wait_seconds, 3),
        }

    def _read(self, key: str) -> Any:
        try:
            return json.loads(self.account.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())
        except self.account.s3.exceptions.NoSuchKey:
            return None

    def _name(self, instance_id: str) -> str | None:
        return next((n for n, i in self.account.instance_ids.items() if i == instance_id), None)

    def _orphans(self, record: dict[str, Any] | None) -> list[dict[str, Any]]:
        """Report rows of the orphan step: one per volume no longer backed up."""
        rows = []
        for v in (record or {}).get("volumes") or ():
            rows.append(
                {
                    "instance_id": v["instance_id"],
                    "name": self._name(v["instance_id"]) or v.get("name") or "",
                    "volume_id": v["volume_id"],
                    "region": v.get("region") or self.scenario.region,
                    "deleted": [d["snapshot_id"] for d in v.get("deleted") or ()],
                    "kept": list(v.get("kept") or ()),
                    "would_delete": list(v.get("would_delete") or ()),
                    "kept_by_ami": [
                        {"snapshot_id": p["snapshot_id"], "image_id": p["image_id"]} for p in v.get("kept_by_ami") or ()
                    ],
                    "circuit_breaker": (v.get("breaker") or {}).get("reason"),
                    "held_for_copies": v.get("held_for_copies") or [],
                    "skipped_deletes": v.get("skipped_deletes") or [],
                }
            )
        return rows

    def _outcomes(self, run_id: str, execution_name: str) -> dict[str, dict[str, Any]]:
        """Every instance record of the run: the children's, and the ones Discover skipped."""
        run_prefix = execution_prefix(run_id, execution_name)
        listing = self.account.s3.list_objects_v2(Bucket=BUCKET, Prefix=outcomes_prefix(run_prefix)).get("Contents", [])
        outcomes = {}
        for obj in listing:
            body = json.loads(self.account.s3.get_object(Bucket=BUCKET, Key=obj["Key"])["Body"].read())
            outcomes[body["instance_id"]] = body
        try:
            skipped = self.account.s3.get_object(Bucket=BUCKET, Key=skipped_key(run_prefix))["Body"].read()
        except self.account.s3.exceptions.NoSuchKey:
            skipped = b"[]"
        for body in json.loads(skipped):
            outcomes.setdefault(body["instance_id"], body)
        return outcomes

    def _instances(self, outcomes: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
        rows = []
        for spec in self.scenario.instances:
            instance_id = self.account.instance_ids[spec.name]
            outcome = outcomes.get(instance_id)
            if outcome is None:
                continue  # not selected for backup
            error = outcome.get("error")
            rows.append(
                {
                    "name": spec.name,
                    "instance_id": instance_id,
                    "status": outcome["status"],
                    "error": _error_text(outcome) if outcome["status"] != "backed_up" else None,
                    "step": outcome.get("step"),
                    "aws_code": error.get("aws_code") if error else None,
                    "snapshots": [s["snapshot_id"] for s in outcome.get("snapshots") or ()],
                    "pruned": [d["snapshot_id"] for d in outcome.get("deleted") or ()],
                    "would_prune": [d["snapshot_id"] for d in outcome.get("would_delete") or ()],
                    "circuit_breaker": outcome.get("breaker"),
                    "breakers": outcome.get("breakers") or [],
                    "kept_by_ami": outcome.get("kept_by_ami") or [],
                    "kept_locked": outcome.get("kept_locked") or [],
                    "kept": outcome.get("kept") or [],
                    "archived": list(outcome.get("archived") or ()),
                    "retention_error": outcome.get("retention_error"),
                    "deferred_deletes": outcome.get("deferred_deletes") or [],
                    "locks_added": outcome.get("locks_added") or [],
                    "would_create": int(outcome.get("would_create") or 0),
                    "consistency": outcome.get("consistency") or "crash",
                    "frozen_seconds": outcome.get("frozen_seconds"),
                }
            )
        return rows

    def _describe_created(self, snapshot_id: str) -> dict[str, Any]:
        snap = fleet.ec2_backend(self.scenario.region).snapshots[snapshot_id]
        name, device = self.account.volumes[snap.volume.id]
        return {
            "snapshot_id": snapshot_id,
            "instance": name,
            "volume_id": snap.volume.id,
            "device": device,
            "state": snap.status,
            "started_seconds": self.snapshot_started.get(snapshot_id),
        }

    def _locked_until(self, snapshot_id: str) -> str | None:
        expires = self.locks.locked_until(snapshot_id)
        return format_time(expires) if expires is not None else None

    def _copy_ids(self) -> set[tuple[str, str]]:
        """(Region, snapshot id) of every copy in the destination Regions."""
        return {
            (dest.region, sid)
            for dest in self.scenario.settings.copy_regions
            for sid in fleet.ec2_backend(dest.region).snapshots
            if TAG_SOURCE_SNAPSHOT in fleet.ec2_backend(dest.region).tags.get(sid, {})
        }

    def _describe_copy(self, region: str, snapshot_id: str) -> dict[str, Any]:
        backend = fleet.ec2_backend(region)
        snap = backend.snapshots[snapshot_id]
        tags = backend.tags.get(snapshot_id, {})
        volume_id = tags.get(TAG_SOURCE_VOLUME, "")
        name, device = self.account.volumes.get(volume_id, ("", ""))
        return {
            "source_snapshot_id": tags.get(TAG_SOURCE_SNAPSHOT),
            "region": region,
            "snapshot_id": snapshot_id,
            "state": snap.status,
            "instance": name,
            "volume_id": volume_id,
            "device": device,
            "managed": tags.get(TAG_MANAGED) == DEPLOYMENT_ID,
            "start_time": format_time(snap.start_time),
            "placeholder_volume_id": snap.volume.id,
        }

    def _final_snapshots(self) -> list[dict[str, Any]]:
        backend = fleet.ec2_backend(self.scenario.region)
        tiering.settle(backend, self.clock)
        rows = []
        for sid in sorted(self._snapshot_ids(), key=lambda s: (backend.snapshots[s].start_time, s)):
            snap = backend.snapshots[sid]
            name, device = self.account.volumes[snap.volume.id]
            tags = backend.tags.get(sid, {})
            rows.append(
                {
                    "snapshot_id": sid,
                    "label": self.account.labels.get(sid),
                    "instance": name,
                    "volume_id": snap.volume.id,
                    "device": device,
                    "state": snap.status,
                    "managed": tags.get(TAG_MANAGED) == DEPLOYMENT_ID,
                    "deployment": tags.get(TAG_MANAGED),
                    "start_time": format_time(snap.start_time),
                    "region": self.scenario.region,
                    "locked_until": self._locked_until(sid),
                    "tier": snap.storage_tier,
                }
            )
        for region, cid in sorted(self._copy_ids()):
            copy = self._describe_copy(region, cid)
            rows.append(
                {
                    "snapshot_id": cid,
                    "label": None,
                    "instance": copy["instance"],
                    "volume_id": copy["volume_id"],
                    "device": copy["device"],
                    "state": copy["state"],
                    "managed": copy["managed"],
                    "deployment": fleet.ec2_backend(region).tags.get(cid, {}).get(TAG_MANAGED),
                    "start_time": copy["start_time"],
                    "region": region,
                    "source_snapshot_id": copy["source_snapshot_id"],
                    "locked_until": self._locked_until(cid),
                    "tier": fleet.ec2_backend(region).snapshots[cid].storage_tier,
                }
            )
        return rows


def _context_value(value: Any) -> Any:
    if isinstance(value, VaultSettings):  # one retention rule, as the setting is written
        return json.loads(value.to_text())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, tuple | list):
        return [_context_value(v) for v in value]
    return value


def cdk_context(settings: Settings) -> dict[str, Any]:
    """The scenario's settings as the CDK context the stack is synthesized with. Settings left at
    their defaults are left out, so equal configurations share one synthesis."""
    defaults = Settings()
    context = {
        f.name: _context_value(getattr(settings, f.name))
        for f in dataclasses.fields(Settings)
        if f.name not in SIMULATOR_OWNED and getattr(settings, f.name) != getattr(defaults, f.name)
    }
    return {**context, "deployment_id": DEPLOYMENT_ID}


def _state_machine_identity(template: dict[str, Any] | None) -> tuple[str, str]:
    """The state machine's name and role name as the stack deploys them (CloudFormation's
    generated role name: stack, logical id)."""
    if template is None:
        return "smart-vault", "smart-vault-state-machine"
    for resource in template.get("Resources", {}).values():
        if resource.get("Type") == "AWS::StepFunctions::StateMachine" and not is_drill_machine(resource["Properties"]):
            props = resource["Properties"]
            role = props["RoleArn"]["Fn::GetAtt"][0]
            return str(
                props.get("StateMachineName") or f"{DEPLOYMENT_ID}-backup"
            ), f"{template.get('StackName')}-{role}"[:64]
    raise ValueError("the synthesized stack has no state machine")


def _dry_run(audit: dict[str, Any] | None, outcomes: dict[str, dict[str, Any]]) -> bool:
    if audit:
        return bool(audit.get("dry_run"))
    return any(o.get("dry_run") for o in outcomes.values())


def _would_create(outcomes: dict[str, dict[str, Any]]) -> int:
    return sum(int(o.get("would_create") or 0) for o in outcomes.values())


def _audit_outcomes(audit: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Outcome-shaped rows from the audit record's instances."""
    rows = {}
    for entry in audit.get("instances") or ():
        rows[entry["instance_id"]] = {
            **entry,
            "snapshots": [{"snapshot_id": v["snapshot_id"]} for v in entry.get("volumes") or () if v["snapshot_id"]],
            "deleted": [{"snapshot_id": sid} for sid in entry.get("deleted") or ()],
            "would_delete": [{"snapshot_id": sid} for sid in entry.get("would_delete") or ()],
        }
    return rows


def _error_text(outcome: dict[str, Any]) -> str | None:
    error = outcome.get("error")
    if error:
        return f"{outcome.get('step')}: {error['type']}: {error['message']}"
    return outcome.get("reason")


def simulate(
    scenario: Scenario,
    *,
    verbose: bool = False,
    edit_template: TemplateEdit | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    return Simulation(scenario, verbose=verbose, edit_template=edit_template, progress=progress).run()
