"""Backup: which instances and volumes a run covers (discovery, inventory), their KMS keys, and
the snapshots a run takes."""
