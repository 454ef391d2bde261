"""The deployable stack (CDK).

Importing any of its modules first points jsii at the pinned Node.js, before they import aws_cdk.
"""

from smart_vault_infra.node_runtime import use_pinned_node

use_pinned_node()
