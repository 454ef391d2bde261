"""The emulated account of a scenario, served on a local endpoint (`smart-vault sandbox`).

moto's server (``moto.moto_server``, the ``moto[server]`` extra) answers HTTP from the same
in-memory backends the simulation filled, when it runs in the same process: every operator verb,
and the AWS CLI, can then be pointed at it with ``AWS_ENDPOINT_URL``. What the simulator adds to
moto in front of botocore (snapshot locks, DryRun answers, request limits, scripted faults,
eventual consistency: ``before-call`` handlers in this process) would be skipped by a plain moto
server, so the requests of the services it answers are replayed through an in-process client of
the operator's session (parsed and serialized with moto's own protocol code); the rest go to moto.
"""

from __future__ import annotations

import io
import json
import re
import socket
import threading
import zipfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from http import HTTPStatus
from typing import Any
from xml.sax.saxutils import escape

import boto3
from botocore import xform_name
from botocore.exceptions import ClientError
from moto.core.parse import PROTOCOL_PARSERS
from moto.core.serialize import get_serializer_class
from moto.core.utils import get_service_model
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server
from werkzeug.wrappers import Request

from smart_vault.constants import (
    FUNCTION_HANDLERS,
    OUTPUT_BUCKET_NAME,
    OUTPUT_DRILL_STATE_MACHINE_ARN,
    OUTPUT_STATE_MACHINE_ARN,
    OUTPUT_TOPIC_ARN,
)
from smart_vault_sim.simulator import BUCKET, DEPLOYMENT_ID, FUNCTION_PREFIX, Simulation

DEFAULT_STACK = "SmartVault"
# Services whose answers the simulator completes in front of moto (snapshot_locks, dry_run,
# limits, snapshot_lag, preflight's Recycle Bin and Service Quotas): served in-process.
IN_PROCESS = frozenset({"ec2", "rbin", "service-quotas"})
_PROTOCOLS = ("ec2", "query", "json")  # those whose operation the request names (Action, X-Amz-Target)
# The credential scope of a Signature Version 4 Authorization header: key/date/region/service.
_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/([^/]+)/([^/]+)/aws4_request")


