import pytest
from botocore.exceptions import EndpointConnectionError

from smart_vault import errors
from smart_vault_sim.aws_tap import aws_error


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        ("RequestLimitExceeded", errors.ThrottledError),
        ("Throttling", errors.ThrottledError),
        ("SnapshotCreationPerVolumeRateExceeded", errors.VolumePacingError),
        ("ConcurrentSnapshotLimitExceeded", errors.VolumePacingError),
        ("InternalError", errors.TransientAwsError),
        ("ServiceUnavailable", errors.TransientAwsError),
        ("UnauthorizedOperation", errors.PermissionDeniedError),
        ("AccessDenied", errors.PermissionDeniedError),
        ("InvalidParameterValue", errors.InvalidRequestError),
        ("InvalidInstanceID.NotFound", errors.InstanceVanishedError),
        ("SomethingNew", errors.AwsOperationError),
    ],
)
def test_aws_codes_map_to_named_classes(code, kind):
    classified = errors.classify(aws_error(code, "CreateSnapshots"), "ec2:CreateSnapshots")
    assert type(classified) is kind
    assert classified.aws_code == code
    assert str(classified).startswith(f"ec2:CreateSnapshots failed: {code}: ")


def test_retryable_classes_are_exactly_the_retried_ones():
    retryable = {c.__name__ for c in errors.SmartVaultError.__subclasses__() if c.retryable}
    # VolumeBusyError: the drill's Cleanup retries it (statemachine/drill.asl.json).
    assert retryable == {"ThrottledError", "VolumePacingError", "TransientAwsError", "VolumeBusyError"}


def test_network_errors_are_transient():
    err = errors.classify(EndpointConnectionError(endpoint_url="https://ec2"), "ec2:DescribeSnapshots")
    assert isinstance(err, errors.TransientAwsError)
