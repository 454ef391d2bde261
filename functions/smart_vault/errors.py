"""Error classes the workflow retries (or not) by name, and the AWS error classifier.

Step Functions matches a Lambda error by its ``errorType``, which is the exception class name,
so these names are part of the contract with statemachine/smart_vault.asl.json.
"""

from __future__ import annotations

from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)


class SmartVaultError(Exception):
    """Base class. ``aws_code`` and ``operation`` are set when an AWS call caused it."""

    retryable = False

    def __init__(self, message: str, *, aws_code: str | None = None, operation: str | None = None):
        super().__init__(message)
        self.aws_code = aws_code
        self.operation = operation


class InvalidInputError(SmartVaultError):
    """A state input or setting is invalid. Raised before any AWS call; never retried."""

    def __init__(self, field: str, problem: str):
        super().__init__(f"invalid {field}: {problem}")
        self.field = field


class ThrottledError(SmartVaultError):
    """Account-level API throttling (RequestLimitExceeded, Throttling): retry with backoff."""

    retryable = True


class VolumePacingError(SmartVaultError):
    """Per-volume snapshot pacing: retry no sooner than 15 seconds."""

    retryable = True


class TransientAwsError(SmartVaultError):
    """A 5xx or network failure of an AWS service: retry a few times."""

    retryable = True


class PermissionDeniedError(SmartVaultError):
    """IAM or KMS refused the call: a configuration problem, never retried."""


class DryRunAllowedError(SmartVaultError):
    """EC2 answered DryRunOperation: the request, sent with DryRun=True, would have succeeded
    (EC2 API Reference, "Common client error codes"). Only preflight sends such requests."""


class InvalidRequestError(SmartVaultError):
    """AWS rejected the request as invalid: never retried."""


class AwsOperationError(SmartVaultError):
    """Any other AWS error: not retried, reported with its code."""


class InstanceVanishedError(SmartVaultError):
    """The instance no longer exists: the instance is skipped, not failed."""


class SnapshotFailedError(SmartVaultError):
    """A snapshot ended in state ``error`` or disappeared: never retried."""


class SnapshotTimeoutError(SmartVaultError):
    """Snapshots still pending after the configured limit."""


class RestoreFailedError(SmartVaultError):
    """A drill's restore cannot succeed (no recovery point, a volume in state ``error`` or gone,
    not available in time): never retried, the drill fails and cleans up."""


class VolumeBusyError(SmartVaultError):
    """A drill volume is still ``creating`` and cannot be deleted yet: the cleanup is retried."""

    retryable = True


THROTTLING_CODES = frozenset(
    {
        "RequestLimitExceeded",
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "TooManyRequestsException",
        "RequestThrottled",
        "RequestThrottledException",
        "SlowDown",
    }
)
PACING_CODES = frozenset({"SnapshotCreationPerVolumeRateExceeded", "ConcurrentSnapshotLimitExceeded"})
TRANSIENT_CODES = frozenset(
    {
        "InternalError",
        "InternalFailure",
        "InternalServerError",
        "ServiceUnavailable",
        "Unavailable",
        "RequestTimeout",
        "RequestTimeoutException",
        "ServerInternal",
        "KMSInternalException",
    }
)
PERMISSION_CODES = frozenset(
    {
        "UnauthorizedOperation",
        "AccessDenied",
        "AccessDeniedException",
        "AuthFailure",
        "AuthorizationError",
        "InvalidClientTokenId",
        "ExpiredToken",
        "OptInRequired",
        "KMSAccessDeniedException",
        "KMSDisabledException",
        "KMSInvalidStateException",
        "InvalidKMSKey.InvalidState",
    }
)
VALIDATION_CODES = frozenset(
    {
        "InvalidParameter",
        "InvalidParameterValue",
        "InvalidParameterCombination",
        "MissingParameter",
        "ValidationError",
        "ValidationException",
        "InvalidRequest",
    }
)
INSTANCE_GONE_CODES = frozenset({"InvalidInstanceID.NotFound", "InvalidInstanceID.Malformed"})


def error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", "Unknown"))


def classify(error: Exception, operation: str) -> SmartVaultError:
    """Map a botocore exception to the Smart Vault class the workflow retries by name."""
    if isinstance(error, SmartVaultError):
        return error
    if isinstance(
        error,
        EndpointConnectionError | ConnectTimeoutError | ReadTimeoutError | ConnectionClosedError,
    ):
        return TransientAwsError(f"{operation} failed: {error}", operation=operation)
    if not isinstance(error, ClientError):
        raise error
    code = error_code(error)
    text = error.response.get("Error", {}).get("Message", "") or code
    message = f"{operation} failed: {code}: {text}"
    kind: type[SmartVaultError]
    if code == "DryRunOperation":
        kind = DryRunAllowedError
    elif code in THROTTLING_CODES:
        kind = ThrottledError
    elif code in PACING_CODES:
        kind = VolumePacingError
    elif code in TRANSIENT_CODES or error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) >= 500:
        kind = TransientAwsError
    elif code in PERMISSION_CODES:
        kind = PermissionDeniedError
    elif code in VALIDATION_CODES:
        kind = InvalidRequestError
    elif code in INSTANCE_GONE_CODES:
        kind = InstanceVanishedError
    else:
        kind = AwsOperationError
    return kind(message, aws_code=code, operation=operation)


class CopyFailedError(SmartVaultError):
    """An off-site copy ended in state ``error`` (for example its KMS key is unusable)."""


class CopyTimeoutError(SmartVaultError):
    """Off-site copies still pending (or waiting for a slot) after ``copy_timeout_seconds``."""


class CopyKeyError(SmartVaultError):
    """A destination's KMS key is missing, disabled or not usable: the copies to that Region
    fail (the local backups are taken and stay held for them)."""


class FleetKeyError(SmartVaultError):
    """A KMS key the fleet's volumes use (``fleet_kms_keys``) is missing, disabled or pending
    deletion: the run stops in Discover before any snapshot."""


ENCODED_AUTH_MARKER = "Encoded authorization failure message: "
MAX_ERROR_CHARS = 400  # of each error message in an alert; the audit record keeps the full text


def shorten_error(message: str, limit: int = MAX_ERROR_CHARS) -> str:
    """An error message short enough for an alert (backup, drill, simulator summary); the audit
    record keeps it whole.

    EC2's UnauthorizedOperation carries ~1,600 opaque characters after "Encoded authorization
    failure message: "; they only help once decoded, so the alert says how to get them. The
    encoded message is one token (no spaces): what Smart Vault added after it, such as
    "(copy of snap-... to us-west-2)", is kept."""
    head, marker, rest = message.partition(ENCODED_AUTH_MARKER)
    if marker:
        encoded, space, tail = rest.strip().partition(" ")
        message = (
            f"{head}{marker}[{len(encoded)} characters in the audit record; "
            "decode with aws sts decode-authorization-message]"
            f"{space}{tail}"
        )
    if len(message) > limit:
        message = f"{message[:limit]}... [{len(message) - limit} more characters in the audit record]"
    return message
