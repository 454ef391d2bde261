"""The IAM evaluator on AWS's documented evaluation rules and condition-operator examples
(IAM User Guide: "Policy evaluation logic", "IAM JSON policy elements: Condition operators",
"Single-valued vs. multivalued context keys", "IAM JSON policy elements: Resource")."""

from __future__ import annotations

from typing import Any

import pytest

from smart_vault_sim.iam import Decision, Policy, Request, UnsupportedPolicy, arn_match, evaluate

ROLE = "arn:aws:iam::123456789012:role/app"


def policy(*statements: dict[str, Any]) -> Policy:
    return Policy.parse("test", {"Version": "2012-10-17", "Statement": list(statements)})


def ctx(action: str, resource: str, context: dict[str, tuple[str, ...]]) -> Request:
    return Request(action=action, resource=resource, context=context, principal_arn=ROLE)


ALLOW_S3 = {"Effect": "Allow", "Action": "s3:*", "Resource": "*"}


def test_an_explicit_deny_overrides_any_allow():
    deny = {"Effect": "Deny", "Action": "s3:DeleteObject", "Resource": "arn:aws:s3:::bucket/*"}
    decision = evaluate(ctx("s3:DeleteObject", "arn:aws:s3:::bucket/key", {}), [policy(ALLOW_S3, deny)])
    assert decision is Decision.EXPLICIT_DENY


def test_nothing_that_allows_is_an_implicit_deny():
    assert evaluate(ctx("ec2:DeleteSnapshot", "*", {}), [policy(ALLOW_S3)]) is Decision.IMPLICIT_DENY
    assert evaluate(ctx("s3:GetObject", "*", {}), []) is Decision.IMPLICIT_DENY


def test_actions_match_case_insensitively_with_wildcards():
    p = policy({"Effect": "Allow", "Action": ["EC2:describe*", "s3:Get?bject"], "Resource": "*"})
    assert evaluate(ctx("ec2:DescribeSnapshots", "*", {}), [p]) is Decision.ALLOW
    assert evaluate(ctx("s3:GetObject", "*", {}), [p]) is Decision.ALLOW
    assert evaluate(ctx("s3:GetObjectAcl", "*", {}), [p]) is Decision.IMPLICIT_DENY


def test_not_action_allows_everything_else_and_not_resource_everything_elsewhere():
    # The IAM User Guide's NotAction example: everything except IAM.
    p = policy({"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"})
    assert evaluate(ctx("s3:PutObject", "*", {}), [p]) is Decision.ALLOW
    assert evaluate(ctx("iam:CreateUser", "*", {}), [p]) is Decision.IMPLICIT_DENY
    elsewhere = policy({"Effect": "Deny", "Action": "s3:*", "NotResource": "arn:aws:s3:::mine/*"}, ALLOW_S3)
    assert evaluate(ctx("s3:GetObject", "arn:aws:s3:::theirs/k", {}), [elsewhere]) is Decision.EXPLICIT_DENY
    assert evaluate(ctx("s3:GetObject", "arn:aws:s3:::mine/k", {}), [elsewhere]) is Decision.ALLOW


def test_arn_segments_match_one_by_one_and_the_resource_part_may_span_colons():
    assert arn_match(
        "arn:aws:states:us-east-1:123456789012:execution:sm/*",
        "arn:aws:states:us-east-1:123456789012:execution:sm/run:1",
    )
    assert arn_match("arn:aws:ec2:*::snapshot/*", "arn:aws:ec2:eu-west-1::snapshot/snap-1")
    assert not arn_match("arn:aws:ec2:us-east-1:*:snapshot/*", "arn:aws:ec2:us-east-1:123456789012:volume/vol-1")
    # A broken Distributed Map grant, as it once was: no state machine name.
    assert not arn_match(
        "arn:aws:states:us-east-1:123456789012:stateMachine",
        "arn:aws:states:us-east-1:123456789012:stateMachine:smart-vault-backup",
    )
    assert not arn_match("arn:aws:s3:::bucket/[ab]", "arn:aws:s3:::bucket/a")  # "[" is literal in IAM


def test_several_values_of_a_key_match_if_any_does_and_several_keys_must_all_match():
    p = policy(
        {
            "Effect": "Allow",
            "Action": "ec2:CreateTags",
            "Resource": "*",
            "Condition": {
                "StringEquals": {"ec2:CreateAction": ["CreateSnapshots", "CreateSnapshot"], "aws:RequestTag/team": "a"}
            },
        }
    )
    both = {"ec2:CreateAction": ("CreateSnapshot",), "aws:RequestTag/team": ("a",)}
    assert evaluate(ctx("ec2:CreateTags", "*", both), [p]) is Decision.ALLOW
    assert (
        evaluate(ctx("ec2:CreateTags", "*", {"ec2:CreateAction": ("CreateSnapshot",)}), [p]) is Decision.IMPLICIT_DENY
    )


def test_condition_keys_are_case_insensitive():
    p = policy(
        {
            "Effect": "Allow",
            "Action": "s3:*",
            "Resource": "*",
            "Condition": {"StringEquals": {"AWS:RequestedRegion": "us-east-1"}},
        }
    )
    assert evaluate(ctx("s3:GetObject", "*", {"aws:requestedregion": ("us-east-1",)}), [p]) is Decision.ALLOW


