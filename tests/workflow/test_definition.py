"""Tests of the ASL file itself: what the console, the alarms and the deploy rely on."""

import json
import re

from smart_vault.constants import SUBSTITUTION_BUCKET, SUBSTITUTION_FUNCTION_ARNS
from smart_vault_infra.paths import definition_path

LAMBDA_ERRORS = {
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
}


def load():
    return json.loads(definition_path().read_text())


def all_states(machine):
    for name, state in machine["States"].items():
        yield name, state
        processor = state.get("ItemProcessor")
        if processor:
            yield from all_states(processor)


def test_every_task_retries_lambda_errors_and_never_retries_everything():
    for name, state in all_states(load()):
        if state["Type"] != "Task":
            continue
        retried = [set(r["ErrorEquals"]) for r in state.get("Retry", [])]
        assert retried, f"{name} has no Retry"
        assert any(r >= LAMBDA_ERRORS for r in retried), f"{name} does not retry Lambda errors"
        assert not any("States.ALL" in r for r in retried), f"{name} retries everything"
        assert not any({"PermissionDeniedError", "InvalidInputError"} & r for r in retried)


def test_pacing_retries_wait_at_least_15_seconds_without_jitter():
    for name, state in all_states(load()):
        for retrier in state.get("Retry", []):
            if "VolumePacingError" in retrier["ErrorEquals"]:
                assert retrier["IntervalSeconds"] >= 15, name
                assert retrier.get("JitterStrategy", "NONE") == "NONE", name


def test_throttling_retries_back_off_with_jitter():
    snapshot = dict(all_states(load()))["Snapshot"]
    [throttle] = [r for r in snapshot["Retry"] if "ThrottledError" in r["ErrorEquals"]]
    assert throttle["MaxAttempts"] >= 6 and throttle["BackoffRate"] > 1
    assert throttle["JitterStrategy"] == "FULL"


def test_every_placeholder_has_a_substitution_and_vice_versa():
    text = definition_path().read_text()
    placeholders = set(re.findall(r"\$\{(\w+)\}", text))
    assert placeholders == set(SUBSTITUTION_FUNCTION_ARNS) | {SUBSTITUTION_BUCKET}


def test_state_names_are_unique_and_readable():
    names = [name for name, _ in all_states(load())]
    assert len(names) == len(set(names))
    for name in names:
        assert re.fullmatch(r"[A-Z][A-Za-z]+", name), name


def test_every_task_failure_path_is_caught_except_the_last_resort_ones():
    uncaught_ok = {"Notify", "NotifyRunFailure", "RecordFailure"}  # alarms + status rule cover them
    for name, state in all_states(load()):
        if state["Type"] in ("Task", "Map") and name not in uncaught_ok:
            assert state.get("Catch"), f"{name} has no Catch"


def test_execution_timeout_and_distributed_map():
    machine = load()
    assert 0 < machine["TimeoutSeconds"] <= 24 * 3600
    backup = machine["States"]["BackupInstances"]
    assert backup["ItemProcessor"]["ProcessorConfig"]["Mode"] == "DISTRIBUTED"
    assert backup["ItemReader"]["Resource"] == "arn:aws:states:::s3:getObject"
    assert backup["ToleratedFailurePercentage"] == 100
