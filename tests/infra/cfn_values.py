"""Resolve a synthesized template's intrinsic functions to example values, for linters that read
plain policy JSON (parliament). Only what this stack uses: Ref, Fn::GetAtt (Arn), Fn::Join."""

from __future__ import annotations

from typing import Any

PARTITION, REGION, ACCOUNT = "aws", "us-east-1", "123456789012"
PSEUDO = {
    "AWS::Partition": PARTITION,
    "AWS::Region": REGION,
    "AWS::AccountId": ACCOUNT,
    "AWS::URLSuffix": "amazonaws.com",
    "AWS::StackName": "SmartVault",
}


def _name(logical_id: str, resource: dict[str, Any], key: str) -> str:
    value = resource.get("Properties", {}).get(key)
    return value if isinstance(value, str) else logical_id.lower()


def _ref(logical_id: str, resources: dict[str, Any]) -> str:
    if logical_id in PSEUDO:
        return PSEUDO[logical_id]
    resource = resources.get(logical_id)
    if resource is None:  # a template parameter (the Powertools layer's SSM value)
        return logical_id
    kind = resource["Type"]
    if kind == "AWS::SNS::Topic":
        return f"arn:{PARTITION}:sns:{REGION}:{ACCOUNT}:{_name(logical_id, resource, 'TopicName')}"
    if kind == "AWS::StepFunctions::StateMachine":
        name = _name(logical_id, resource, "StateMachineName")
        return f"arn:{PARTITION}:states:{REGION}:{ACCOUNT}:stateMachine:{name}"
    if kind == "AWS::SQS::Queue":
        return f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{logical_id}"
    if kind == "AWS::KMS::Key":
        return "1234abcd-12ab-34cd-56ef-1234567890ab"
    return _name(logical_id, resource, "Name")


def _arn(logical_id: str, resources: dict[str, Any]) -> str:
    resource = resources[logical_id]
    kind = resource["Type"]
    regional = f"{REGION}:{ACCOUNT}"
    arns = {
        "AWS::S3::Bucket": lambda: f"arn:{PARTITION}:s3:::{_name(logical_id, resource, 'BucketName')}",
        "AWS::KMS::Key": lambda: f"arn:{PARTITION}:kms:{regional}:key/{_ref(logical_id, resources)}",
        "AWS::Lambda::Function": lambda: f"arn:{PARTITION}:lambda:{regional}:function:{logical_id}",
        "AWS::SQS::Queue": lambda: f"arn:{PARTITION}:sqs:{regional}:{logical_id}",
        "AWS::Logs::LogGroup": lambda: (
            f"arn:{PARTITION}:logs:{regional}:log-group:{_name(logical_id, resource, 'LogGroupName')}:*"
        ),
        "AWS::IAM::Role": lambda: f"arn:{PARTITION}:iam::{ACCOUNT}:role/{logical_id}",
        "AWS::Events::Rule": lambda: f"arn:{PARTITION}:events:{regional}:rule/{logical_id}",
        "AWS::StepFunctions::StateMachine": lambda: _ref(logical_id, resources),
        "AWS::SNS::Topic": lambda: _ref(logical_id, resources),
    }
    return arns[kind]()


def resolve(value: Any, resources: dict[str, Any]) -> Any:
    """The value with every intrinsic function replaced by an example string."""
    if isinstance(value, list):
        return [resolve(item, resources) for item in value]
    if not isinstance(value, dict):
        return value
    if set(value) == {"Ref"}:
        return _ref(value["Ref"], resources)
    if set(value) == {"Fn::GetAtt"}:
        logical_id, attribute = value["Fn::GetAtt"]
        assert attribute == "Arn", f"cannot resolve {logical_id}.{attribute}"
        return _arn(logical_id, resources)
    if set(value) == {"Fn::Join"}:
        separator, parts = value["Fn::Join"]
        return separator.join(resolve(part, resources) for part in parts)
    return {key: resolve(item, resources) for key, item in value.items()}


def policy_documents(template: dict[str, Any]) -> list[tuple[str, str, Any]]:
    """(logical id, what, resolved document) for every IAM, resource and key policy."""
    resources = template["Resources"]
    found = []
    for logical_id, resource in resources.items():
        props = resource.get("Properties", {})
        kind = resource["Type"]
        documents = {
            "AWS::IAM::Policy": [("identity policy", props.get("PolicyDocument"))],
            "AWS::IAM::Role": [("trust policy", props.get("AssumeRolePolicyDocument"))]
            + [("inline policy", p["PolicyDocument"]) for p in props.get("Policies", [])],
            "AWS::SNS::TopicPolicy": [("topic policy", props.get("PolicyDocument"))],
            "AWS::S3::BucketPolicy": [("bucket policy", props.get("PolicyDocument"))],
            "AWS::SQS::QueuePolicy": [("queue policy", props.get("PolicyDocument"))],
            "AWS::KMS::Key": [("key policy", props.get("KeyPolicy"))],
        }.get(kind, [])
        found += [(logical_id, what, resolve(doc, resources)) for what, doc in documents if doc]
    return found
