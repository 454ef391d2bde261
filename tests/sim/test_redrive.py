"""RedriveExecution on the emulator: toy state machines run by moto's interpreter with the hooks
installed, redriven through boto3 as a user would (smart_vault_sim.redrive cites the AWS pages)."""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from smart_vault_sim import redrive
from smart_vault_sim.redrive import Redrives, this_attempt
from smart_vault_sim.sfn_hooks import InterpreterHooks

REGION = "us-east-1"
ROLE = "arn:aws:iam::123456789012:role/toy"
START = datetime(2026, 11, 26, 3, 0, tzinfo=UTC)


def flaky(name: str, answers: str, next_state: str | None) -> dict[str, Any]:
    """A Pass state that fails (States.Runtime) unless ``answers[RedriveCount]`` is JSON."""
    state: dict[str, Any] = {
        "Type": "Pass",
        "Parameters": {"v.$": f"States.StringToJson(States.ArrayGetItem($.{answers}, $$.Execution.RedriveCount))"},
        "ResultPath": f"$.{name}",
    }
    return state | ({"Next": next_state} if next_state else {"End": True})


def stamp() -> dict[str, Any]:
    """States "Stamp" (a Choice) and two Pass states keeping what the Context object said:
    ``$.stamp.count`` (RedriveCount) and ``$.stamp.time`` (RedriveTime, or "none" if absent)."""
    keep = {"Type": "Pass", "ResultPath": "$.stamp", "End": True}
    return {
        "Stamp": {
            "Type": "Choice",
            "Choices": [{"Variable": "$$.Execution.RedriveTime", "IsPresent": True, "Next": "Timed"}],
            "Default": "Untimed",
        },
        "Timed": keep | {"Parameters": {"count.$": "$$.Execution.RedriveCount", "time.$": "$$.Execution.RedriveTime"}},
        "Untimed": keep | {"Parameters": {"count.$": "$$.Execution.RedriveCount", "time": "none"}},
    }


TOP_LEVEL = {
    "StartAt": "Prepare",
    "States": {
        "Prepare": {"Type": "Pass", "Result": "ready", "ResultPath": "$.prepared", "Next": "Seen"},
        "Seen": {
            "Type": "Pass",
            "Parameters": {"count.$": "$$.Execution.RedriveCount"},
            "ResultPath": "$.seen",
            "Next": "Flaky",
        },
        "Flaky": flaky("flaky", "answers", "Stamp"),
        **stamp(),
    },
}

GATE = {
    "StartAt": "Gate",
    "States": {
        "Gate": {
            "Type": "Choice",
            "Choices": [{"Variable": "$$.Execution.RedriveCount", "NumericGreaterThanEquals": 0, "Next": "Refuse"}],
            "Default": "Refuse",
        },
        "Refuse": {"Type": "Fail", "Error": "Toy.Refused", "Cause": "always"},
    },
}


def distributed(tolerance: dict[str, Any] | None = None) -> dict[str, Any]:
    """A Distributed Map over ``$.items``; each child fails at First or Second until its own
    RedriveCount reaches an answer that parses."""
    return {
        "StartAt": "Each",
        "States": {
            "Each": {
                "Type": "Map",
                "ItemsPath": "$.items",
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                    "StartAt": "First",
                    "States": {
                        "First": flaky("first_ok", "first", "Second"),
                        "Second": flaky("second_ok", "second", "Stamp"),
                        **stamp(),
                    },
                },
                **(tolerance or {}),
                "Next": "Done",
            },
            "Done": {"Type": "Pass", "End": True},
        },
    }


ITEMS = {
    "items": [
        {"id": "a", "first": ["{}"], "second": ["{}"]},  # always succeeds
        {"id": "b", "first": ["{}"], "second": ["bad", "{}"]},  # fails at Second once
        {"id": "c", "first": ["bad", "{}"], "second": ["-", "bad", "{}"]},  # First, then Second
    ]
}


