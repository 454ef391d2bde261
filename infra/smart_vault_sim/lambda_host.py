"""Run the real handlers as the Lambda functions the state machine invokes, in-process.

moto's interpreter invokes Lambda through boto3's default session; a ``before-call`` handler
answers the Invoke with the handler's result, or with ``FunctionError`` and Lambda's error
payload when it raises, so ``Retry``/``Catch`` see what they would see on AWS.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import threading
import traceback
import urllib.parse
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.awsrequest import AWSResponse

from smart_vault.constants import FUNCTION_HANDLERS
from smart_vault_sim.aws_tap import AwsTap, Fault

LAMBDA_PAYLOAD_LIMIT = 6 * 1024 * 1024


@dataclass
class LambdaContext:
    function_name: str
    aws_request_id: str
    invoked_function_arn: str
    memory_limit_in_mb: int = 256

    def get_remaining_time_in_millis(self) -> int:
        return 300_000


def function_name(prefix: str, key: str) -> str:
    return f"{prefix}-{key}"


class LambdaHost:
    """Serves Invoke for the functions named ``{prefix}-{key}``."""

    def __init__(self, *, prefix: str, region: str, account: str, tap: AwsTap) -> None:
        self.prefix = prefix
        self.region = region
        self.account = account
        self.tap = tap
        # Lambda runs each invocation in its own sandbox; in one process we run them one at a
        # time so module state (Powertools metrics, cached clients) is never shared mid-call.
        self._lock = threading.Lock()
        self._handlers: dict[str, Callable[[Any, Any], Any]] = {}
        self.metrics: Counter[str] = Counter()  # name -> summed value
        # Scripted failures of the function itself (scenario faults with operation Invoke; the
        # Fault's operation is the function key): the handler runs, then Lambda reports this.
        self.failures: list[Fault] = []

    def arn(self, key: str) -> str:
        name = function_name(self.prefix, key)
        return f"arn:aws:lambda:{self.region}:{self.account}:function:{name}"

    def install(self) -> None:
        boto3._get_default_session().events.register("before-call.lambda.Invoke", self._invoke)

    def _handler(self, key: str) -> Callable[[Any, Any], Any]:
        if key not in self._handlers:
            module_name, attr = FUNCTION_HANDLERS[key].rsplit(".", 1)
            self._handlers[key] = getattr(importlib.import_module(module_name), attr)
        return self._handlers[key]

    def _invoke(self, params: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        name = urllib.parse.unquote(params["url_path"].split("/")[3]).split(":")[-1]
        key = name.removeprefix(f"{self.prefix}-")
        if key not in FUNCTION_HANDLERS:
            return self._respond(
                {
                    "errorType": "ResourceNotFoundException",
                    "errorMessage": f"Function not found: {name}",
                },
                error=True,
            )
        event = json.loads(params.get("body") or b"{}")
        with self._lock:
            context = LambdaContext(
                function_name=name,
                aws_request_id=str(uuid.uuid4()),
                invoked_function_arn=self.arn(key),
            )
            captured = io.StringIO()
            try:
                with self.tap.running(key), contextlib.redirect_stdout(captured):
                    result = self._handler(key)(event, context)
                payload, error = result, False
            except Exception as exc:  # a raised exception is a Lambda function error
                payload = {
                    "errorType": type(exc).__name__,
                    "errorMessage": str(exc),
                    "stackTrace": traceback.format_tb(exc.__traceback__)[-3:],
                }
                error = True
            self._collect_metrics(captured.getvalue())
            payload, error = self._scripted(key, event, payload, error)
        return self._respond(payload, error=error)

    def _scripted(self, key: str, event: Any, payload: Any, error: bool) -> tuple[Any, bool]:
        """A scripted Invoke fault: what Lambda answers for a function that timed out after doing
        its work ("Sandbox.Timedout", "Task timed out after N seconds"; Lambda Developer Guide,
        "Troubleshoot invocation issues"), the worst case for whoever must clean up after it."""
        for fault in self.failures:
            if fault.matches(key, event if isinstance(event, dict) else {}):
                if fault.remaining is not None:
                    fault.remaining -= 1
                self.tap.injected[f"Invoke:{key}:{fault.code}"] += 1
                message = f"RequestId: {uuid.uuid4()} Error: Task timed out after 60.00 seconds"
                return {"errorType": fault.code, "errorMessage": message}, True
        return payload, error

    def _collect_metrics(self, output: str) -> None:
        """Sum the EMF metrics the handler printed (Powertools flushes them to stdout)."""
        for line in output.splitlines():
            if '"_aws"' not in line:
                continue
            try:
                record = json.loads(line)
            except ValueError:
                continue
            for directive in record["_aws"].get("CloudWatchMetrics", []):
                for metric in directive.get("Metrics", []):
                    value = record.get(metric["Name"])
                    values = value if isinstance(value, list) else [value]
                    self.metrics[metric["Name"]] += sum(  # type: ignore[assignment]
                        v for v in values if isinstance(v, int | float)
                    )

    def _respond(self, payload: Any, *, error: bool) -> tuple[AWSResponse, dict[str, Any]]:
        body = json.dumps(payload, default=str).encode()
        if len(body) > LAMBDA_PAYLOAD_LIMIT:
            payload = {
                "errorType": "Lambda.ResponseSizeTooLarge",
                "errorMessage": f"Response payload size ({len(body)} bytes) exceeded maximum",
            }
            body, error = json.dumps(payload).encode(), True
        parsed: dict[str, Any] = {"StatusCode": 200, "Payload": io.BytesIO(body)}
        if error:
            parsed["FunctionError"] = "Unhandled"
        return AWSResponse(f"https://lambda.{self.region}.amazonaws.com", 200, {}, None), parsed
