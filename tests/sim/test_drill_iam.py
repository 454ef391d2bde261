"""The restore drill's grants, judged by the simulator's evaluator on the synthesized stack: it
may create volumes only with the drill marker and only from this deployment's snapshots, delete
only drill volumes, tag snapshots only with verified-at, and its state machine may invoke only
the drill's functions."""

from __future__ import annotations

import pytest

from smart_vault.constants import BACKUP_FUNCTIONS, DRILL_FUNCTIONS, TAG_DRILL, TAG_MANAGED, TAG_VERIFIED_AT
from smart_vault_sim.authorization import Authorizer
from smart_vault_sim.aws_tap import DRILL_MACHINE, STATE_MACHINE
from smart_vault_sim.simulator import DEPLOYMENT_ID
from tests.sim.test_stack_iam import ACCOUNT, REGION, SNAPSHOTS, TOPIC_ARN, allowed, stack_iam

VOLUMES = f"arn:aws:ec2:{REGION}:{ACCOUNT}:volume/*"
VOLUME = f"arn:aws:ec2:{REGION}:{ACCOUNT}:volume/vol-0123456789abcdef0"
SNAPSHOT = f"arn:aws:ec2:{REGION}::snapshot/snap-0123456789abcdef0"


def function_arn(key: str) -> str:
    return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:sv-{key}"


@pytest.fixture(scope="module")
def authorizer() -> Authorizer:
    return Authorizer(stack_iam(), region=REGION, account=ACCOUNT, sessions={})


def test_volumes_are_created_only_with_the_drill_marker(authorizer: Authorizer):
    marker = {f"aws:RequestTag/{TAG_DRILL}": (DEPLOYMENT_ID,), "aws:TagKeys": (TAG_DRILL,)}
    assert allowed(authorizer, "drill", "ec2:CreateVolume", VOLUMES, **marker)
    assert not allowed(authorizer, "drill", "ec2:CreateVolume", VOLUMES)
    other = {f"aws:RequestTag/{TAG_DRILL}": ("another-deployment",)}
    assert not allowed(authorizer, "drill", "ec2:CreateVolume", VOLUMES, **other)
    # Tags only inside the create.
    assert allowed(authorizer, "drill", "ec2:CreateTags", VOLUMES, **{"ec2:CreateAction": ("CreateVolume",)})
    assert not allowed(authorizer, "drill", "ec2:CreateTags", VOLUME)


def test_the_drill_may_list_the_instances_in_scope(authorizer: Authorizer):
    # Select reports the instances it cannot drill (no restorable point); Describe* has no resource ARN.
    assert allowed(authorizer, "drill", "ec2:DescribeInstances", "*")
    assert not allowed(authorizer, "drill_cleanup", "ec2:DescribeInstances", "*")


def test_volumes_are_restored_only_from_this_deployments_snapshots(authorizer: Authorizer):
    ours = {f"aws:ResourceTag/{TAG_MANAGED}": (DEPLOYMENT_ID,)}
    assert allowed(authorizer, "drill", "ec2:CreateVolume", SNAPSHOT, **ours)
    assert not allowed(authorizer, "drill", "ec2:CreateVolume", SNAPSHOT)
    theirs = {f"aws:ResourceTag/{TAG_MANAGED}": ("another-deployment",)}
    assert not allowed(authorizer, "drill", "ec2:CreateVolume", SNAPSHOT, **theirs)


def test_only_drill_volumes_can_be_deleted(authorizer: Authorizer):
    drill_volume = {f"aws:ResourceTag/{TAG_DRILL}": (DEPLOYMENT_ID,)}
    assert allowed(authorizer, "drill_cleanup", "ec2:DeleteVolume", VOLUME, **drill_volume)
    assert not allowed(authorizer, "drill_cleanup", "ec2:DeleteVolume", VOLUME)
    assert not allowed(authorizer, "drill_cleanup", "ec2:DeleteVolume", VOLUME, **{"aws:ResourceTag/Name": ("db",)})
    # The sweep of earlier drills' leftovers cannot delete another deployment's drill volume.
    theirs = {f"aws:ResourceTag/{TAG_DRILL}": ("another-deployment",)}
    assert not allowed(authorizer, "drill_cleanup", "ec2:DeleteVolume", VOLUME, **theirs)
    assert allowed(authorizer, "drill_cleanup", "ec2:DescribeVolumes", "*")
    # Nobody else may delete volumes, and the function that creates them may not.
    for caller in ("drill", "drill_report", *BACKUP_FUNCTIONS):
        assert not allowed(authorizer, caller, "ec2:DeleteVolume", VOLUME, **drill_volume), caller


def test_snapshots_are_tagged_only_with_verified_at_and_only_ours(authorizer: Authorizer):
    ours = {f"aws:ResourceTag/{TAG_MANAGED}": (DEPLOYMENT_ID,)}
    verified = {"aws:TagKeys": (TAG_VERIFIED_AT,), f"aws:RequestTag/{TAG_VERIFIED_AT}": ("2026-11-29T05:00:00Z",)}
    assert allowed(authorizer, "drill_report", "ec2:CreateTags", SNAPSHOT, **ours, **verified)
    assert not allowed(authorizer, "drill_report", "ec2:CreateTags", SNAPSHOT, **verified)
    # Not the managed marker itself (which would hand a snapshot to pruning), nor any other key.
    overwrite = {"aws:TagKeys": (TAG_VERIFIED_AT, TAG_MANAGED)}
    assert not allowed(authorizer, "drill_report", "ec2:CreateTags", SNAPSHOT, **ours, **overwrite)
    assert not allowed(authorizer, "drill_report", "ec2:CreateTags", SNAPSHOTS, **ours, **{"aws:TagKeys": ("Name",)})


def test_each_state_machine_invokes_only_its_own_functions(authorizer: Authorizer):
    for key in DRILL_FUNCTIONS:
        assert allowed(authorizer, DRILL_MACHINE, "lambda:InvokeFunction", function_arn(key)), key
        # The backup machine's preflight checks the drill's roles by invoking its functions.
        assert allowed(authorizer, STATE_MACHINE, "lambda:InvokeFunction", function_arn(key)), key
    for key in BACKUP_FUNCTIONS:
        assert allowed(authorizer, STATE_MACHINE, "lambda:InvokeFunction", function_arn(key)), key
        assert not allowed(authorizer, DRILL_MACHINE, "lambda:InvokeFunction", function_arn(key)), key
    # Its fallback alert.
    assert allowed(authorizer, DRILL_MACHINE, "sns:Publish", TOPIC_ARN)
