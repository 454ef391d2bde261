"""Request limits AWS enforces and moto does not: an AwsTap check that refuses such a request
before it is sent, with the error code and message the service returns.

Each rule cites the AWS reference it comes from. CreateSnapshots' "no root volume in
ExcludeDataVolumeIds" is enforced inside moto itself (moto_fixes), so plain moto tests see it too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from smart_vault_sim.aws_tap import ApiCall, aws_error

# EC2 API Reference, "Filter" and "Error codes" (FilterLimitExceeded: "The request uses too many
# filters or too many filter values"); the limit is 200 values in one filter.
EC2_FILTER_VALUES = 200
# EC2 User Guide, "Tag restrictions": 50 tags per resource, keys up to 128 and values up to 256
# Unicode characters, the aws: prefix reserved.
EC2_TAGS_PER_RESOURCE = 50
EC2_TAG_KEY_LENGTH = 128
EC2_TAG_VALUE_LENGTH = 256
# SNS API Reference, Publish: "Subject ... must be ASCII text ... must not include line breaks
# or control characters; and must be less than 100 characters long" (so at most 99: the docs
# win over an earlier reading of at most 100); the message, with all message attributes' names,
# types and values, at most 256 KiB (262,144 bytes).
SNS_SUBJECT_LENGTH = 99
SNS_MESSAGE_BYTES = 262_144
# SNS Developer Guide, "Amazon SNS message attributes": up to 10 attributes per message.
SNS_MESSAGE_ATTRIBUTES = 10


def _ec2_filters(call: ApiCall) -> None:
    for flt in call.params.get("Filters") or ():
        if len(flt.get("Values") or ()) > EC2_FILTER_VALUES:
            raise aws_error(
                "FilterLimitExceeded",
                call.operation,
                f"The request uses too many filters or too many filter values. Filter '{flt.get('Name')}' "
                f"has {len(flt['Values'])} values; the maximum is {EC2_FILTER_VALUES}.",
            )


def _ec2_tags(call: ApiCall, tags: list[Mapping[str, Any]]) -> None:
    if len(tags) > EC2_TAGS_PER_RESOURCE:
        raise aws_error(
            "TagLimitExceeded",
            call.operation,
            f"The maximum number of tags per resource ({EC2_TAGS_PER_RESOURCE}) has been exceeded: {len(tags)} given.",
        )
    for tag in tags:
        key, value = str(tag.get("Key", "")), str(tag.get("Value", ""))
        if key.lower().startswith("aws:"):
            raise aws_error(
                "InvalidParameterValue",
                call.operation,
                f"Value ( {key} ) for parameter key is invalid. "
                "Tag keys starting with 'aws:' are reserved for internal use",
            )
        if len(key) > EC2_TAG_KEY_LENGTH:
            raise aws_error(
                "InvalidParameterValue",
                call.operation,
                f"Tag key exceeds the maximum length of {EC2_TAG_KEY_LENGTH} characters: {key[:32]}...",
            )
        if len(value) > EC2_TAG_VALUE_LENGTH:
            raise aws_error(
                "InvalidParameterValue",
                call.operation,
                f"Tag value exceeds the maximum length of {EC2_TAG_VALUE_LENGTH} characters (tag key {key})",
            )


def _ec2_tag_specifications(call: ApiCall) -> None:
    for spec in call.params.get("TagSpecifications") or ():
        _ec2_tags(call, list(spec.get("Tags") or ()))
    if call.operation == "CreateTags":
        _ec2_tags(call, list(call.params.get("Tags") or ()))


def _sns_publish(call: ApiCall) -> None:
    subject = call.params.get("Subject")
    if subject is not None:
        text = str(subject)
        printable = all(0x20 <= ord(c) <= 0x7E for c in text)
        if not text or len(text) > SNS_SUBJECT_LENGTH or not printable:
            raise aws_error("InvalidParameter", call.operation, "Invalid parameter: Subject")
    attributes: Mapping[str, Any] = call.params.get("MessageAttributes") or {}
    if len(attributes) > SNS_MESSAGE_ATTRIBUTES:
        raise aws_error(
            "InvalidParameterValue",
            call.operation,
            f"Number of message attributes [{len(attributes)}] exceeds the allowed maximum [{SNS_MESSAGE_ATTRIBUTES}].",
        )
    size = len(str(call.params.get("Message", "")).encode())
    for name, attribute in attributes.items():
        value = attribute.get("StringValue") or attribute.get("BinaryValue") or ""
        size += len(name.encode()) + len(str(attribute.get("DataType", "")).encode())
        size += len(value if isinstance(value, bytes) else str(value).encode())
    if size > SNS_MESSAGE_BYTES:
        raise aws_error("InvalidParameter", call.operation, "Invalid parameter: Message too long")


class RequestLimits:
    """The AwsTap check for the limits above, on every call of the functions and state machine."""

    def __init__(self) -> None:
        self.refused: list[str] = []  # "Operation: Code" of every refused request, for reports

    def __call__(self, call: ApiCall) -> None:
        try:
            if call.service == "ec2":
                if call.operation.startswith("Describe"):
                    _ec2_filters(call)
                _ec2_tag_specifications(call)
            elif call.service == "sns" and call.operation == "Publish":
                _sns_publish(call)
        except Exception as error:
            code = getattr(error, "response", {}).get("Error", {}).get("Code", type(error).__name__)
            self.refused.append(f"{call.operation}: {code}")
            raise
