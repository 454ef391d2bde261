"""Bad input and an unreachable or unwilling AWS: exit 2 with one line naming the problem."""

from __future__ import annotations

import json
import socket
from typing import Any

import boto3
import pytest
from click.testing import CliRunner

from smart_vault_cli.main import cli
from smart_vault_sim.aws_tap import aws_error

SCENARIO: dict[str, Any] = {
    "name": "bad input",
    "instances": [{"name": "web-1", "tags": {"backup": "True"}, "volumes": [{"device": "/dev/xvda"}]}],
    "existing_snapshots": [{"label": "old", "instance": "web-1", "age_days": 3}],
    "runs": [{"at": "2026-11-26T03:00:00Z"}, {"every": "1d", "count": 2}],
}


def _one_error_line(result: Any) -> str:
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    return str(lines[0])


def _simulate(tmp_path, text: str | bytes) -> Any:
    path = tmp_path / "scenario.json"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return CliRunner().invoke(cli, ["simulate", "--quiet", str(path)])


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (lambda s: s["instances"][0].update(snapshot_eror=True), "instances[0].snapshot_eror"),
        (lambda s: s["runs"][1].update(every="9999999999d"), "runs[1].every"),
        (lambda s: s["runs"][0].update(at="9999-01-01T00:00:00Z"), "runs[0].at"),
        (lambda s: s["runs"][0].update(at="0001-01-01T00:00:00Z"), "runs[0].at"),
        (lambda s: s["existing_snapshots"][0].update(age_days=1e9), "existing_snapshots[0].age_days"),
        (lambda s: s.update(region="US-EAST-1"), "region"),
        (lambda s: s.update(region="moon-base-1"), "region"),
    ],
)
def test_simulate_rejects_a_bad_field_by_name(tmp_path, edit, field):
    scenario = json.loads(json.dumps(SCENARIO))
    edit(scenario)
    line = _one_error_line(_simulate(tmp_path, json.dumps(scenario)))
    assert f"invalid {field}:" in line


def test_simulate_rejects_infinity_written_in_the_file(tmp_path):
    # Python's json module (like many parsers) reads the non-standard literal Infinity.
    text = json.dumps(SCENARIO).replace('"age_days": 3', '"age_days": Infinity')
    assert "Infinity" in text
    assert "existing_snapshots[0].age_days" in _one_error_line(_simulate(tmp_path, text))


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (json.dumps(SCENARIO).encode("utf-16"), "is not UTF-8"),
        ("\u00e9".encode("latin-1") + b"{}", "is not UTF-8"),
        ("{not json", "is not valid JSON"),
        ("[" * 100_000, "nested too deeply"),
        ('{"name": ' + "9" * 5000 + "}", "is not valid JSON"),
        ("[]", "invalid scenario"),
    ],
)
def test_simulate_rejects_a_file_that_is_not_a_scenario(tmp_path, content, says):
    assert says in _one_error_line(_simulate(tmp_path, content))


def test_simulate_missing_file(tmp_path):
    result = CliRunner().invoke(cli, ["simulate", str(tmp_path / "nope.json")])
    assert "scenario file not found" in _one_error_line(result)


# -- operator verbs -------------------------------------------------------------------------
def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("verb", [["status"], ["plan"], ["run"], ["rerun", "x"], ["graph", "--execution", "x"]])
def test_unreachable_endpoint_is_one_line(monkeypatch, credentials, tmp_path, verb):
    # A local port nobody listens on: connection refused, no real network involved.
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{_closed_port()}")
    if verb[0] == "graph":
        verb = [*verb, "-o", str(tmp_path / "g.svg")]
    result = CliRunner().invoke(cli, ["--region", "us-east-1", *verb])
    assert "cannot reach AWS" in _one_error_line(result)


@pytest.mark.parametrize(
    ("region", "says"),
    [("us-east-9", "unknown AWS region: 'us-east-9'"), ("US-EAST-1", "did you mean 'us-east-1'")],
)
def test_unknown_region_is_refused_before_any_call(monkeypatch, credentials, region, says):
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{_closed_port()}")
    assert says in _one_error_line(CliRunner().invoke(cli, ["--region", region, "status"]))


def _failing(monkeypatch, event: str, code: str, operation: str) -> None:
    """Sessions the CLI creates answer ``event`` with the ClientError AWS returns for ``code``."""
    _raising(monkeypatch, event, aws_error(code, operation))


def _raising(monkeypatch, event: str, error: Exception) -> None:
    real = boto3.Session

    def session(*args: Any, **kwargs: Any) -> Any:
        created = real(*args, **kwargs)

        def refuse(**_: Any) -> None:
            raise error

        created.events.register(event, refuse)
        return created

    monkeypatch.setattr(boto3, "Session", session)


def test_throttling_when_finding_the_stack(stack, monkeypatch):
    # CloudFormation answers a throttled DescribeStacks with the error code Throttling.
    _failing(monkeypatch, "before-call.cloudformation.DescribeStacks", "Throttling", "DescribeStacks")
    line = _one_error_line(stack.cli("status"))
    assert "throttling DescribeStacks (Throttling)" in line


