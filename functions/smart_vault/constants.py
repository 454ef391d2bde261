"""Names shared by the functions, the CDK app, the simulator and the tests."""

from __future__ import annotations

SERVICE_NAME = "smart-vault"
METRIC_NAMESPACE = "SmartVault"

# Tags Smart Vault writes on every snapshot it creates. The managed marker's value is the
# deployment id, so two deployments in one account never prune each other's snapshots.
TAG_MANAGED = "smart-vault:managed-by"
TAG_INSTANCE_ID = "smart-vault:instance-id"
TAG_INSTANCE_NAME = "smart-vault:instance-name"
TAG_DEVICE_MAP = "smart-vault:device-map"
TAG_RUN_ID = "smart-vault:run-id"
TAG_RUN_TIME = "smart-vault:run-time"
# On volumes, AMIs and instances a restore creates: the snapshot (or instance/run) they came from.
TAG_RESTORED_FROM = "smart-vault:restored-from"
# Restore drills: volumes they create carry the drill marker (its value is the deployment id,
# which DeleteVolume's IAM condition requires) and the drill execution; a snapshot whose restore
# passed a drill gets verified-at (the drill's time).
TAG_DRILL = "smart-vault:drill"
TAG_DRILL_EXECUTION = "smart-vault:drill-execution"
TAG_VERIFIED_AT = "smart-vault:verified-at"
# On a volume (or its snapshot): "raw" marks a device with no file system to recognize (the
# drill checks its blocks for readability only).
TAG_FILESYSTEM = "smart-vault:filesystem"
# Per-instance retention overrides (on the instance; copied onto its snapshots at creation so
# that its orphans keep being pruned by the policy the instance had).
TAG_RETENTION = "smart-vault:retention"  # e.g. "daily=14,weekly=8,monthly=24"
TAG_RETENTION_DAYS = "smart-vault:retention-days"  # e.g. "30"
RETENTION_TAGS = (TAG_RETENTION, TAG_RETENTION_DAYS)
# Application consistency (smart_vault.consistency), per instance: the opt-in, the SSM documents
# that freeze and thaw it (default: the deployment's pair), and whether a failed freeze may fall
# back to a crash-consistent snapshot. The snapshots of an opted-in instance carry
# TAG_CONSISTENCY with what they are: application or crash.
TAG_CONSISTENCY = "smart-vault:consistency"
TAG_PRE_SCRIPT = "smart-vault:pre-script"
TAG_POST_SCRIPT = "smart-vault:post-script"
TAG_CONSISTENCY_FALLBACK = "smart-vault:consistency-fallback"
CONSISTENCY_TAGS = (TAG_CONSISTENCY, TAG_PRE_SCRIPT, TAG_POST_SCRIPT, TAG_CONSISTENCY_FALLBACK)

# The functions: construct ids, handler paths and state names refer to these keys. The backup
# state machine invokes BACKUP_FUNCTIONS, the restore drill's state machine DRILL_FUNCTIONS.
# Off-site copies also carry these: a copy's VolumeId is a placeholder (EC2 API Reference,
# CopySnapshot: "Snapshots copies have an arbitrary source volume ID"), so the destination groups
# copies by the source-volume tag.
TAG_SOURCE_SNAPSHOT = "smart-vault:source-snapshot"
TAG_SOURCE_VOLUME = "smart-vault:source-volume"
TAG_SOURCE_REGION = "smart-vault:source-region"
# Why a local snapshot retention would delete is kept: ``<this>:<region>,<region>``, the
# destinations without a completed copy of its volume at least as new (prune-after-copy).
COPY_HELD_REASON = "copy_not_completed"
TAG_DEVICE = "smart-vault:device"
# What `restore --as ami|instance` needs of the instance, recorded at backup time on every
# snapshot and copy (so a copy Region restores without the source instance or Region):
# "arch=arm64,boot=uefi,ena=1,root=/dev/xvda,virt=hvm,imds=required,tpm=v2.0,type=m7g.large".
TAG_INSTANCE_SPEC = "smart-vault:instance-spec"

# The functions: construct ids, handler paths and state names refer to these keys.
FUNCTION_HANDLERS = {
    "discover": "smart_vault.handlers.discover.handler",
    "snapshot": "smart_vault.handlers.snapshot.handler",
    "check": "smart_vault.handlers.check.handler",
    "prune": "smart_vault.handlers.prune.handler",
    "copy": "smart_vault.handlers.copy.handler",
    "notify": "smart_vault.handlers.notify.handler",
    "consistency": "smart_vault.handlers.consistency.handler",
    "drill": "smart_vault.handlers.drill.handler",
    "drill_cleanup": "smart_vault.handlers.drill.cleanup_handler",
    "drill_report": "smart_vault.handlers.drill.report_handler",
}
DRILL_FUNCTIONS = ("drill", "drill_cleanup", "drill_report")
BACKUP_FUNCTIONS = tuple(k for k in FUNCTION_HANDLERS if k not in DRILL_FUNCTIONS)


def construct_name(key: str) -> str:
    """A function key as construct ids spell it (``drill_cleanup`` -> ``DrillCleanup``)."""
    return key.title().replace("_", "")


