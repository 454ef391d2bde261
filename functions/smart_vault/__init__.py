"""Smart Vault: tag-driven EBS snapshot backups for EC2 (Lambda code)."""