def deploy_stack(sim: Simulation, stack: str = DEFAULT_STACK) -> None:
    """What the CLI reads of a deployed stack: its CloudFormation outputs (smart_vault_cli.deployment)
    and the functions' settings (their environment: `plan` reads Discover's)."""
    account = sim.account
    template = {
        "Resources": {"Marker": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {
            OUTPUT_STATE_MACHINE_ARN: {"Value": account.state_machine_arn},
            OUTPUT_TOPIC_ARN: {"Value": account.topic_arn},
            OUTPUT_BUCKET_NAME: {"Value": BUCKET},
            OUTPUT_DRILL_STATE_MACHINE_ARN: {"Value": account.drill_state_machine_arn},
        },
    }
    boto3.client("cloudformation").create_stack(StackName=stack, TemplateBody=json.dumps(template))
    role = boto3.client("iam").create_role(RoleName=f"{stack}-functions", AssumeRolePolicyDocument="{}")["Role"]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("placeholder.py", "")  # the simulator runs the real handlers (lambda_host)
    env = {**sim.scenario.settings.to_env(), "DEPLOYMENT_ID": DEPLOYMENT_ID, "BUCKET_NAME": BUCKET}
    for key, handler in FUNCTION_HANDLERS.items():
        boto3.client("lambda").create_function(
            FunctionName=f"{FUNCTION_PREFIX}-{key}",
            Runtime="python3.12",
            Role=role["Arn"],
            Handler=handler,
            Code={"ZipFile": code.getvalue()},
            Environment={"Variables": env},
        )


class Front:
    """WSGI: the requests of the IN_PROCESS services through ``session``'s clients, the rest to moto."""

    def __init__(self, moto_app: Any, session: Any) -> None:
        self.moto_app = moto_app
        self.session = session
        self._clients: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        request = Request(environ)
        scope = _SCOPE.search(request.headers.get("Authorization", ""))
        if scope is None or scope.group(2) not in IN_PROCESS:
            return self.moto_app(environ, start_response)  # type: ignore[no-any-return]
        region, service = scope.groups()
        client = self._client(service, region)
        model = get_service_model(client.meta.service_model.service_name)  # moto's shapes, for its parser
        name = _operation(request, model.protocol)
        if name is None or name not in model.operation_names:
            return self.moto_app(environ, start_response)  # type: ignore[no-any-return]
        operation = model.operation_model(name)
        body = request.get_data(cache=True)
        params = PROTOCOL_PARSERS[model.protocol](operation).parse(
            {
                "body": body,
                "headers": request.headers,
                "method": request.method,
                "url_path": request.path,
                "url_params": {},
                "values": request.values,
            }
        )
        try:
            result: dict[str, Any] = getattr(client, xform_name(name))(**params)
        except ClientError as error:
            status, headers, data = _error_response(model.protocol, error)
        else:
            result.pop("ResponseMetadata", None)
            response = get_serializer_class(service, model.protocol)(operation).serialize(result)
            status, headers, payload = response["status_code"], dict(response["headers"]), response["body"]
            data = payload.encode() if isinstance(payload, str) else bytes(payload)
        headers["Content-Length"] = str(len(data))
        start_response(f"{status} {HTTPStatus(status).phrase}", list(headers.items()))
        return [data]

    def _client(self, service: str, region: str) -> Any:
        with self._lock:
            key = (service, region)
            if key not in self._clients:
                self._clients[key] = self.session.client(service, region_name=region)
            return self._clients[key]


def _error_response(protocol: str, error: ClientError) -> tuple[int, dict[str, str], bytes]:
    """The error as the service's protocol sends it, for botocore's parsers (moto's serializer
    looks up the error's service from the exception's module: a ClientError has none)."""
    details = error.response.get("Error", {})
    code, message = details.get("Code") or "InternalError", details.get("Message") or ""  # either may be None
    metadata = error.response.get("ResponseMetadata", {})
    status = int(metadata.get("HTTPStatusCode") or 400)
    if protocol == "json":
        body = json.dumps({"__type": code, "message": message}).encode()
        return status, {"Content-Type": "application/x-amz-json-1.1"}, body
    code, message, request_id = escape(code), escape(message), escape(metadata.get("RequestId") or "sandbox")
    if protocol == "ec2":  # EC2 API Reference, "Error codes for the Amazon EC2 API": the error response
        xml = f"<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message></Error></Errors>"
        xml += f"<RequestID>{request_id}</RequestID></Response>"
    else:
        xml = f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error>"
        xml += f"<RequestId>{request_id}</RequestId></ErrorResponse>"
    return status, {"Content-Type": "text/xml"}, f'<?xml version="1.0" encoding="UTF-8"?>\n{xml}'.encode()


def _operation(request: Request, protocol: str) -> str | None:
    if protocol not in _PROTOCOLS:
        return None
    if protocol == "json":
        return request.headers.get("X-Amz-Target", "").rpartition(".")[2] or None
    request.get_data(cache=True)  # keep the body for the parser, read the form from the cache
    return request.values.get("Action")


def listen(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    """The sandbox's socket, bound before the scenario runs: a port in use fails at once (port 0:
    any free one)."""
    return socket.create_server((host, port))


@contextmanager
def served(sim: Simulation, listener: socket.socket) -> Iterator[str]:
    """Inside ``sim.emulated()``: the account answering on ``listener``, and its URL."""
    host, port = listener.getsockname()[:2]
    app = Front(DomainDispatcherApplication(create_backend_app), sim.operator_session())
    server = make_server(host, port, app, threaded=True, request_handler=MotoRequestHandler, fd=listener.fileno())
    thread = threading.Thread(target=server.serve_forever, name="smart-vault-sandbox", daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{server.port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