@dataclass
class Emulated:
    sfn: Any
    hooks: InterpreterHooks
    redrives: Redrives
    clock: list[datetime] = field(default_factory=lambda: [START])

    def machine(self, definition: dict[str, Any], name: str = "toy") -> str:
        created = self.sfn.create_state_machine(name=name, definition=json.dumps(definition), roleArn=ROLE)
        return str(created["stateMachineArn"])

    def finished(self, arn: str) -> dict[str, Any]:
        for _ in range(200):
            seen = self.hooks.executions_ended
            described: dict[str, Any] = self.sfn.describe_execution(executionArn=arn)
            if described["status"] != "RUNNING":
                return described
            self.hooks.wait_for_execution_end(seen, timeout=0.05)
        raise AssertionError(f"{arn} still RUNNING")

    def run(self, machine: str, payload: dict[str, Any], name: str = "first") -> tuple[str, dict[str, Any]]:
        started = self.sfn.start_execution(stateMachineArn=machine, name=name, input=json.dumps(payload))
        arn = str(started["executionArn"])
        return arn, self.finished(arn)

    def redrive(self, arn: str) -> dict[str, Any]:
        self.hooks.new_run()  # RunEvents: this attempt only
        self.sfn.redrive_execution(executionArn=arn)
        return self.finished(arn)

    def history(self, arn: str) -> list[dict[str, Any]]:
        return list(self.sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"])


@pytest.fixture
def emulated(monkeypatch: pytest.MonkeyPatch) -> Iterator[Emulated]:
    for key, value in {
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }.items():
        monkeypatch.setenv(key, value)
    moto_log = logging.getLogger("moto.stepfunctions")
    moto_log.setLevel(logging.CRITICAL)  # each toy failure logs the interpreter's traceback
    hooks = InterpreterHooks()
    clock = [START]
    redrives = Redrives(now=lambda: clock[0])
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}), hooks.installed(), redrives.installed():
        yield Emulated(boto3.client("stepfunctions", region_name=REGION), hooks, redrives, clock)
    moto_log.setLevel(logging.NOTSET)


def refusal(call: Any) -> tuple[str, str]:
    with pytest.raises(ClientError) as raised:
        call()
    error = raised.value.response["Error"]
    return str(error["Code"]), str(error["Message"])


def entered(history: list[dict[str, Any]], state: str) -> list[dict[str, Any]]:
    return [e for e in history if e.get("stateEnteredEventDetails", {}).get("name") == state]


def output(described: dict[str, Any]) -> Any:
    return json.loads(described["output"])


