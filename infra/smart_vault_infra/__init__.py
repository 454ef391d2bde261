"""The deployable stack (CDK)."""
