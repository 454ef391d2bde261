"""Application-consistent backups: freeze an opted-in instance through SSM Run Command before
CreateSnapshots and thaw it after, always (docs/consistency.md)."""
