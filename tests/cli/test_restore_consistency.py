"""`smart-vault restore` on an eventually consistent EC2 ("Eventual consistency in the Amazon EC2
API"), as the emulator models it (smart_vault_sim.snapshot_lag): a new volume is missing from the
first DescribeVolumes, and a registered AMI is `pending` at first, refused by RunInstances."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator

import pytest

from smart_vault_cli import main
from tests.cli.conftest import Stack, deployed
from tests.cli.test_restore import OPERATOR_POLICY, RUN, _restored
from tests.cli.test_restore import SCENARIO as RESTORE_SCENARIO

SCENARIO = {**copy.deepcopy(RESTORE_SCENARIO), "faults": [], "emulator": {"eventual_consistency": True}}


@pytest.fixture
def lagging(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    monkeypatch.setattr(main, "_POLL_SECONDS", 0)
    with deployed(SCENARIO, monkeypatch) as stack:
        assert stack.sim.run_at(0, RUN)["execution"]["status"] == "SUCCEEDED"
        stack.sim.authorize_operator(json.loads(OPERATOR_POLICY.read_text()))
        stack.sim.tap.reset_counts()
        yield stack


def test_restore_keeps_the_volumes_it_made_that_ec2_does_not_list_yet(lagging):
    result = lagging.cli("restore", "web-1")

    assert result.exit_code == 0, result.output
    assert lagging.sim.lag is not None and lagging.sim.lag.missed["volume"] == 2  # the first poll missed both
    restored = _restored(lagging)
    assert len(restored) == 2 and all(v["State"] == "available" for v in restored)
    assert lagging.sim.tap.calls["ec2:CreateVolume"] == 2 and "ec2:DeleteVolume" not in lagging.sim.tap.calls
    assert result.output.count("aws ec2 attach-volume") == 2


def test_restore_as_instance_waits_until_the_new_ami_is_available(lagging):
    result = lagging.cli("restore", "web-1", "--as", "instance")

    assert result.exit_code == 0, result.output
    assert lagging.sim.lag is not None and lagging.sim.lag.missed["image"] == 1  # it was seen pending
    assert lagging.sim.tap.calls["ec2:RunInstances"] == 1
    image_id = result.output.split("AMI: ")[1].split()[0]
    instance_id = result.output.split("instance: ")[1].split()[0]
    launched = lagging.account.ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]
    assert launched["ImageId"] == image_id
