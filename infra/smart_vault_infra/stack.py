"""SmartVaultStack: schedule -> state machine -> six functions, with alarms, encryption and least
privilege, composed of one construct per concern. Environment-agnostic: nothing is looked up at
synth time."""

from __future__ import annotations

from aws_cdk import Annotations, CfnElement, CfnOutput, Stack
from constructs import Construct

from smart_vault.constants import (
    OUTPUT_BUCKET_NAME,
    OUTPUT_DASHBOARD_URL,
    OUTPUT_DEAD_LETTER_QUEUE_URL,
    OUTPUT_DRILL_STATE_MACHINE_ARN,
    OUTPUT_STATE_MACHINE_ARN,
    OUTPUT_TOPIC_ARN,
)
from smart_vault_infra.config import DeploymentConfig, vault_warnings
from smart_vault_infra.drill import Drill
from smart_vault_infra.functions import Functions
from smart_vault_infra.logical_ids import logical_id
from smart_vault_infra.monitoring import Monitoring
from smart_vault_infra.recycle_bin import recycle_bin_rule
from smart_vault_infra.storage import Storage
from smart_vault_infra.workflow import Workflow

# The concern constructs: left out of logical ids (see _allocate_logical_id).
CONCERNS = ("Storage", "Functions", "Workflow", "Drill", "Monitoring")


class SmartVaultStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, config: DeploymentConfig, **kwargs: object) -> None:
        super().__init__(scope, construct_id, **kwargs)  # type: ignore[arg-type]
        self._ids: dict[str, str] = {}
        self.config = config
        self.storage = Storage(self, "Storage", config=config)
        self.functions = Functions(self, "Functions", config=config, storage=self.storage)
        functions = self.functions.functions
        self.workflow = Workflow(
            self,
            "Workflow",
            config=config,
            storage=self.storage,
            functions=dict(functions),  # BACKUP_FUNCTIONS, and the drill's for the preflight
        )
        self.drill = Drill(
            self,
            "Drill",
            config=config,
            storage=self.storage,
            functions=functions,
            dead_letters=self.workflow.dead_letters,
        )
        self.monitoring = Monitoring(
            self,
            "Monitoring",
            config=config,
            topic=self.storage.topic,
            functions=self.functions.functions,
            state_machine=self.workflow.state_machine,
            drill_state_machine=self.drill.state_machine,
            dead_letters=self.workflow.dead_letters,
        )
        self.recycle_bin = recycle_bin_rule(self, config=config)
        for warning in config.warnings:
            Annotations.of(self).add_warning_v2("smart-vault:lock-outlives-retention", warning)
        for warning in vault_warnings(config.settings):
            Annotations.of(self).add_warning_v2("smart-vault:vault-key", warning)
        self._outputs()

    def _outputs(self) -> None:
        CfnOutput(
            self,
            OUTPUT_STATE_MACHINE_ARN,
            value=self.workflow.state_machine.state_machine_arn,
            description="Smart Vault backup workflow",
        )
        CfnOutput(
            self,
            OUTPUT_DRILL_STATE_MACHINE_ARN,
            value=self.drill.state_machine.state_machine_arn,
            description="Smart Vault restore drill",
        )
        CfnOutput(self, OUTPUT_TOPIC_ARN, value=self.storage.topic.topic_arn, description="Alerts topic")
        CfnOutput(
            self,
            OUTPUT_BUCKET_NAME,
            value=self.storage.bucket.bucket_name,
            description="Inventory and audit records",
        )
        CfnOutput(
            self,
            OUTPUT_DASHBOARD_URL,
            value=f"https://{self.region}.console.aws.amazon.com/cloudwatch/home?region={self.region}"
            f"#dashboards:name={self.monitoring.dashboard.dashboard_name}",
        )
        CfnOutput(
            self,
            OUTPUT_DEAD_LETTER_QUEUE_URL,
            value=self.workflow.dead_letters.queue_url,
            description="Schedule and status-change events that could not be delivered",
        )

    def _allocate_logical_id(self, cfn_element: CfnElement) -> str:
        """Logical ids as if every resource were the stack's own child: moving resources into the
        concern constructs replaced nothing, and tests/infra/test_logical_ids.py keeps it so."""
        scopes = cfn_element.node.scopes
        below = [s.node.id for s in scopes[[s.node.path for s in scopes].index(self.node.path) + 1 :]]
        if len(below) > 1 and below[0] in CONCERNS:
            below = below[1:]
        allocated = logical_id(below)
        path = cfn_element.node.path
        if self._ids.setdefault(allocated, path) != path:
            raise ValueError(f"{path} and {self._ids[allocated]} would share the logical id {allocated}")
        return allocated
