"""Tests of the ASL file itself: what the console, the alarms and the deploy rely on."""

import json
import re

from smart_vault.constants import BACKUP_SUBSTITUTION_FUNCTION_ARNS, SUBSTITUTION_BUCKET, SUBSTITUTION_TOPIC
from smart_vault_infra.paths import definition_path

# Step Functions docs, "Handle Lambda service exceptions": the transient Lambda errors to retry.
LAMBDA_ERRORS = {
    "Lambda.ClientExecutionTimeoutException",
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


def is_lambda_task(state):
    return state["Type"] == "Task" and state["Resource"].startswith("${")


def test_every_task_retries_lambda_errors_and_never_retries_everything():
    for name, state in all_states(load()):
        if not is_lambda_task(state):
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
    assert placeholders == set(BACKUP_SUBSTITUTION_FUNCTION_ARNS) | {SUBSTITUTION_BUCKET, SUBSTITUTION_TOPIC}


def test_state_names_are_unique_and_readable():
    names = [name for name, _ in all_states(load())]
    assert len(names) == len(set(names))
    for name in names:
        assert re.fullmatch(r"[A-Z][A-Za-z]+", name), name


def test_every_task_failure_path_is_caught_except_the_last_resort_ones():
    # RecordFailure: a child that cannot record counts as failed in Notify (NoOutcomeRecorded).
    # SendFallbackAlert: the last resort; if SNS refuses it the execution fails for the alarms.
    # AwaitRedrive: the redrive gate must fail uncaught, or Redrive would have nothing to restart.
    uncaught_ok = {"RecordFailure", "SendFallbackAlert", "AwaitRedrive"}
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


def test_every_notify_state_falls_back_to_an_alert_that_needs_no_lambda_and_no_s3():
    machine = load()
    states = machine["States"]
    # AwaitRedrive sends nothing (the alert went out before it): its test is the one below.
    notify_states = [
        n for n, s in states.items() if s.get("Resource") == "${NotifyFunctionArn}" and n != "AwaitRedrive"
    ]
    assert sorted(notify_states) == ["Notify", "NotifyRunFailure", "PreflightReport"]
    for name in notify_states:
        [catch] = states[name]["Catch"]
        assert catch["ErrorEquals"] == ["States.ALL"]
        builder = states[catch["Next"]]
        assert builder["Type"] == "Pass"  # intrinsics only: no Lambda, no S3 read
        assert "States.Format(" in builder["Parameters"]["message.$"]
        assert "$$.Execution.Name" in builder["Parameters"]["message.$"]
        assert "$$.Execution.Id" in builder["Parameters"]["message.$"]
        assert "$.notify_error" in builder["Parameters"]["message.$"]
        fallback = states[builder["Next"]]
        assert fallback["Resource"] == "arn:aws:states:::sns:publish"
        assert fallback["Parameters"]["TopicArn"] == "${" + SUBSTITUTION_TOPIC + "}"
        assert not any("States.ALL" in r["ErrorEquals"] for r in fallback["Retry"])
        assert states[fallback["Next"]]["Type"] == "Fail"


def test_the_fallback_subjects_are_valid_sns_subjects():
    for name, state in load()["States"].items():
        subject = (state.get("Parameters") or {}).get("subject")
        if subject is not None:
            assert len(subject) < 100 and all(" " <= c <= "~" for c in subject), name


def test_the_map_has_no_retrier_for_errors_it_cannot_raise():
    # A Map state never invokes Lambda itself: a Lambda.* retrier there can never match.
    backup = load()["States"]["BackupInstances"]
    assert not any(e.startswith("Lambda.") for r in backup.get("Retry", []) for e in r["ErrorEquals"])


def test_the_redrive_gate_fails_uncaught_with_the_runs_own_error_and_never_retries_it():
    states = load()["States"]
    gate = states["AwaitRedrive"]
    assert gate["Type"] == "Task" and "Catch" not in gate
    retried = {e for r in gate["Retry"] for e in r["ErrorEquals"]}
    assert not retried & {"States.ALL", "SmartVault.InstancesFailed", "SmartVault.RunFailed"}
    for held in ("BackupFailed", "RunFailed"):
        assert states[held]["Type"] == "Pass" and states[held]["Next"] == "AwaitRedrive"
    assert not [n for n, s in states.items() if s.get("Next") in ("BackupFailed", "RunFailed") and s["Type"] == "Fail"]