@pytest.mark.parametrize(
    ("operator", "policy_value", "context", "expected"),
    [
        # A key missing from the request: false for positive operators...
        ("StringEquals", "x", {}, False),
        ("StringLike", "x*", {}, False),
        # ...true with IfExists and for negated operators (IAM User Guide, "Condition operators").
        ("StringEqualsIfExists", "x", {}, True),
        ("StringNotEquals", "x", {}, True),
        ("ArnNotLike", "arn:aws:s3:::x", {}, True),
        ("StringNotEquals", ["x", "y"], {"k": ("y",)}, False),  # negated: matches none of the values
        ("StringNotEquals", ["x", "y"], {"k": ("z",)}, True),
        ("StringLike", "runs/*", {"k": ("runs/2026/a.json",)}, True),
        ("StringLike", "runs/*", {"k": ("other/runs/a",)}, False),
        ("StringEqualsIgnoreCase", "ABC", {"k": ("abc",)}, True),
        ("Bool", "false", {"k": ("true",)}, False),
        ("Bool", "true", {"k": ("true",)}, True),
        ("Null", "true", {}, True),  # "true": the key is absent
        ("Null", "false", {}, False),
        ("NumericLessThanEquals", "10", {"k": ("3",)}, True),
        ("NumericGreaterThan", "10", {"k": ("3",)}, False),
        (
            "ArnLike",
            "arn:aws:cloudwatch:*:123456789012:alarm:*",
            {"k": ("arn:aws:cloudwatch:us-east-1:123456789012:alarm:A",)},
            True,
        ),
        (
            "ArnEquals",
            "arn:aws:events:us-east-1:123456789012:rule/R",
            {"k": ("arn:aws:events:us-east-1:123456789012:rule/S",)},
            False,
        ),
        # Set operators on a multivalued key (aws:TagKeys).
        ("ForAllValues:StringEquals", ["a", "b"], {"k": ("a", "b")}, True),
        ("ForAllValues:StringEquals", ["a", "b"], {"k": ("a", "c")}, False),
        ("ForAllValues:StringEquals", ["a"], {}, True),  # no values: vacuously true
        ("ForAnyValue:StringEquals", ["a"], {"k": ("c", "a")}, True),
        ("ForAnyValue:StringEquals", ["a"], {}, False),
    ],
)
def test_condition_operators(operator: str, policy_value: Any, context: dict[str, tuple[str, ...]], expected: bool):
    p = policy(
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*", "Condition": {operator: {"k": policy_value}}}
    )
    decision = evaluate(ctx("s3:GetObject", "*", context), [p])
    assert (decision is Decision.ALLOW) is expected


def test_a_resource_policy_alone_allows_a_service_principal_under_its_conditions():
    # The topic policy shape for CloudWatch alarms (SNS Developer Guide, "Amazon SNS access policy
    # examples": aws:SourceArn / aws:SourceAccount for service principals).
    topic = "arn:aws:sns:us-east-1:123456789012:alerts"
    topic_policy = policy(
        {
            "Effect": "Allow",
            "Principal": {"Service": "cloudwatch.amazonaws.com"},
            "Action": "sns:Publish",
            "Resource": topic,
            "Condition": {
                "ArnLike": {"aws:SourceArn": "arn:aws:cloudwatch:us-east-1:123456789012:alarm:*"},
                "StringEquals": {"aws:SourceAccount": "123456789012"},
            },
        }
    )
    alarm = {
        "aws:SourceArn": ("arn:aws:cloudwatch:us-east-1:123456789012:alarm:A",),
        "aws:SourceAccount": ("123456789012",),
    }
    as_cloudwatch = Request("sns:Publish", topic, alarm, service_principal="cloudwatch.amazonaws.com")
    assert evaluate(as_cloudwatch, (), topic_policy) is Decision.ALLOW
    other_account = {**alarm, "aws:SourceAccount": ("999999999999",)}
    assert (
        evaluate(
            Request("sns:Publish", topic, other_account, service_principal="cloudwatch.amazonaws.com"), (), topic_policy
        )
        is Decision.IMPLICIT_DENY
    )
    as_events = Request("sns:Publish", topic, alarm, service_principal="events.amazonaws.com")
    assert evaluate(as_events, (), topic_policy) is Decision.IMPLICIT_DENY


def test_a_deny_in_the_resource_policy_overrides_the_identity_allow():
    bucket_policy = policy(
        {
            "Effect": "Deny",
            "Principal": {"AWS": "*"},
            "Action": "s3:*",
            "Resource": "arn:aws:s3:::b/*",
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        }
    )
    plain_http = ctx("s3:GetObject", "arn:aws:s3:::b/k", {"aws:securetransport": ("false",)})
    assert evaluate(plain_http, [policy(ALLOW_S3)], bucket_policy) is Decision.EXPLICIT_DENY
    tls = ctx("s3:GetObject", "arn:aws:s3:::b/k", {"aws:securetransport": ("true",)})
    assert evaluate(tls, [policy(ALLOW_S3)], bucket_policy) is Decision.ALLOW


@pytest.mark.parametrize(
    "statement",
    [
        {"Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws:s3:::${aws:username}/*"},
        {
            "Effect": "Allow",
            "Action": "s3:*",
            "Resource": "*",
            "Condition": {"DateGreaterThan": {"aws:CurrentTime": "2026-01-01"}},
        },
        {"Effect": "Allow", "Action": "s3:*", "Resource": "*", "NotPrincipal": {"AWS": "x"}},
    ],
)
def test_features_it_does_not_model_are_refused_not_guessed(statement: dict[str, Any]):
    with pytest.raises(UnsupportedPolicy):
        policy(statement)
