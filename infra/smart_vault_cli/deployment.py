"""A deployed Smart Vault stack, found by name through its CloudFormation outputs."""

from __future__ import annotations

import json
import os
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ProfileNotFound,
    ReadTimeoutError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError
from botocore.parsers import ResponseParserError

from smart_vault.aws import Store
from smart_vault.constants import (
    OUTPUT_BUCKET_NAME,
    OUTPUT_DRILL_STATE_MACHINE_ARN,
    OUTPUT_STATE_MACHINE_ARN,
    OUTPUT_TOPIC_ARN,
    RUNS_PREFIX,
)
from smart_vault.errors import THROTTLING_CODES, SmartVaultError, ThrottledError
from smart_vault.models import RunContext, execution_prefix, outcomes_prefix
from smart_vault.redrive.attempts import attempt_prefix, merged_audit
from smart_vault.validation import format_time, parse_time


def new_session(**kwargs: Any) -> Any:
    """The operator's boto3 session (the emulated stack's tests watch the calls made with it)."""
    session = boto3.Session(**kwargs)
    refuse_web_pages(session)
    return session


_NOT_AWS_HINT = (
    "not AWS: a proxy, a web server or an emulator is in the way (check AWS_ENDPOINT_URL, "
    "the profile's endpoint_url and HTTPS_PROXY)"
)


class NotAwsAnswer(BotoCoreError):  # type: ignore[misc]
    """An endpoint answered an API call with a web page: whatever it is, it is not AWS."""

    fmt = "{endpoint} answered {operation} with an HTML page (HTTP {status}): " + _NOT_AWS_HINT


def refuse_web_pages(session: Any) -> None:
    """No AWS API answers with an HTML page (XML or JSON only, but for an object's own bytes),
    while a captive portal, a proxy's or a web server's error page does: botocore would read it
    as an empty answer (HTTP 200) or an error with no code (HTTP 500). Refuse it by name."""
    sent = threading.local()

    def remember(request: Any, **_: Any) -> None:
        sent.url = request.url

    def check(operation_model: Any, response_dict: dict[str, Any], **_: Any) -> None:
        body = response_dict.get("body")
        if operation_model.has_streaming_output or not isinstance(body, bytes):
            return  # S3 GetObject's body is the object's, whatever it holds
        if body.lstrip()[:15].lower().startswith((b"<!doctype html", b"<html")):
            endpoint = urlsplit(getattr(sent, "url", "") or "")
            raise NotAwsAnswer(
                endpoint=f"{endpoint.scheme}://{endpoint.netloc}" if endpoint.netloc else "the endpoint",
                operation=operation_model.name,
                status=response_dict.get("status_code"),
            )

    session.events.register("before-send", remember)
    session.events.register("before-parse", check)


class CliError(Exception):
    """A problem the user can fix (no stack, no credentials, unknown execution): exit code 2."""


