"""Per-instance retention overrides: the ``smart-vault:retention`` (GFS counts) or
``smart-vault:retention-days`` tag replaces the deployment's rule for that instance's volumes.

An invalid value is never guessed at: the instance's pruning is skipped and the alert names the
tag and its value (``OverrideError``). The deployment's floors and breaker stay as they are.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from smart_vault.constants import TAG_RETENTION, TAG_RETENTION_DAYS
from smart_vault.policy import Gfs
from smart_vault.retention.rules import RetentionPolicy

MAX_RETENTION_DAYS = 36500


@dataclass(frozen=True)
class OverrideError(Exception):
    tag: str
    value: str
    problem: str

    def __str__(self) -> str:
        return f"tag {self.tag}={self.value!r} is invalid ({self.problem}): pruning skipped, nothing deleted"


def with_override(policy: RetentionPolicy, tags: Mapping[str, str]) -> RetentionPolicy:
    """The policy for one instance: ``policy`` unless its tags override it (OverrideError if invalid)."""
    gfs_value, days_value = tags.get(TAG_RETENTION), tags.get(TAG_RETENTION_DAYS)
    if gfs_value is not None and days_value is not None:
        raise OverrideError(TAG_RETENTION, gfs_value, f"{TAG_RETENTION_DAYS} is set too: keep one of the two tags")
    if gfs_value is not None:
        try:
            gfs = Gfs.parse(gfs_value)
        except ValueError as error:
            raise OverrideError(TAG_RETENTION, gfs_value, str(error)) from None
        # The archive tier stays a deployment decision; it applies to monthly/yearly picks only.
        return replace(policy, gfs=gfs)
    if days_value is not None:
        text = days_value.strip()
        if not text.isdigit() or not 1 <= int(text) <= MAX_RETENTION_DAYS:
            raise OverrideError(
                TAG_RETENTION_DAYS, days_value, f"must be a whole number of days from 1 to {MAX_RETENTION_DAYS}"
            )
        return replace(policy, retention_days=int(text), gfs=None, archive_after_days=None)
    return policy