# -- a plain execution ------------------------------------------------------------------------
def test_a_redriven_execution_resumes_at_its_failed_state_with_its_input_under_the_same_arn(emulated: Emulated):
    machine = emulated.machine(TOP_LEVEL)
    arn, first = emulated.run(machine, {"answers": ["not json", '{"ok": true}']})
    assert first["status"] == "FAILED"
    assert (first["redriveCount"], first["redriveStatus"]) == (0, "REDRIVABLE")
    before = emulated.history(arn)

    redriven = emulated.sfn.redrive_execution(executionArn=arn)
    assert emulated.history(arn)[: len(before)] == before  # at once, before the attempt has begun
    again = emulated.finished(arn)

    assert again["status"] == "SUCCEEDED"
    assert again["executionArn"] == arn
    assert (again["redriveCount"], again["redriveDate"]) == (1, redriven["redriveDate"])
    listed = emulated.sfn.list_executions(stateMachineArn=machine)["executions"]
    assert [(e["executionArn"], e["redriveCount"]) for e in listed] == [(arn, 1)]
    never, _ = emulated.run(machine, {"answers": ["{}"]}, name="second")
    for wanted, arns in (("REDRIVEN", [arn]), ("NOT_REDRIVEN", [never])):
        listed = emulated.sfn.list_executions(stateMachineArn=machine, redriveFilter=wanted)["executions"]
        assert [e["executionArn"] for e in listed] == arns
    history = emulated.history(arn)
    assert history[: len(before)] == before  # every earlier event kept, failure included
    assert [e["id"] for e in history] == list(range(1, len(history) + 1))  # ids continue
    redrive_event = history[len(before)]
    assert redrive_event["type"] == "ExecutionRedriven"
    assert redrive_event["executionRedrivenEventDetails"] == {"redriveCount": 1}
    # Flaky re-entered with the input it was first entered with; the steps before it not rerun.
    assert (
        entered(history, "Flaky")[1]["stateEnteredEventDetails"]["input"]
        == (entered(before, "Flaky")[0]["stateEnteredEventDetails"]["input"])
    )
    assert (len(entered(history, "Prepare")), len(entered(history, "Seen"))) == (1, 1)
    result = output(again)
    assert result["seen"] == {"count": 0}  # what the first attempt's context said
    assert result["flaky"] == {"v": {"ok": True}}
    assert result["stamp"] == {"count": 1, "time": again["redriveDate"].strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"}


def test_each_redrive_increments_the_count_until_the_execution_succeeds(emulated: Emulated):
    machine = emulated.machine(TOP_LEVEL)
    arn, first = emulated.run(machine, {"answers": ["bad", "still bad", "{}"]})
    once = emulated.redrive(arn)
    twice = emulated.redrive(arn)

    assert [first["status"], once["status"], twice["status"]] == ["FAILED", "FAILED", "SUCCEEDED"]
    assert [first["redriveCount"], once["redriveCount"], twice["redriveCount"]] == [0, 1, 2]
    history = emulated.history(arn)
    redriven = [e["executionRedrivenEventDetails"] for e in history if e["type"] == "ExecutionRedriven"]
    assert redriven == [{"redriveCount": 1}, {"redriveCount": 2}]
    assert [e["type"] for e in history].count("ExecutionFailed") == 2
    assert output(twice)["stamp"]["count"] == 2
    # A redrive is billed for its own transitions: the latest attempt starts at its ExecutionRedriven.
    attempt = this_attempt(history)
    assert attempt[0]["type"] == "ExecutionRedriven" and attempt[-1]["type"] == "ExecutionSucceeded"
    assert [e["stateEnteredEventDetails"]["name"] for e in attempt if "stateEnteredEventDetails" in e] == [
        "Flaky",
        "Stamp",
        "Timed",
    ]


def test_the_context_object_has_redrive_count_zero_and_no_redrive_time_before_any_redrive(emulated: Emulated):
    machine = emulated.machine(TOP_LEVEL)
    _, described = emulated.run(machine, {"answers": ["{}"]})
    assert described["status"] == "SUCCEEDED"
    assert output(described)["stamp"] == {"count": 0, "time": "none"}


def test_a_fail_state_reenters_and_fails_again_on_redrive(emulated: Emulated):
    # DG-redrive, Fail: "Reenters the Fail state and fails again."
    arn, first = emulated.run(emulated.machine(GATE), {})
    again = emulated.redrive(arn)
    assert (first["status"], again["status"], again["redriveCount"]) == ("FAILED", "FAILED", 1)
    history = emulated.history(arn)
    assert (len(entered(history, "Gate")), len(entered(history, "Refuse"))) == (1, 2)


# -- refusals ---------------------------------------------------------------------------------
def test_a_succeeded_execution_is_not_redrivable(emulated: Emulated):
    arn, described = emulated.run(emulated.machine(TOP_LEVEL), {"answers": ["{}"]})
    assert (described["redriveStatus"], described["redriveStatusReason"]) == (
        "NOT_REDRIVABLE",
        "Execution is SUCCEEDED and cannot be redriven.",
    )
    assert refusal(lambda: emulated.sfn.redrive_execution(executionArn=arn)) == (
        "ExecutionNotRedrivable",
        "Execution is SUCCEEDED and cannot be redriven.",
    )


def waiting_for_a_worker(queue: str) -> dict[str, Any]:
    """Prepare, then a task that waits for a token sent to ``queue`` (the execution stays RUNNING)."""
    return {
        "StartAt": "Prepare",
        "States": {
            "Prepare": {"Type": "Pass", "Result": "ready", "ResultPath": "$.prepared", "Next": "Wait for a worker"},
            "Wait for a worker": {
                "Type": "Task",
                "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
                "Parameters": {"QueueUrl": queue, "MessageBody": {"token.$": "$$.Task.Token"}},
                "End": True,
            },
        },
    }


def next_message(sqs: Any, queue: str) -> dict[str, Any]:
    for _ in range(200):
        messages = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=0).get("Messages", [])
        if messages:
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=messages[0]["ReceiptHandle"])
            body: dict[str, Any] = json.loads(messages[0]["Body"])
            return body
        time.sleep(0.01)
    raise AssertionError("the task never sent its token")