@dataclass
class Deployment:
    stack: str
    session: Any
    state_machine_arn: str
    topic_arn: str
    bucket: str
    profile: str | None = None
    drill_state_machine_arn: str | None = None  # stacks deployed before the drill have none
    # Outcome records are written once per instance and execution: `run --follow` polls the
    # listing but reads each record only the first time it appears.
    _records: dict[tuple[str, str | None], dict[str, Any]] = field(default_factory=dict, repr=False)

    @classmethod
    def find(cls, stack: str, *, region: str | None = None, profile: str | None = None) -> Deployment:
        try:
            session = new_session(profile_name=profile, region_name=region)
        except ProfileNotFound as error:
            raise CliError(str(error)) from None
        check_region(session)
        try:
            response = session.client("cloudformation").describe_stacks(StackName=stack)
        except ClientError as error:
            message = error.response.get("Error", {}).get("Message", "")
            if error.response.get("Error", {}).get("Code") == "ValidationError" and "does not exist" in message:
                raise CliError(f"no such stack: {stack} in {session.region_name}") from None
            raise
        outputs = {o["OutputKey"]: o["OutputValue"] for o in response["Stacks"][0].get("Outputs", [])}
        missing = [k for k in (OUTPUT_STATE_MACHINE_ARN, OUTPUT_TOPIC_ARN, OUTPUT_BUCKET_NAME) if k not in outputs]
        if missing:
            raise CliError(f"stack {stack} is not a Smart Vault stack (no output {missing[0]})")
        return cls(
            stack=stack,
            session=session,
            state_machine_arn=outputs[OUTPUT_STATE_MACHINE_ARN],
            topic_arn=outputs[OUTPUT_TOPIC_ARN],
            bucket=outputs[OUTPUT_BUCKET_NAME],
            profile=profile,
            drill_state_machine_arn=outputs.get(OUTPUT_DRILL_STATE_MACHINE_ARN),
        )

    def client(self, service: str) -> Any:
        return self.session.client(service)

    def regional(self, region: str | None) -> Any:
        """The operator's session in ``region`` (the stack's when None): a restore may target
        another region than the stack's."""
        if region is None or region == self.session.region_name:
            return self.session
        session = new_session(profile_name=self.profile, region_name=region)
        check_region(session)
        return session

    # -- executions -------------------------------------------------------------------------
    def execution_arns(self, execution: str) -> list[str]:
        """The ARNs an execution name may have: on the backup machine, else on the drill's."""
        if execution.startswith("arn:"):
            return [execution]
        machines = [self.state_machine_arn, *([self.drill_state_machine_arn] if self.drill_state_machine_arn else [])]
        return [m.replace(":stateMachine:", ":execution:") + f":{execution}" for m in machines]

    def describe(self, execution: str) -> dict[str, Any]:
        """DescribeExecution of an ARN, or of a name on the backup or the drill state machine."""
        for arn in self.execution_arns(execution):
            try:
                return dict(self.client("stepfunctions").describe_execution(executionArn=arn))
            except ClientError as error:
                code = error.response.get("Error", {}).get("Code", "")
                if code not in ("ExecutionDoesNotExist", "InvalidArn", "ResourceNotFound"):
                    raise
        raise CliError(f"no such execution: {execution}")

    def start(self, payload: dict[str, Any], *, kind: str, machine: str | None = None) -> str:
        """Start an execution (of ``machine``, the backup one by default) named after what
        started it, so the console list tells them apart."""
        name = f"{kind}-{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
        return str(
            self.client("stepfunctions").start_execution(
                stateMachineArn=machine or self.state_machine_arn, name=name, input=json.dumps(payload)
            )["executionArn"]
        )

    def recent(
        self, limit: int = 10, *, status: str | None = None, since: datetime | None = None, machine: str | None = None
    ) -> list[dict[str, Any]]:
        """The newest ``limit`` executions (of ``machine``, the backup one by default), only those
        in ``status`` (ListExecutions' statusFilter) and started at or after ``since``.

        ListExecutions lists the most recent first (Step Functions API Reference, ListExecutions):
        the pages are read only until one reaches past ``since``."""
        params: dict[str, Any] = {"stateMachineArn": machine or self.state_machine_arn}
        if status is not None:
            params["statusFilter"] = status
        found: list[dict[str, Any]] = []
        for page in self.client("stepfunctions").get_paginator("list_executions").paginate(**params):
            batch = page["executions"]
            found += [e for e in batch if since is None or e["startDate"] >= since]
            if len(found) >= limit or (since is not None and any(e["startDate"] < since for e in batch)):
                break
        return sorted(found, key=lambda e: e["startDate"], reverse=True)[:limit]

    # -- run records in S3 --------------------------------------------------------------------
    def run_prefix(self, description: dict[str, Any]) -> str | None:
        try:
            moment = parse_time(json.loads(description.get("input") or "{}").get("time", ""), "time")
        except Exception:
            return None
        return execution_prefix(RunContext.run_id_for(moment), description["name"])

    def read_json(self, key: str) -> Any:
        try:
            body = self.client("s3").get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except ClientError:
            return None
        return json.loads(body)

    def outcomes(self, description: dict[str, Any]) -> dict[str, dict[str, Any]]:
        prefix = self.run_prefix(description)
        if prefix is None:
            return {}
        s3 = self.client("s3")
        found: dict[str, dict[str, Any]] = {}
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=outcomes_prefix(prefix)):
            for obj in page.get("Contents", []):
                # By key and ETag: a redrive attempt rewrites the records of the instances it re-ran.
                cached = (obj["Key"], obj.get("ETag"))
                record = self._records.get(cached) or self.read_json(obj["Key"])
                if record:
                    self._records[cached] = record
                    found[record["instance_id"]] = record
        return found

    def inventory(self, description: dict[str, Any]) -> list[dict[str, Any]] | None:
        prefix = self.run_prefix(description)
        return self.read_json(f"{prefix}/inventory.json") if prefix else None

    def audit(self, description: dict[str, Any]) -> dict[str, Any] | None:
        """The execution's audit record; after redrives, the run as its attempts left it (each
        attempt writes its own record, smart_vault.redrive)."""
        prefix = self.run_prefix(description)
        if prefix is None:
            return None
        attempts = range(int(description.get("redriveCount") or 0) + 1)
        return merged_audit([self.read_json(f"{attempt_prefix(prefix, k)}/audit.json") for k in attempts])

    def latest_audit(self, run_id: str) -> dict[str, Any] | None:
        """The audit record of the run's most recent execution (a re-run shares the run id)."""
        s3 = self.client("s3")
        found: list[tuple[Any, str]] = []
        pages = s3.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=f"{RUNS_PREFIX}/{run_id}/", Delimiter="/"
        )
        for page in pages:
            for common in page.get("CommonPrefixes", []):
                key = f"{common['Prefix']}audit.json"
                try:
                    head = s3.head_object(Bucket=self.bucket, Key=key)
                except ClientError:
                    continue
                found.append((head["LastModified"], key))
        return self.read_json(max(found)[1]) if found else None

    def write_json(self, key: str, body: Any) -> None:
        self.client("s3").put_object(
            Bucket=self.bucket, Key=key, Body=json.dumps(body).encode(), ContentType="application/json"
        )

    def store(self) -> Store:
        """The bucket as the functions read it (approvals), with the operator's credentials."""
        return Store(self.bucket, session=self.session)

    def caller(self) -> str:
        """Who is approving, for the approval record (STS GetCallerIdentity needs no permission)."""
        try:
            return str(self.client("sts").get_caller_identity()["Arn"])
        except (ClientError, BotoCoreError):
            return ""


