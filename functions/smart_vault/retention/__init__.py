"""Retention: the rule (plain and GFS), per-volume overrides, snapshot locks, approvals, deferred
deletions, the deletion journal, pruning, and pruning of orphaned volumes' snapshots."""