def test_a_running_execution_is_not_redrivable(emulated: Emulated):
    sqs = boto3.client("sqs", region_name=REGION)
    queue = sqs.create_queue(QueueName="tokens")["QueueUrl"]
    machine = emulated.machine(waiting_for_a_worker(queue))
    arn = emulated.sfn.start_execution(stateMachineArn=machine, name="waiting", input="{}")["executionArn"]
    token = next_message(sqs, queue)["token"]
    described = emulated.sfn.describe_execution(executionArn=arn)
    assert (described["status"], described["redriveStatus"]) == ("RUNNING", "NOT_REDRIVABLE")
    assert refusal(lambda: emulated.sfn.redrive_execution(executionArn=arn)) == (
        "ExecutionNotRedrivable",
        "Execution is RUNNING and cannot be redriven.",
    )
    emulated.sfn.send_task_success(taskToken=token, output="{}")
    assert emulated.finished(arn)["status"] == "SUCCEEDED"


def test_a_redriven_task_gets_its_retries_again(emulated: Emulated):
    # DG-redrive: "the retry attempt count for these states is reset to 0 to allow for the
    # maximum number of attempts on redrive."
    sqs = boto3.client("sqs", region_name=REGION)
    queue = sqs.create_queue(QueueName="tokens")["QueueUrl"]
    definition = waiting_for_a_worker(queue)
    task = definition["States"]["Wait for a worker"]
    task["Parameters"]["MessageBody"] |= {"retry.$": "$$.State.RetryCount", "redrive.$": "$$.Execution.RedriveCount"}
    task["Retry"] = [{"ErrorEquals": ["Toy.Busy"], "MaxAttempts": 1, "IntervalSeconds": 1}]
    arn = emulated.sfn.start_execution(stateMachineArn=emulated.machine(definition), name="busy", input="{}")[
        "executionArn"
    ]
    seen = []

    def refuse_twice() -> None:  # the attempt and its one retry, both refused
        for _ in range(2):
            body = next_message(sqs, queue)
            seen.append((body["redrive"], body["retry"]))
            # moto fails a retried callback task with its earlier failure by itself; the refusal
            # is then one too many, which is no part of what this test looks at.
            with contextlib.suppress(ClientError):
                emulated.sfn.send_task_failure(taskToken=body["token"], error="Toy.Busy")

    refuse_twice()
    assert emulated.finished(arn)["status"] == "FAILED"
    emulated.sfn.redrive_execution(executionArn=arn)
    refuse_twice()

    assert emulated.finished(arn)["status"] == "FAILED"
    assert seen == [(0, 0), (0, 1), (1, 0), (1, 1)]  # the redrive had its retry again
    history = emulated.history(arn)
    assert [e["type"] for e in this_attempt(history)].count("TaskScheduled") == 2


def test_a_timed_out_execution_is_redriven_with_its_timeout_started_again(emulated: Emulated):
    # DG-redrive: "When you redrive an execution, the state machine level timeout, if defined,
    # is reset to 0." (moto measures TimeoutSeconds on the wall clock.)
    sqs = boto3.client("sqs", region_name=REGION)
    queue = sqs.create_queue(QueueName="tokens")["QueueUrl"]
    definition = waiting_for_a_worker(queue) | {"TimeoutSeconds": 1}
    arn = emulated.sfn.start_execution(stateMachineArn=emulated.machine(definition), name="slow", input="{}")[
        "executionArn"
    ]
    next_message(sqs, queue)  # no answer: the execution times out
    assert emulated.finished(arn)["status"] == "TIMED_OUT"

    emulated.sfn.redrive_execution(executionArn=arn)
    emulated.sfn.send_task_success(taskToken=next_message(sqs, queue)["token"], output='{"done": true}')
    again = emulated.finished(arn)
    assert (again["status"], again["redriveCount"], output(again)) == ("SUCCEEDED", 1, {"done": True})
    history = emulated.history(arn)
    assert [e["type"] for e in history].count("ExecutionRedriven") == 1
    assert (len(entered(history, "Prepare")), len(entered(history, "Wait for a worker"))) == (1, 2)


