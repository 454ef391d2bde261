"""What an instance's tags ask for: which documents freeze and thaw it, and whether a failed
freeze may fall back to a crash-consistent snapshot. Pure: validated by the Freeze step, so an
invalid tag fails that instance visibly instead of silently yielding a crash-consistent backup."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from smart_vault.constants import TAG_CONSISTENCY, TAG_CONSISTENCY_FALLBACK, TAG_POST_SCRIPT, TAG_PRE_SCRIPT
from smart_vault.settings import Settings

FALLBACK_VALUES = {"crash": True, "fail": False}


class ConsistencyTagError(ValueError):
    """An instance's consistency tag asks for something this deployment cannot do."""


@dataclass(frozen=True, kw_only=True)
class ConsistencyPlan:
    pre_document: str
    post_document: str
    fallback: bool


def plan_for(tags: Mapping[str, str], settings: Settings) -> ConsistencyPlan:
    """The plan of an instance tagged smart-vault:consistency=application."""
    mode = tags.get(TAG_CONSISTENCY, "").strip().lower()
    if mode != "application":
        raise ConsistencyTagError(f"{TAG_CONSISTENCY}={tags.get(TAG_CONSISTENCY)!r}: must be application or crash")
    allowed = settings.consistency_document_names()
    documents = []
    for tag, default in (
        (TAG_PRE_SCRIPT, settings.consistency_pre_document),
        (TAG_POST_SCRIPT, settings.consistency_post_document),
    ):
        name = tags.get(tag, default).strip()
        if name not in allowed:
            # IAM allows SendCommand on the deployment's documents only (least privilege).
            raise ConsistencyTagError(
                f"{tag}={name!r} is not one of this deployment's documents ({', '.join(allowed)}): "
                "add it to the consistency_documents setting"
            )
        documents.append(name)
    raw = tags.get(TAG_CONSISTENCY_FALLBACK)
    if raw is not None and raw.strip().lower() not in FALLBACK_VALUES:
        raise ConsistencyTagError(f"{TAG_CONSISTENCY_FALLBACK}={raw!r}: must be crash or fail")
    fallback = settings.consistency_fallback if raw is None else FALLBACK_VALUES[raw.strip().lower()]
    return ConsistencyPlan(pre_document=documents[0], post_document=documents[1], fallback=fallback)