def test_throttling_in_plan_reaches_the_same_message(stack, monkeypatch):
    # EC2 answers a throttled call with RequestLimitExceeded; plan reuses the functions' adapter.
    _failing(monkeypatch, "before-call.ec2.DescribeInstances", "RequestLimitExceeded", "DescribeInstances")
    assert "AWS is throttling ec2:DescribeInstances (RequestLimitExceeded)" in _one_error_line(stack.cli("plan"))


def test_throttling_after_the_stack_was_found(stack, monkeypatch):
    # Step Functions answers a throttled ListExecutions with ThrottlingException.
    _failing(monkeypatch, "before-call.sfn.ListExecutions", "ThrottlingException", "ListExecutions")
    assert "throttling ListExecutions" in _one_error_line(stack.cli("status"))


def test_access_denied_names_the_operation(stack, monkeypatch):
    _failing(monkeypatch, "before-call.ec2.DescribeInstances", "UnauthorizedOperation", "DescribeInstances")
    line = _one_error_line(stack.cli("plan"))
    assert "AWS refused the call: ec2:DescribeInstances failed: UnauthorizedOperation" in line


# -- graph --report ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("content", "says"),
    [
        (None, "report file not found"),
        ("{oops", "report is not valid JSON"),
        (json.dumps(SCENARIO), "is not a simulator run"),
        (json.dumps({"name": "x"}), "not a simulator report"),
        (json.dumps({"runs": [{"at": "x"}]}), "is not a simulator run"),
        (json.dumps({"runs": [{"at": "x", "execution": {"status": "SUCCEEDED"}}]}), "--run 3 is not one"),
        ("[1, 2]", "not a simulator report"),
    ],
)
def test_graph_report_that_cannot_be_used(tmp_path, content, says):
    path = tmp_path / "report.json"
    if content is not None:
        path.write_text(content)
    run = ["--run", "3"] if "--run 3" in says else []
    result = CliRunner().invoke(cli, ["graph", "--report", str(path), *run, "-o", str(tmp_path / "g.svg")])
    assert says in _one_error_line(result)


def test_simulate_report_path_that_cannot_be_written(tmp_path):
    scenario = tmp_path / "s.json"
    scenario.write_text(json.dumps({**SCENARIO, "existing_snapshots": [], "runs": [{"at": "2026-11-26T03:00:00Z"}]}))
    (tmp_path / "a-file").write_text("")  # the report's directory is a file
    report = tmp_path / "a-file" / "report.json"
    result = CliRunner().invoke(cli, ["simulate", "--quiet", str(scenario), "--report", str(report)])
    assert "cannot write the report" in _one_error_line(result)


def test_an_unwritable_report_path_fails_before_the_run(tmp_path, monkeypatch):
    # Found by CI on a clean clone: the run (and a first CDK synthesis, a minute) happened before
    # the report path was tried. Now nothing is emulated or synthesized at all.
    import smart_vault_sim.simulator as simulator

    monkeypatch.setattr(simulator, "simulate", lambda *a, **k: pytest.fail("the run started"))
    scenario = tmp_path / "s.json"
    scenario.write_text(json.dumps({**SCENARIO, "runs": [{"at": "2026-11-26T03:00:00Z"}]}))
    (tmp_path / "a-file").write_text("")
    result = CliRunner().invoke(cli, ["simulate", str(scenario), "--report", str(tmp_path / "a-file" / "r.json")])
    assert "cannot write the report" in _one_error_line(result)


def test_quiet_silences_even_a_first_synthesis(tmp_path, monkeypatch):
    # A cold template cache (as on a clean clone) is announced as progress, which --quiet silences.
    monkeypatch.setenv("SMART_VAULT_CACHE_DIR", str(tmp_path / "cold"))
    import smart_vault_sim.stack_iam as stack_iam

    monkeypatch.setattr(stack_iam, "_template_json", lambda _context: json.dumps({"Resources": {}}))
    lines: list[str] = []
    stack_iam.synthesized_template({"keep_min": 3}, announce=lines.append)
    assert lines and lines[0].startswith("synthesizing the CDK stack")
    # simulate --quiet hands the simulation a progress that prints nothing, which hears it.
    import smart_vault_sim.simulator as simulator

    def run(*_args: Any, progress: Any, **_kwargs: Any) -> dict[str, Any]:
        assert progress is not None  # None would mean: announce on stderr
        progress("synthesizing the CDK stack ...")
        raise SystemExit(0)

    monkeypatch.setattr(simulator, "simulate", run)
    scenario = tmp_path / "s.json"
    scenario.write_text(json.dumps({**SCENARIO, "runs": [{"at": "2026-11-26T03:00:00Z"}]}))
    result = CliRunner().invoke(cli, ["simulate", "--quiet", str(scenario)])
    assert (result.exit_code, result.stdout, result.stderr) == (0, "", "")


def test_a_multi_line_botocore_message_is_one_line(stack, monkeypatch):
    # botocore's parameter validation reports one problem per line.
    from botocore.exceptions import ParamValidationError

    report = "Invalid type for parameter a\nInvalid type for parameter b"
    _raising(monkeypatch, "before-call.sfn.ListExecutions", ParamValidationError(report=report))
    line = _one_error_line(stack.cli("status"))
    assert "Parameter validation failed: Invalid type for parameter a Invalid type for parameter b" in line
