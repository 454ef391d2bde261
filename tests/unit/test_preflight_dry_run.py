"""The preflight's safety net: an ``Ec2(dry_run=True)`` sends every mutating EC2 request with
DryRun=True (so no check can change the account) and every read as it is."""

from __future__ import annotations

import boto3
import pytest

from smart_vault.aws import _dry_run_params
from smart_vault.errors import DryRunAllowedError, PermissionDeniedError, classify
from smart_vault.preflight.checks import dry

MODEL = boto3.client("ec2", region_name="us-east-1").meta.service_model

# Every mutating EC2 action a function makes at night (infra/smart_vault_infra/functions.py).
NIGHT_MUTATIONS = [
    "CreateSnapshots",
    "LockSnapshot",
    "CopySnapshot",
    "DeleteSnapshot",
    "ModifySnapshotTier",
    "CreateVolume",
    "DeleteVolume",
    "CreateTags",
]


@pytest.mark.parametrize("operation", NIGHT_MUTATIONS)
def test_every_mutating_night_call_carries_dry_run(operation: str):
    params: dict[str, object] = {}
    _dry_run_params(params, MODEL.operation_model(operation))
    assert params == {"DryRun": True}


@pytest.mark.parametrize(
    "operation", ["DescribeSnapshots", "DescribeInstances", "DescribeVolumes", "GetEbsEncryptionByDefault"]
)
def test_reads_go_out_as_they_are(operation: str):
    params: dict[str, object] = {}
    _dry_run_params(params, MODEL.operation_model(operation))
    assert params == {}


def _client_error(code: str) -> Exception:
    from botocore.exceptions import ClientError

    return ClientError({"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": 412}}, "X")


def test_dry_run_operation_is_passed_unauthorized_is_denied_and_a_silent_return_proves_nothing():
    assert isinstance(classify(_client_error("DryRunOperation"), "ec2:X"), DryRunAllowedError)
    assert isinstance(classify(_client_error("UnauthorizedOperation"), "ec2:X"), PermissionDeniedError)

    def raises(code: str) -> None:
        raise classify(_client_error(code), "ec2:DeleteSnapshot")

    assert dry("prune", "ec2:DeleteSnapshot", "s", lambda: raises("DryRunOperation")).result == "passed"
    assert dry("prune", "ec2:DeleteSnapshot", "s", lambda: raises("UnauthorizedOperation")).result == "denied"
    assert dry("prune", "ec2:DeleteSnapshot", "s", lambda: raises("InvalidSnapshot.InUse")).result == "failed"
    silent = dry("prune", "ec2:DeleteSnapshot", "s", lambda: None)
    assert silent.result == "failed" and "nothing was proved" in silent.reason