# ASL placeholders (statemachine/*.asl.json) -> what fills them.
SUBSTITUTION_FUNCTION_ARNS = {
    "DiscoverFunctionArn": "discover",
    "SnapshotFunctionArn": "snapshot",
    "CheckFunctionArn": "check",
    "PruneFunctionArn": "prune",
    "CopyFunctionArn": "copy",
    "NotifyFunctionArn": "notify",
    "ConsistencyFunctionArn": "consistency",
}
DRILL_SUBSTITUTION_FUNCTION_ARNS = {
    "DrillFunctionArn": "drill",
    "DrillCleanupFunctionArn": "drill_cleanup",
    "DrillReportFunctionArn": "drill_report",
}
# The backup state machine's preflight also invokes the drill's functions (each with its role).
BACKUP_SUBSTITUTION_FUNCTION_ARNS = {**SUBSTITUTION_FUNCTION_ARNS, **DRILL_SUBSTITUTION_FUNCTION_ARNS}
SUBSTITUTION_BUCKET = "InventoryBucketName"
SUBSTITUTION_TOPIC = "AlertTopicArn"

STATE_MACHINE_FILE = "smart_vault.asl.json"
DRILL_STATE_MACHINE_FILE = "drill.asl.json"

# EC2 is eventually consistent ("Eventual consistency in the Amazon EC2 API": back off "from a
# couple of seconds ... up to a few minutes"): a resource Smart Vault just created and still does
# not see in a Describe is waited for this long before it counts as gone.
NEW_RESOURCE_VISIBILITY_SECONDS = 600

# Metric names (EMF, namespace SmartVault).
METRIC_INSTANCES_DISCOVERED = "InstancesDiscovered"
METRIC_SNAPSHOTS_CREATED = "SnapshotsCreated"
METRIC_SNAPSHOTS_FAILED = "SnapshotsFailed"
METRIC_SNAPSHOTS_DELETED = "SnapshotsDeleted"
METRIC_DELETES_SKIPPED = "DeletesSkipped"
# Deletions still throttled (or failing server-side) after their retries: left for the next run.
METRIC_DELETES_DEFERRED = "DeletesDeferred"
METRIC_SNAPSHOTS_ARCHIVED = "SnapshotsArchived"
METRIC_BACKUP_GIB = "BackupGiB"
METRIC_COPIES_STARTED = "CopiesStarted"
METRIC_COPIES_DELETED = "CopiesDeleted"
# Per destination (dimension Region): copies of an instance's run found completed.
METRIC_COPIES_COMPLETED = "CopiesCompleted"
METRIC_DIMENSION_REGION = "Region"
# Each Copy invocation that had to wait for a free slot (EC2's 20 copies in flight).
METRIC_COPY_SLOT_WAITS = "CopySlotWaits"
# RecordFailure: one per failed step, dimensions service and Step (the failed state's name).
METRIC_STEP_FAILED = "StepFailed"
METRIC_DIMENSION_STEP = "Step"
# Restore drills: 1 per drill that passed (0 when it failed), the seconds each restore took until
# its volumes were available, and the hours since the last drill that passed (every drill run).
METRIC_DRILL_SUCCEEDED = "DrillSucceeded"
METRIC_TIME_TO_RESTORE = "TimeToRestoreSeconds"
METRIC_HOURS_SINCE_DRILL = "HoursSinceSuccessfulDrill"
METRIC_RESTORE_OBJECTIVE_MISSED = "RestoreObjectiveMissed"  # instances not initialized in time
# Preflight: 1 when the last preflight found a denied or failed check, 0 when it passed.
PREFLIGHT_FAILED_METRIC = "PreflightFailed"

# S3 layout of the inventory/audit bucket.
RUNS_PREFIX = "runs"
# The Distributed Map's ResultWriter prefix (statemachine/smart_vault.asl.json).
MAP_RESULTS_PREFIX = "map-results"
# Operator approvals that release a tripped circuit breaker: approvals/<region>/<volume id>.json.
APPROVALS_PREFIX = "approvals"
# Restore drill records: drills/<run id>/<execution>.json and drills/history.json.
DRILLS_PREFIX = "drills"
# Preflight results (preflight/<date>.json) and the probe object it writes, reads and deletes.
PREFLIGHT_PREFIX = "preflight"
# The backup schedule's name (EventBridge Scheduler, default group), given to the functions so
# preflight can check that it is enabled.
SCHEDULE_NAME_ENV = "SCHEDULE_NAME"

# Stack outputs (stable names the CLI reads).
OUTPUT_STATE_MACHINE_ARN = "StateMachineArn"
OUTPUT_TOPIC_ARN = "AlertTopicArn"
OUTPUT_BUCKET_NAME = "InventoryBucketName"
OUTPUT_DASHBOARD_URL = "DashboardUrl"
OUTPUT_DEAD_LETTER_QUEUE_URL = "DeadLetterQueueUrl"
OUTPUT_DRILL_STATE_MACHINE_ARN = "DrillStateMachineArn"
