"""Scenario parts that are valid one by one but can never act together: a fault on a call the
configured product never makes, a setting no snapshot can ever reach. Each is refused naming
its field (exit 2), so a scenario cannot silently test nothing (docs/scenarios.md)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from smart_vault.errors import InvalidInputError
from smart_vault.retention.overrides import OverrideError, with_override
from smart_vault.retention.pruning import retention_policy
from smart_vault.retention.rules import archive_age_limit_days

if TYPE_CHECKING:
    from smart_vault_sim.scenario import Scenario

# Operations the product calls only with a setting: (setting, why it is needed).
NEEDS_SETTING = {
    "CopySnapshot": ("copy_regions", "copies are made only to settings.copy_regions"),
    "LockSnapshot": ("lock", "snapshots are locked only with settings.lock"),
}


class ScenarioError(InvalidInputError):
    """An invalid scenario: the CLI exits 2 with this message."""


def refuse_inert(scenario: Scenario) -> None:
    """Raise the ScenarioError of the first part that can never act."""
    settings = scenario.settings
    for i, fault in enumerate(scenario.faults):
        needed = NEEDS_SETTING.get(fault.operation)
        if needed and not getattr(settings, needed[0]):
            raise ScenarioError(
                f"faults[{i}].operation", f"{fault.operation} is never called: {needed[1]} (the fault would never fire)"
            )
    if settings.archive_after_days is not None and not _archive_reachable(scenario):
        raise ScenarioError(
            "settings.archive_after_days",
            f"{settings.archive_after_days} days is older than any monthly/yearly pick can be archived at "
            "(a pick is archived only with 90 days left before it leaves the retention policy; "
            f"retention {settings.retention} archives at most "
            f"{archive_age_limit_days(settings.retention) if settings.retention else 0} days old), "
            "and no instance's smart-vault:retention tag reaches it either: it would never archive",
        )


def _archive_reachable(scenario: Scenario) -> bool:
    """Some instance's policy (the deployment's, or its retention override tag) can archive."""
    base = retention_policy(scenario.settings)
    for spec in scenario.instances:
        try:
            policy = with_override(base, spec.tags)
        except (OverrideError, InvalidInputError):
            continue  # an invalid tag is the run's retention_error, reported there
        if (
            policy.gfs is not None
            and policy.archive_after_days is not None
            and policy.archive_after_days <= archive_age_limit_days(policy.gfs)
        ):
            return True
    return False
