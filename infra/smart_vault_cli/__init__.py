"""The `smart-vault` command: simulator and operations CLI (not part of the Lambda asset)."""
