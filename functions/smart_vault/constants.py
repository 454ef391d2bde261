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

# The five functions: construct ids, handler paths and state names refer to these keys.
FUNCTION_HANDLERS = {
    "discover": "smart_vault.handlers.discover.handler",
    "snapshot": "smart_vault.handlers.snapshot.handler",
    "check": "smart_vault.handlers.check.handler",
    "prune": "smart_vault.handlers.prune.handler",
    "notify": "smart_vault.handlers.notify.handler",
}

# ASL placeholders (statemachine/*.asl.json) -> what fills them.
SUBSTITUTION_FUNCTION_ARNS = {
    "DiscoverFunctionArn": "discover",
    "SnapshotFunctionArn": "snapshot",
    "CheckFunctionArn": "check",
    "PruneFunctionArn": "prune",
    "NotifyFunctionArn": "notify",
}
SUBSTITUTION_BUCKET = "InventoryBucketName"
SUBSTITUTION_TOPIC = "AlertTopicArn"

STATE_MACHINE_FILE = "smart_vault.asl.json"

# Metric names (EMF, namespace SmartVault).
METRIC_INSTANCES_DISCOVERED = "InstancesDiscovered"
METRIC_SNAPSHOTS_CREATED = "SnapshotsCreated"
METRIC_SNAPSHOTS_FAILED = "SnapshotsFailed"
METRIC_SNAPSHOTS_DELETED = "SnapshotsDeleted"
METRIC_DELETES_SKIPPED = "DeletesSkipped"
METRIC_BACKUP_GIB = "BackupGiB"
# RecordFailure: one per failed step, dimensions service and Step (the failed state's name).
METRIC_STEP_FAILED = "StepFailed"
METRIC_DIMENSION_STEP = "Step"

# S3 layout of the inventory/audit bucket.
RUNS_PREFIX = "runs"
# The Distributed Map's ResultWriter prefix (statemachine/smart_vault.asl.json).
MAP_RESULTS_PREFIX = "map-results"
# Operator approvals that release a tripped circuit breaker: approvals/<volume id>.json.
APPROVALS_PREFIX = "approvals"

# Stack outputs (stable names the CLI reads).
OUTPUT_STATE_MACHINE_ARN = "StateMachineArn"
OUTPUT_TOPIC_ARN = "AlertTopicArn"
OUTPUT_BUCKET_NAME = "InventoryBucketName"
OUTPUT_DASHBOARD_URL = "DashboardUrl"
OUTPUT_DEAD_LETTER_QUEUE_URL = "DeadLetterQueueUrl"
