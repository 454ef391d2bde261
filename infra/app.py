#!/usr/bin/env python3
"""CDK app: `make synth` (or `npx cdk synth`) writes cdk.out/ offline, with no credentials."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

sys.path[:0] = [
    str(Path(__file__).resolve().parent),
    str(Path(__file__).resolve().parents[1] / "functions"),
]

# smart_vault_infra first: it points jsii at the pinned Node.js before aws_cdk starts it.
import smart_vault_infra  # noqa: E402, F401, I001

import aws_cdk as cdk  # noqa: E402
from cdk_nag import AwsSolutionsChecks  # noqa: E402
from cdklabs.cdk_validator_cfnguard import CfnGuardValidator  # noqa: E402

from smart_vault.errors import InvalidInputError  # noqa: E402
from smart_vault.settings import Settings  # noqa: E402
from smart_vault_infra.config import STACK_KEYS, DeploymentConfig  # noqa: E402
from smart_vault_infra.stack import SmartVaultStack  # noqa: E402

SETTING_KEYS = (*Settings.__dataclass_fields__, *STACK_KEYS)
CDK_JSON = Path(__file__).resolve().parents[1] / "cdk.json"


def deploy_context(argv: list[str], environ: dict[str, str]) -> dict[str, object] | None:
    """The context a deploy would use: under the CDK CLI (which sets CDK_CONTEXT_JSON) the CLI's
    own; run directly (`make synth CONTEXT="-c retention_days=14"`), cdk.json's context with each
    ``-c name=value`` over it, as text, the way the CDK CLI passes them."""
    if "CDK_CONTEXT_JSON" in environ:
        return None
    context: dict[str, object] = dict(json.loads(CDK_JSON.read_text())["context"])
    args = iter(argv)
    for arg in args:
        if arg not in ("-c", "--context"):
            raise InvalidInputError("argument", f"expected -c name=value, got {arg!r}")
        name, sep, value = next(args, "").partition("=")
        if not sep or not name:
            raise InvalidInputError("argument", f"-c needs name=value, got {name!r}")
        context[name] = value
    return context


def build_app(context: dict[str, object] | None = None, outdir: str | None = None, *, validate: bool = True) -> cdk.App:
    """The Smart Vault CDK app; ``validate=False`` skips the policy-validation gates (the simulator
    only reads the template, which the gates do not change)."""
    app = cdk.App(context=context or {}, outdir=outdir)
    # Every name given is checked (a misspelt key is an error), CDK's own (@aws-cdk/..., aws:cdk:...) aside.
    given = {k: v for k, v in (context or {}).items() if not k.startswith("@") and ":" not in k}
    values = {k: app.node.try_get_context(k) for k in SETTING_KEYS}
    config = DeploymentConfig.from_context(given | {k: v for k, v in values.items() if v is not None})
    SmartVaultStack(
        app,
        config.stack_name,
        config=config,
        description="Smart Vault: tag-driven EBS snapshot backups",
    )
    # Both gates fail synth on any finding not acknowledged (with its reason) in the stack:
    # cdk-nag's AwsSolutions pack and cfn-guard with the bundled Control Tower proactive controls.
    if validate:
        # CfnGuardValidator is typed against the Beta1 plugin interface, which jsii accepts at runtime.
        cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app), CfnGuardValidator())  # type: ignore[arg-type]
    return app


def main(argv: list[str]) -> int:
    try:
        context = deploy_context(argv, dict(os.environ))
        app = build_app(context, outdir=os.environ.get("CDK_OUTDIR", "cdk.out"))
    except InvalidInputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    assembly = app.synth()
    for message in (m for stack in assembly.stacks for m in stack.messages if m.level.value.lower() == "warning"):
        print(f"warning: {message.entry.data}", file=sys.stderr)
    errors = [m for stack in assembly.stacks for m in stack.messages if m.level.value.lower() == "error"]
    for message in errors:
        print(f"{message.id}: {message.entry.data}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
