"""SSM Run Command on the fleet's virtual clock: moto's SSM accepts every command and reports
it a success at once, so the emulator answers SendCommand, GetCommandInvocation and
DescribeInstanceInformation itself, from each instance's ``ssm`` in the scenario
(docs/scenarios.md): whether SSM manages it, and how its pre and post scripts end.

Modelled after the SSM API Reference: SendCommand answers ``InvalidInstanceId`` for an
instance SSM does not manage ("the instance isn't running, SSM Agent isn't installed or running,
or the instance doesn't have an instance profile"); GetCommandInvocation reports ``InProgress``
until the script ends, then ``Success`` or ``Failed`` with the script's ResponseCode and error
output, and ``InvocationDoesNotExist`` for a command it does not know; times are strings
(ExecutionStartDateTime, ExecutionEndDateTime).
"""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from botocore.awsrequest import AWSResponse

from smart_vault_sim.aws_tap import aws_error

OUTCOMES = ("success", "failed", "timeout")
# A script that "times out" in the scenario runs until its document's executionTimeout, which
# for the example documents is an hour; the workflow gives up long before that.
TIMEOUT_SECONDS = 3600


@dataclass(frozen=True, kw_only=True)
class SsmDef:
    managed: bool = True
    pre: str = "success"
    post: str = "success"
    seconds: int = 1  # how long each script runs


@dataclass(kw_only=True)
class Command:
    command_id: str
    instance_id: str
    instance: str  # the scenario's name
    document: str
    kind: str  # pre or post
    outcome: str
    sent: float  # virtual seconds of the run
    seconds: int

    @property
    def ends(self) -> float:
        return self.sent + (TIMEOUT_SECONDS if self.outcome == "timeout" else self.seconds)

    def status(self, now: float) -> str:
        if now < self.ends:
            return "InProgress"
        return {"success": "Success", "failed": "Failed", "timeout": "TimedOut"}[self.outcome]


class RunCommand:
    """Installed on boto3's default session, after the AwsTap (which counts, authorizes and faults)."""

    def __init__(
        self,
        *,
        now: Callable[[], float],
        clock: Callable[[], datetime],
        instance: Callable[[str], tuple[str, SsmDef, str] | None],
        region: str,
    ) -> None:
        self.now = now  # virtual seconds of the run
        self.clock = clock  # the run's scheduled start
        # instance id -> (scenario name, its ssm, its pre document), None: not in the scenario
        self.instance = instance
        self.region = region
        self.commands: dict[str, Command] = {}
        self.log: list[Command] = []

    def new_run(self) -> None:
        self.log = []

    def install(self, events: Any) -> None:
        events.register("before-call.ssm.SendCommand", self._send)
        events.register("before-call.ssm.GetCommandInvocation", self._invocation)
        events.register("before-call.ssm.DescribeInstanceInformation", self._describe)

    def _respond(self, parsed: dict[str, Any]) -> tuple[AWSResponse, dict[str, Any]]:
        parsed["ResponseMetadata"] = {"HTTPStatusCode": 200, "RequestId": str(uuid.uuid4())}
        return AWSResponse(f"https://ssm.{self.region}.amazonaws.com", 200, {}, io.BytesIO(b"")), parsed

    def _params(self, params: dict[str, Any]) -> dict[str, Any]:
        body = params.get("body") or b"{}"
        return dict(json.loads(body))

    def _time(self, seconds: float) -> str:
        return (self.clock() + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"

    def _send(self, params: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        request = self._params(params)
        document = str(request.get("DocumentName"))
        ids = list(request.get("InstanceIds") or ())
        known = [(i, self.instance(i)) for i in ids]
        if any(found is None or not found[1].managed for _, found in known):
            raise aws_error(
                "InvalidInstanceId",
                "SendCommand",
                "Instances not in a valid state for account. The instance is not running, or SSM Agent is not "
                "installed or not running, or the instance has no instance profile with SSM permissions.",
            )
        command_id = str(uuid.uuid4())
        now = self.now()
        for instance_id, found in known:
            assert found is not None
            name, ssm, pre_document = found
            kind = "pre" if document == pre_document else "post"
            command = Command(
                command_id=command_id,
                instance_id=instance_id,
                instance=name,
                document=document,
                kind=kind,
                outcome=ssm.pre if kind == "pre" else ssm.post,
                sent=now,
                seconds=ssm.seconds,
            )
            self.commands[f"{command_id}:{instance_id}"] = command
            self.log.append(command)
        return self._respond(
            {"Command": {"CommandId": command_id, "DocumentName": document, "InstanceIds": ids, "Status": "Pending"}}
        )

    def _invocation(self, params: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        request = self._params(params)
        command = self.commands.get(f"{request.get('CommandId')}:{request.get('InstanceId')}")
        if command is None:
            raise aws_error(
                "InvocationDoesNotExist", "GetCommandInvocation", "An error occurred (InvocationDoesNotExist)"
            )
        now = self.now()
        status = command.status(now)
        ended = status != "InProgress"
        parsed: dict[str, Any] = {
            "CommandId": command.command_id,
            "InstanceId": command.instance_id,
            "DocumentName": command.document,
            "Status": status,
            "StatusDetails": "Execution Timed Out" if status == "TimedOut" else status,
            "ResponseCode": {"Success": 0, "Failed": 1}.get(status, -1),
            "ExecutionStartDateTime": self._time(command.sent),
            "ExecutionEndDateTime": self._time(command.ends) if ended else "",
            "StandardOutputContent": "",
            "StandardErrorContent": f"{command.document}: scripted failure (scenario ssm.{command.kind})"
            if status == "Failed"
            else "",
        }
        return self._respond(parsed)

    def _describe(self, params: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        request = self._params(params)
        wanted: list[str] = []
        for f in request.get("Filters") or ():
            if f.get("Key") == "InstanceIds":
                wanted += list(f.get("Values") or ())
        rows = []
        for instance_id in wanted:
            found = self.instance(instance_id)
            if found is not None and found[1].managed:
                rows.append({"InstanceId": instance_id, "PingStatus": "Online", "ResourceType": "EC2Instance"})
        return self._respond({"InstanceInformationList": rows})

    def report(self) -> list[dict[str, Any]]:
        """The run's commands in the order sent: what `runs[].ssm_commands` lists."""
        now = self.now()
        return [
            {
                "instance": c.instance,
                "document": c.document,
                "kind": c.kind,
                "sent_seconds": round(c.sent, 3),
                "ended_seconds": round(c.ends, 3) if c.status(now) != "InProgress" else None,
                "status": c.status(now),
            }
            for c in self.log
        ]