def test_an_execution_that_stopped_more_than_14_days_ago_is_not_redrivable(emulated: Emulated):
    arn, _ = emulated.run(emulated.machine(TOP_LEVEL), {"answers": ["bad", "{}"]})
    emulated.clock[0] = START + timedelta(days=13)  # stop times are taken on the simulator's clock
    assert emulated.sfn.describe_execution(executionArn=arn)["redriveStatus"] == "REDRIVABLE"
    emulated.clock[0] = START + timedelta(days=15)
    described = emulated.sfn.describe_execution(executionArn=arn)
    assert (described["redriveStatus"], described["redriveStatusReason"]) == (
        "NOT_REDRIVABLE",
        "Execution redrivable period exceeded.",
    )
    assert refusal(lambda: emulated.sfn.redrive_execution(executionArn=arn)) == (
        "ExecutionNotRedrivable",
        "Execution redrivable period exceeded.",
    )
    # The simulator may also set a stop time itself: stopped two days before "now", redrivable.
    emulated.redrives.record_stop(arn, emulated.clock[0] - timedelta(days=2))
    assert emulated.redrive(arn)["status"] == "SUCCEEDED"


def test_an_execution_open_for_more_than_a_year_is_not_redrivable(emulated: Emulated):
    # API-Redrive: "The workflow execution has not exceeded the maximum open time of one year."
    arn, _ = emulated.run(emulated.machine(TOP_LEVEL), {"answers": ["bad", "{}"]})
    emulated.clock[0] = START + timedelta(days=366)
    emulated.redrives.record_stop(arn, emulated.clock[0] - timedelta(days=1))  # within 14 days
    assert refusal(lambda: emulated.sfn.redrive_execution(executionArn=arn)) == (
        "ExecutionNotRedrivable",
        "Execution has exceeded the max execution time.",
    )


def test_an_execution_with_a_full_history_is_not_redrivable(emulated: Emulated, monkeypatch: pytest.MonkeyPatch):
    # API-Redrive: "The execution event history count is less than 24,999." The toy's history is
    # short, so the limit is lowered to its length to see the rule apply.
    arn, _ = emulated.run(emulated.machine(TOP_LEVEL), {"answers": ["bad", "{}"]})
    monkeypatch.setattr(redrive, "HISTORY_LIMIT", len(emulated.history(arn)))
    assert refusal(lambda: emulated.sfn.redrive_execution(executionArn=arn)) == (
        "ExecutionNotRedrivable",
        "Execution history event limit exceeded.",
    )
    monkeypatch.setattr(redrive, "HISTORY_LIMIT", len(emulated.history(arn)) + 1)
    assert emulated.redrive(arn)["status"] == "SUCCEEDED"


def test_the_same_client_token_redrives_once(emulated: Emulated):
    # API-Redrive, clientToken: "The API will return idempotent responses for the last 10
    # client tokens used to successfully redrive the execution."
    arn, _ = emulated.run(emulated.machine(TOP_LEVEL), {"answers": ["bad", "bad", "{}"]})
    first = emulated.sfn.redrive_execution(executionArn=arn, clientToken="retry-after-outage")
    emulated.finished(arn)
    again = emulated.sfn.redrive_execution(executionArn=arn, clientToken="retry-after-outage")
    described = emulated.finished(arn)
    assert again["redriveDate"] == first["redriveDate"]
    assert (described["status"], described["redriveCount"]) == ("FAILED", 1)
    # "These client tokens are valid for up to 15 minutes after they are first used."
    emulated.clock[0] += timedelta(minutes=16)
    emulated.sfn.redrive_execution(executionArn=arn, clientToken="retry-after-outage")
    described = emulated.finished(arn)
    assert (described["status"], described["redriveCount"]) == ("SUCCEEDED", 2)


def test_an_express_execution_is_not_redrivable(emulated: Emulated):
    # API-Redrive: "This API action is not supported by EXPRESS state machines."
    created = emulated.sfn.create_state_machine(
        name="express", definition=json.dumps(TOP_LEVEL), roleArn=ROLE, type="EXPRESS"
    )
    arn, described = emulated.run(created["stateMachineArn"], {"answers": ["bad", "{}"]})
    assert (described["status"], described["redriveStatus"]) == ("FAILED", "NOT_REDRIVABLE")
    assert refusal(lambda: emulated.sfn.redrive_execution(executionArn=arn)) == (
        "ExecutionNotRedrivable",
        "This API action is not supported by EXPRESS state machines.",
    )


def test_an_unknown_execution_cannot_be_redriven(emulated: Emulated):
    emulated.machine(TOP_LEVEL)
    missing = f"arn:aws:states:{REGION}:123456789012:execution:toy:nobody"
    assert refusal(lambda: emulated.sfn.redrive_execution(executionArn=missing))[0] == "ExecutionDoesNotExist"