def check_region(session: Any) -> None:
    """Refuse a region botocore's bundled endpoint data does not know, before any network call.

    Region names are case-sensitive: ``US-EAST-1`` would otherwise become an unreachable host name.
    """
    region = session.region_name
    if not region:
        raise CliError("no AWS region: pass --region or set AWS_REGION")
    known = {
        r
        for partition in session.get_available_partitions()
        for r in session.get_available_regions("cloudformation", partition_name=partition)
    }
    if region not in known:
        hint = f" (did you mean {region.strip().lower()!r}?)" if region.strip().lower() in known else ""
        raise CliError(f"unknown AWS region: {region!r}{hint}")


def explain_aws_failure(error: Exception) -> str | None:
    """One line for an AWS failure the operator can act on; None for anything else (a bug)."""
    if isinstance(error, SmartVaultError) and error.operation:
        # The functions' adapters (reused by `plan`) already turned the botocore error into ours.
        if isinstance(error, ThrottledError):
            return f"AWS is throttling {error.operation} ({error.aws_code}) even after retries: try again in a minute"
        if error.aws_code is None:
            return f"cannot reach AWS: {error}"
        return f"AWS refused the call: {error}"
    if isinstance(error, ClientError):
        details = error.response.get("Error", {})
        code, message = details.get("Code", "?"), details.get("Message", "")
        operation = error.operation_name
        if code in THROTTLING_CODES:
            return f"AWS is throttling {operation} ({code}) even after retries: try again in a minute"
        return f"AWS refused {operation}: {code}: {message}".rstrip(": ")
    if isinstance(error, EndpointConnectionError | BotoConnectionError | ReadTimeoutError | ConnectionClosedError):
        # EndpointConnectionError, ConnectTimeoutError, ProxyConnectionError, SSLError and timeouts.
        return f"cannot reach AWS: {error}"
    if isinstance(error, NoCredentialsError | PartialCredentialsError):
        return "no AWS credentials found: use --profile, or set AWS_PROFILE or AWS_ACCESS_KEY_ID"
    if isinstance(error, NoRegionError):
        return "no AWS region: pass --region or set AWS_REGION"
    if isinstance(error, NotAwsAnswer):
        return str(error)
    if isinstance(error, ResponseParserError):  # e.g. an emulator's HTTP 500 in plain text
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        return f"the endpoint's answer is not an AWS response ({first.rstrip(': ')}): {_NOT_AWS_HINT}"
    if isinstance(error, BotoCoreError):
        return f"AWS call failed: {error}"
    return None


def read_json_file(path: Path, what: str) -> Any:
    """A JSON file the user named (scenario, report): any problem reading it is a CliError."""
    try:
        text = path.read_bytes().decode("utf-8-sig")  # tolerate a BOM some editors add
        return json.loads(text)
    except FileNotFoundError:
        raise CliError(f"{what} file not found: {path}") from None
    except (IsADirectoryError, PermissionError) as error:
        raise CliError(f"cannot read {what} file {path}: {error.strerror}") from None
    except UnicodeDecodeError as error:
        raise CliError(f"{what} file {path} is not UTF-8 text (byte {error.start})") from None
    except ValueError as error:  # JSONDecodeError, or an integer beyond Python's 4,300-digit limit
        raise CliError(f"{what} is not valid JSON: {error}") from None
    except RecursionError:
        raise CliError(f"{what} is nested too deeply to be a {what}") from None


def check_writable(path: Path, what: str) -> None:
    """Fail before the work, not after it: the directory is made and must be writable."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise CliError(f"cannot write the {what} to {path}: {error.strerror}") from None
    if not os.access(path.parent, os.W_OK):
        raise CliError(f"cannot write the {what} to {path}: Permission denied")


def write_json_file(path: Path, document: Any, what: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(document, indent=2) + "\n")
    except OSError as error:
        raise CliError(f"cannot write the {what} to {path}: {error.strerror}") from None


def manual_input(*, dry_run: bool, now: datetime | None = None) -> dict[str, Any]:
    """A manual run: its own run id (now), so it never collides with a scheduled slot."""
    payload: dict[str, Any] = {
        "detail-type": "Manual Run",
        "source": "smart-vault.cli",
        "time": format_time(now or datetime.now(UTC)),
    }
    if dry_run:
        payload["dry_run"] = True
    return payload
