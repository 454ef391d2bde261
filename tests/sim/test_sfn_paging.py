"""GetExecutionHistory in pages on the emulator, as the API Reference describes it
(smart_vault_sim.sfn_paging cites the page): a toy state machine run by moto's interpreter."""

from __future__ import annotations

import json
import time

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from smart_vault_sim import sfn_paging

TOY = {
    "StartAt": "P0",
    "States": {
        **{f"P{i}": {"Type": "Pass", "Next": f"P{i + 1}"} for i in range(30)},
        "P30": {"Type": "Pass", "End": True},
    },
}


@pytest.fixture
def executions():
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}), sfn_paging.paginated():
        sfn = boto3.client("stepfunctions", region_name="us-east-1")
        machine = sfn.create_state_machine(
            name="toy", definition=json.dumps(TOY), roleArn="arn:aws:iam::123456789012:role/toy"
        )["stateMachineArn"]
        arns = [sfn.start_execution(stateMachineArn=machine, name=f"e{i}")["executionArn"] for i in range(2)]
        for arn in arns:
            while sfn.describe_execution(executionArn=arn)["status"] == "RUNNING":
                time.sleep(0.05)
        yield sfn, arns


def test_history_comes_in_pages_of_max_results_default_100(executions):
    sfn, (arn, _) = executions
    first = sfn.get_execution_history(executionArn=arn, maxResults=10)
    assert len(first["events"]) == 10 and first["nextToken"]
    pages = list(
        sfn.get_paginator("get_execution_history").paginate(executionArn=arn, PaginationConfig={"PageSize": 7})
    )
    events = [e for page in pages for e in page["events"]]
    assert [e["id"] for e in events] == list(range(1, len(events) + 1))  # every event once, in order
    assert len(events) > 60 and events[-1]["type"] == "ExecutionSucceeded"
    assert all(len(page["events"]) == 7 for page in pages[:-1])
    # maxResults 0 or absent: the default page of 100
    assert len(sfn.get_execution_history(executionArn=arn, maxResults=0)["events"]) == min(100, len(events))
    newest = sfn.get_execution_history(executionArn=arn, maxResults=1, reverseOrder=True)["events"][0]
    assert newest["type"] == "ExecutionSucceeded"


def test_a_token_of_another_execution_is_an_invalid_token(executions):
    sfn, (arn, other) = executions
    token = sfn.get_execution_history(executionArn=arn, maxResults=10)["nextToken"]
    with pytest.raises(ClientError) as refused:
        sfn.get_execution_history(executionArn=other, maxResults=10, nextToken=token)
    assert refused.value.response["Error"]["Code"] == "InvalidToken"