# -- Parallel and inline Map ------------------------------------------------------------------
def test_a_redriven_parallel_reruns_only_its_failed_branch(emulated: Emulated):
    # DG-redrive, Parallel: "Reschedules and redrives only those branches that failed or aborted."
    sqs = boto3.client("sqs", region_name=REGION)
    queue = sqs.create_queue(QueueName="tokens")["QueueUrl"]
    waiting = waiting_for_a_worker(queue)["States"]["Wait for a worker"]
    definition = {
        "StartAt": "Both",
        "States": {
            "Both": {
                "Type": "Parallel",
                "Branches": [
                    {"StartAt": "Steady", "States": {"Steady": stamp()["Untimed"] | {"ResultPath": None}}},
                    {"StartAt": "Wait for a worker", "States": {"Wait for a worker": waiting}},
                ],
                "End": True,
            }
        },
    }
    arn = emulated.sfn.start_execution(stateMachineArn=emulated.machine(definition), name="both", input="{}")[
        "executionArn"
    ]
    token = next_message(sqs, queue)["token"]
    for _ in range(200):  # the other branch is done before this one fails
        if any(e["type"] == "PassStateExited" for e in emulated.history(arn)):
            break
        time.sleep(0.01)
    emulated.sfn.send_task_failure(taskToken=token, error="Toy.Busy")
    assert emulated.finished(arn)["status"] == "FAILED"

    emulated.sfn.redrive_execution(executionArn=arn)
    emulated.sfn.send_task_success(taskToken=next_message(sqs, queue)["token"], output='{"done": true}')
    again = emulated.finished(arn)

    assert (again["status"], output(again)) == ("SUCCEEDED", [{}, {"done": True}])
    history = emulated.history(arn)
    assert (len(entered(history, "Both")), len(entered(history, "Steady"))) == (2, 1)
    assert len(entered(history, "Wait for a worker")) == 2


def inline_map(processor: dict[str, Any]) -> dict[str, Any]:
    """An inline Map over ``$.items``, one item at a time (an item that fails leaves the next unstarted)."""
    processor = {"ProcessorConfig": {"Mode": "INLINE"}} | processor
    each = {"Type": "Map", "ItemsPath": "$.items", "MaxConcurrency": 1, "ItemProcessor": processor, "End": True}
    return {"StartAt": "Each", "States": {"Each": each}}


def test_a_redriven_inline_map_reruns_only_its_failed_and_unstarted_iterations(emulated: Emulated):
    # DG-redrive, Inline Map: "Reschedules and redrives only those iterations that failed or aborted."
    definition = inline_map({"StartAt": "Try", "States": {"Try": flaky("ok", "answers", "Stamp"), **stamp()}})
    items = {"items": [{"answers": ["{}"]}, {"answers": ["bad", "{}"]}, {"answers": ["{}", "{}"]}]}
    arn, first = emulated.run(emulated.machine(definition), items)
    assert first["status"] == "FAILED"  # the second item failed; the third never started
    again = emulated.redrive(arn)

    assert again["status"] == "SUCCEEDED"
    # The first item's output is the first attempt's; the others ran in the redrive.
    assert [r["stamp"]["count"] for r in output(again)] == [0, 1, 1]
    attempt = this_attempt(emulated.history(arn))
    assert [e["mapIterationStartedEventDetails"]["index"] for e in attempt if e["type"] == "MapIterationStarted"] == [
        1,
        2,
    ]


# -- a Distributed Map ------------------------------------------------------------------------
def child_runs(emulated: Emulated) -> int:
    return len(emulated.hooks.current.children)


def child_states_entered(emulated: Emulated) -> list[list[str]]:
    return [
        [name for kind, name in child.states if kind.endswith("StateEntered")]
        for child in emulated.hooks.current.children.values()
    ]


def test_a_redriven_map_run_reruns_only_its_unsuccessful_children_from_their_failed_state(emulated: Emulated):
    machine = emulated.machine(distributed())
    emulated.hooks.new_run()
    arn, first = emulated.run(machine, ITEMS)
    assert (first["status"], first["error"]) == ("FAILED", "States.ExceedToleratedFailureThreshold")
    assert child_runs(emulated) == 3

    once = emulated.redrive(arn)
    assert (once["status"], once["redriveCount"]) == ("FAILED", 1)
    assert child_runs(emulated) == 2  # b and c: a succeeded and is not rerun
    # b restarts at Second (where it failed), c at First (where it failed) and fails at Second.
    assert sorted(child_states_entered(emulated)) == [["First", "Second"], ["Second", "Stamp", "Timed"]]

    twice = emulated.redrive(arn)
    assert (twice["status"], twice["redriveCount"]) == ("SUCCEEDED", 2)
    assert child_runs(emulated) == 1  # c alone, from Second: its First is not re-entered
    assert child_states_entered(emulated) == [["Second", "Stamp", "Timed"]]

    results = output(twice)
    assert [r["id"] for r in results] == ["a", "b", "c"]  # every item, a's output from the first run
    # Each Standard child sees its own redrive count (a: never redriven, b: once, c: twice).
    assert [r["stamp"]["count"] for r in results] == [0, 1, 2]
    assert results[0]["stamp"]["time"] == "none" and results[2]["stamp"]["time"] != "none"

    history = emulated.history(arn)
    started = [e["mapRunStartedEventDetails"]["mapRunArn"] for e in history if e["type"] == "MapRunStarted"]
    redriven = [e["mapRunRedrivenEventDetails"] for e in history if e["type"] == "MapRunRedriven"]
    assert redriven == [{"mapRunArn": started[0], "redriveCount": 1}, {"mapRunArn": started[0], "redriveCount": 2}]
    assert [e["type"] for e in history].count("ExecutionRedriven") == 2
    map_runs = emulated.sfn.list_map_runs(executionArn=arn)["mapRuns"]
    assert [m["mapRunArn"] for m in map_runs] == started  # one Map Run, redriven under its ARN
    described = emulated.sfn.describe_map_run(mapRunArn=started[0])
    assert (described["status"], described["redriveCount"]) == ("SUCCEEDED", 2)
    assert described["itemCounts"]["succeeded"] == 3


def test_a_distributed_map_fails_only_beyond_its_tolerated_failures(emulated: Emulated):
    # b and c fail: one failure tolerated is too few, two are enough.
    _, strict = emulated.run(emulated.machine(distributed({"ToleratedFailureCount": 1}), "strict"), ITEMS)
    _, lenient = emulated.run(emulated.machine(distributed({"ToleratedFailureCount": 2}), "lenient"), ITEMS)
    _, by_share = emulated.run(emulated.machine(distributed({"ToleratedFailurePercentage": 70.0}), "share"), ITEMS)
    assert (strict["status"], strict["error"]) == ("FAILED", "States.ExceedToleratedFailureThreshold")
    assert (lenient["status"], by_share["status"]) == ("SUCCEEDED", "SUCCEEDED")


# -- inside a redriven branch or iteration: its unsuccessful state, not its StartAt -------------
# DG-redrive: redrive "continues the failed execution from the unsuccessful step"; DG-maprun: "A
# parent workflow redrives unsuccessful states if there's no <stateType>Exited event".
def in_one_branch(branch: dict[str, Any]) -> dict[str, Any]:
    return {"StartAt": "Both", "States": {"Both": {"Type": "Parallel", "Branches": [branch], "End": True}}}


def test_a_fail_state_in_a_redriven_branch_is_reentered_not_its_choice(emulated: Emulated):
    # A Choice that would let the branch through once it is redriven: the redrive does not
    # re-evaluate it, as the branch's unsuccessful state is the Fail state. DG-redrive, Fail:
    # "Reenters the Fail state and fails again."
    gate = GATE | {
        "States": GATE["States"]
        | {
            "Gate": {
                "Type": "Choice",
                "Choices": [{"Variable": "$$.Execution.RedriveCount", "NumericGreaterThan": 0, "Next": "Pass"}],
                "Default": "Refuse",
            },
            "Pass": {"Type": "Succeed"},
        }
    }
    arn, first = emulated.run(emulated.machine(in_one_branch(gate)), {"hold": 0})
    again = emulated.redrive(arn)

    assert (first["status"], first["error"]) == ("FAILED", "Toy.Refused")
    assert (again["status"], again["error"], again["redriveCount"]) == ("FAILED", "Toy.Refused", 1)
    history = emulated.history(arn)
    assert [len(entered(history, s)) for s in ("Both", "Gate", "Refuse", "Pass")] == [2, 1, 2, 0]
    # The Fail state is re-entered with the input it was first entered with.
    assert {e["stateEnteredEventDetails"]["input"] for e in entered(history, "Refuse")} == {'{"hold":0}'}


def test_a_redriven_branch_resumes_at_its_failed_task_not_at_the_pass_before_it(emulated: Emulated):
    # DG-redrive, Task: "Schedules and starts the Task state again."; the Pass before it succeeded
    # and is not rerun.
    sqs = boto3.client("sqs", region_name=REGION)
    queue = sqs.create_queue(QueueName="tokens")["QueueUrl"]
    branch = waiting_for_a_worker(queue)
    prepare = {"Type": "Pass", "Parameters": {"count.$": "$$.Execution.RedriveCount"}, "ResultPath": "$.prepared"}
    branch["States"]["Prepare"] = prepare | {"Next": "Wait for a worker"}
    machine = emulated.machine(in_one_branch(branch))
    arn = emulated.sfn.start_execution(stateMachineArn=machine, name="branch", input="{}")["executionArn"]
    emulated.sfn.send_task_failure(taskToken=next_message(sqs, queue)["token"], error="Toy.Busy")
    assert emulated.finished(arn)["status"] == "FAILED"

    emulated.sfn.redrive_execution(executionArn=arn)
    body = next_message(sqs, queue)
    emulated.sfn.send_task_success(taskToken=body["token"], output='{"done": true}')
    again = emulated.finished(arn)

    assert (again["status"], output(again)) == ("SUCCEEDED", [{"done": True}])
    history = emulated.history(arn)
    assert (len(entered(history, "Prepare")), len(entered(history, "Wait for a worker"))) == (1, 2)
    # The task is scheduled again with the input it was first entered with: Prepare's first result.
    inputs = [e["stateEnteredEventDetails"]["input"] for e in entered(history, "Wait for a worker")]
    assert inputs[0] == inputs[1] and json.loads(inputs[1])["prepared"] == {"count": 0}


def test_a_redriven_inline_map_iteration_resumes_at_its_failed_state(emulated: Emulated):
    # DG-redrive, Inline Map: "Reschedules and redrives only those iterations that failed or
    # aborted." Within the failed iteration, Mark succeeded and is not rerun; Try is.
    mark = {"Type": "Pass", "Parameters": {"count.$": "$$.Execution.RedriveCount"}, "ResultPath": "$.mark"}
    definition = inline_map(
        {"StartAt": "Mark", "States": {"Mark": mark | {"Next": "Try"}, "Try": flaky("ok", "answers", None)}}
    )
    items = {"items": [{"answers": ["{}"]}, {"answers": ["bad", "{}"]}, {"answers": ["{}", "{}"]}]}
    arn, first = emulated.run(emulated.machine(definition), items)
    before = emulated.history(arn)
    again = emulated.redrive(arn)

    assert (first["status"], again["status"]) == ("FAILED", "SUCCEEDED")
    # Item 1's Mark is its first attempt's (count 0); item 2 never started before and ran whole.
    assert [r["mark"]["count"] for r in output(again)] == [0, 0, 1]
    attempt = this_attempt(emulated.history(arn))
    assert (len(entered(attempt, "Mark")), len(entered(attempt, "Try"))) == (1, 2)
    # Item 1's Try is re-entered with the input it was first entered with.
    retried, failed = entered(attempt, "Try")[0], entered(before, "Try")[1]
    assert retried["stateEnteredEventDetails"] == failed["stateEnteredEventDetails"]


def test_an_iteration_that_succeeded_is_not_rerun_by_a_later_redrive_either(emulated: Emulated):
    # DG-redrive, Inline Map: only the iterations "that failed or aborted" are redriven, on the
    # second redrive as on the first.
    definition = inline_map({"StartAt": "Try", "States": {"Try": flaky("ok", "answers", None)}})
    items = {"items": [{"answers": ["{}"]}, {"answers": ["bad", "{}"]}, {"answers": ["-", "bad", "{}"]}]}
    arn, _ = emulated.run(emulated.machine(definition), items)
    statuses = [emulated.redrive(arn)["status"], emulated.redrive(arn)["status"]]

    assert statuses == ["FAILED", "SUCCEEDED"]
    attempt = this_attempt(emulated.history(arn))
    assert [e["mapIterationStartedEventDetails"]["index"] for e in attempt if e["type"] == "MapIterationStarted"] == [2]
