"""The one typed settings model, read from the environment the CDK app sets.

Scenario settings in the simulator use the same lower-case names; the environment uses the
upper-case form (``retention_days`` -> ``RETENTION_DAYS``).
"""

from __future__ import annotations

import functools
import json
import os
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from smart_vault.errors import InvalidInputError
from smart_vault.policy import GFS_TIERS, Gfs, LockSettings
from smart_vault.validation import (
    read_bool,
    read_fraction,
    read_int,
    read_list,
    read_str,
    read_str_list,
    refuse_text,
    require_mapping,
)

# A region name of any AWS partition (us-east-1, eu-central-2, us-gov-west-1, ap-southeast-5).
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d{1,2}$")
# What KMS accepts as a key identifier: key id, alias name, key ARN or alias ARN (KMS API
# Reference, DescribeKey "KeyId"); multi-Region key ids start with mrk-.
_KMS_KEY = re.compile(
    r"^(alias/[A-Za-z0-9/_-]{1,250}|(mrk-)?[0-9a-f-]{32,36}|arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:(key/\S+|alias/\S+))$"
)
_COPY_KEYS = ("region", "kms_key", "retention_days", "keep_min")
# EC2 allows 20 concurrent snapshot copies per destination Region, not adjustable (Amazon EBS
# User Guide, "Copy an Amazon EBS snapshot", and Service Quotas "Concurrent snapshot copies per
# destination Region").
MAX_COPIES_IN_FLIGHT = 20


def _known_fields_and_region(data: Mapping[str, Any], known: tuple[str, ...], path: str) -> str:
    """Refuse a field not in ``known``; the object's ``region``, checked to be a Region name."""
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise InvalidInputError(f"{path}{unknown[0]}", f"is not a known field (expected one of: {', '.join(known)})")
    region = str(read_str(data, "region", path=path))
    if not _REGION.match(region):
        raise InvalidInputError(f"{path}region", f"is not an AWS Region name, got {region!r}")
    return region


@dataclass(frozen=True, kw_only=True)
class CopyRegion:
    """One off-site destination: every completed snapshot is copied there, encrypted with
    ``kms_key`` (a key of that Region), and the copies are pruned by their own retention."""

    region: str
    kms_key: str
    retention_days: int
    keep_min: int

    @classmethod
    def from_mapping(cls, data: Any, path: str) -> CopyRegion:
        data = require_mapping(data, path.rstrip("."))
        region = _known_fields_and_region(data, _COPY_KEYS, path)
        key = read_str(data, "kms_key", path=path)
        if not _KMS_KEY.match(key):
            raise InvalidInputError(
                f"{path}kms_key", f"must be a KMS key id, alias/..., key ARN or alias ARN, got {key!r}"
            )
        if key.startswith("arn:") and key.split(":")[3] != region:
            # KMS keys are regional: a copy can only be encrypted with a key of its own Region.
            raise InvalidInputError(f"{path}kms_key", f"is a key of {key.split(':')[3]}, not of {region}")
        return cls(
            region=region,
            kms_key=key,
            retention_days=read_int(data, "retention_days", path=path, minimum=1, maximum=36500),
            keep_min=read_int(data, "keep_min", path=path, minimum=1, maximum=1000),
        )


def read_copy_regions(data: Mapping[str, Any], key: str, *, path: str) -> tuple[CopyRegion, ...]:
    raw = data.get(key)
    if raw is None or raw == "":
        return ()
    refuse_text(raw, f"{path}{key}", "a JSON list")
    if isinstance(raw, str):  # the environment carries the list as JSON
        try:
            raw = json.loads(raw)
        except ValueError:
            raise InvalidInputError(f"{path}{key}", "must be a JSON list of destinations") from None
    items = read_list({key: raw}, key, path=path)
    regions = tuple(CopyRegion.from_mapping(item, f"{path}{key}[{i}].") for i, item in enumerate(items))
    seen: set[str] = set()
    for i, dest in enumerate(regions):
        if dest.region in seen:
            raise InvalidInputError(f"{path}{key}[{i}].region", f"lists {dest.region} twice")
        seen.add(dest.region)
    return regions


_VAULT_KEYS = ("account", "region", "kms_key", "retention_days", "retention", "keep_min", "lock")
_ACCOUNT = re.compile(r"^\d{12}$")


@dataclass(frozen=True, kw_only=True)
class VaultSettings:
    """The isolated vault account: the source shares every completed backup with ``account``,
    whose own stack copies it in ``region`` with ``kms_key`` (a key the vault account owns),
    prunes the copies by its own retention (``retention_days`` or GFS ``retention``) keeping at
    least ``keep_min`` per volume, and locks them when ``lock`` is set."""

    account: str
    region: str
    kms_key: str
    retention_days: int = 30
    retention: Gfs | None = None
    keep_min: int = 2
    lock: LockSettings | None = None

    @classmethod
    def from_value(cls, value: Any, *, path: str) -> VaultSettings | None:
        if value is None or value == "":
            return None
        refuse_text(value, path.rstrip("."), "an object")
        if isinstance(value, str):  # the environment and CDK context carry it as JSON
            try:
                value = json.loads(value)
            except ValueError as error:
                raise InvalidInputError(path.rstrip("."), f"must be an object or its JSON text: {error}") from None
        data = require_mapping(value, path.rstrip("."))
        region = _known_fields_and_region(data, _VAULT_KEYS, path)
        account = read_str(data, "account", path=path)
        if not _ACCOUNT.match(account):
            raise InvalidInputError(f"{path}account", f"must be a 12-digit AWS account id, got {account!r}")
        key = read_str(data, "kms_key", path=path)
        if not key.startswith("arn:") or not _KMS_KEY.match(key) or key.split(":")[3:5] != [region, account]:
            # The source names the vault's key only to document it; the vault's own stack uses
            # it. A key ARN says whose key it is: one of the vault account, in the vault Region.
            raise InvalidInputError(
                f"{path}kms_key", f"must be the ARN of a key of account {account} in {region}, got {key!r}"
            )
        return cls(
            account=account,
            region=region,
            kms_key=key,
            retention_days=_vault_retention_days(data, path),
            retention=_vault_gfs(data, path),
            keep_min=read_int(data, "keep_min", path=path, default=2, minimum=1, maximum=1000),
            lock=LockSettings.read(data.get("lock"), path=path),
        )

    def to_text(self) -> str:
        data = {k: v for k, v in asdict(self).items() if v is not None}
        data["retention"] = str(self.retention) if self.retention else None
        data["lock"] = json.loads(self.lock.to_text()) if self.lock else None
        if self.retention is not None:
            del data["retention_days"]
        return json.dumps({k: v for k, v in data.items() if v is not None}, separators=(",", ":"))


def _vault_retention_days(data: Mapping[str, Any], path: str) -> int:
    if data.get("retention") is not None and data.get("retention_days") is not None:
        raise InvalidInputError(f"{path}retention", "cannot be combined with retention_days: choose one retention rule")
    return int(read_int(data, "retention_days", path=path, default=30, minimum=1, maximum=36500))


def _vault_gfs(data: Mapping[str, Any], path: str) -> Gfs | None:
    if data.get("retention") is None:
        return None
    try:
        return Gfs.parse(data["retention"])
    except ValueError as error:
        raise InvalidInputError(f"{path}retention", str(error)) from None


def read_fleet_keys(data: Mapping[str, Any], key: str, *, path: str) -> tuple[str, ...]:
    """The fleet's keys: IAM authorizes KMS on the key ARN, so each is a key ARN, or an alias
    (name or ARN) that the grants match by kms:ResourceAliases. A bare key id is refused: its
    Region and account are not in it, and EC2 reports volumes' keys as ARNs."""
    keys = read_str_list(data, key, path=path, default=())
    for i, value in enumerate(keys):
        if not _KMS_KEY.match(value) or not (value.startswith("alias/") or value.startswith("arn:")):
            raise InvalidInputError(
                f"{path}{key}[{i}]", f"must be a KMS key ARN, alias/... or alias ARN, got {value!r}"
            )
    if len(set(keys)) != len(keys):
        raise InvalidInputError(f"{path}{key}", "lists a key twice")
    return keys


@dataclass(frozen=True, kw_only=True)
class DrillSettings:
    """The restore drill: how many instances each drill restores, and where (the scratch AZ;
    None: the region's first available zone). A restore that is not available within
    ``timeout_seconds`` fails the drill."""

    instances_per_drill: int = 1
    availability_zone: str | None = None
    timeout_seconds: int = 3600
    # A restore must be fully initialized within this many minutes (None: no objective).
    restore_objective_minutes: int | None = None
    # CreateVolume VolumeInitializationRate for the drill's volumes, MiB/s (100-300; None: the
    # default rate, for which EBS gives no time estimate).
    volume_initialization_rate: int | None = None
    # Which Region each drill restores in: "source" (the stack's), or "in_turn" (the source and
    # each copy_regions destination in turn, from that Region's own copies).
    regions: str = "source"

    @classmethod
    def from_value(cls, value: Any, *, path: str) -> DrillSettings:
        """From a mapping (scenario, CDK context) or its JSON text (the DRILL environment variable)."""
        refuse_text(value, path, "an object")
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                raise InvalidInputError(path, "must be a JSON object") from None
        if not isinstance(value, Mapping):
            raise InvalidInputError(path, f"must be an object, got {type(value).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(value) - known)
        if unknown:
            raise InvalidInputError(
                f"{path}.{unknown[0]}", f"is not a known drill setting ({', '.join(sorted(known))})"
            )
        d = cls()
        zone = read_str(value, "availability_zone", path=f"{path}.", default=None)
        if zone is not None and not re.fullmatch(r"[a-z]{2}(-[a-z]+)+-\d[a-z]", zone):
            raise InvalidInputError(f"{path}.availability_zone", f"is not an Availability Zone name, got {zone!r}")
        return cls(
            instances_per_drill=read_int(
                value, "instances_per_drill", path=f"{path}.", default=d.instances_per_drill, minimum=1, maximum=20
            ),
            availability_zone=zone,
            # Lambda-free waiting costs only state transitions, but a drill should end the same day.
            timeout_seconds=read_int(
                value, "timeout_seconds", path=f"{path}.", default=d.timeout_seconds, minimum=60, maximum=12 * 3600
            ),
            restore_objective_minutes=_optional_int(value, "restore_objective_minutes", path, 1, 7 * 24 * 60),
            # CreateVolume VolumeInitializationRate: "Valid range: 100 - 300 MiB/s" (EC2 API Reference).
            volume_initialization_rate=_optional_int(value, "volume_initialization_rate", path, 100, 300),
            regions=_drill_regions(value, path),
        )


DRILL_REGIONS = ("source", "in_turn")


def _drill_regions(value: Mapping[str, Any], path: str) -> str:
    mode = str(read_str(value, "regions", path=f"{path}.", default="source"))
    if mode not in DRILL_REGIONS:
        raise InvalidInputError(f"{path}.regions", f"must be one of {', '.join(DRILL_REGIONS)}, got {mode!r}")
    return mode


def _optional_int(value: Mapping[str, Any], key: str, path: str, minimum: int, maximum: int) -> int | None:
    if value.get(key) is None:
        return None
    return read_int(value, key, path=f"{path}.", minimum=minimum, maximum=maximum)


@dataclass(frozen=True, kw_only=True)
class Settings:
    backup_tag_key: str = "backup"
    backup_tag_value: str = "True"
    retention_days: int = 7
    # Grandfather-father-son counts; mutually exclusive with retention_days (which it replaces).
    retention: Gfs | None = None
    # Move snapshots kept only as monthly/yearly picks to the EBS archive tier after this many
    # days (needs retention); None: never archive.
    archive_after_days: int | None = None
    keep_min: int = 2
    # Snapshots of instances no longer selected and of volumes no longer attached are pruned
    # down to this many per volume (Amazon DLM keeps the last one too). At least 1: never all.
    orphan_keep: int = 1
    copy_tags: tuple[str, ...] = ("Name",)
    dry_run: bool = False
    max_delete_fraction: float = 0.5
    max_deletes_per_run: int = 50
    notify_on_success: bool = False
    # Completion polling: first wait after CreateSnapshots, doubling up to the cap, and the
    # limit after which a still-pending snapshot fails its instance.
    wait_initial_seconds: int = 60
    wait_max_seconds: int = 1800
    snapshot_timeout_seconds: int = 6 * 3600
    # CreateSnapshots pacing: EC2 refills 5 tokens/s per account-region; stay under it.
    create_rate_per_second: int = 4
    # Completion checks of the whole fleet, per second, at most (on average over any check
    # interval): each instance waits at least fleet size / this between checks. EC2 refills
    # DescribeSnapshots at 20/s per account-region, shared with the Snapshot and Prune steps'
    # lookups and with every other tool in the account.
    check_rate_per_second: int = 5
    map_concurrency: int = 10000
    deployment_id: str = "smart-vault"
    drill: DrillSettings = field(default_factory=DrillSettings)
    topic_arn: str | None = None
    bucket_name: str | None = None
    # Snapshot lock applied right after creation (smart_vault.retention.locks); None: no lock.
    lock: LockSettings | None = None
    # Recycle Bin retention rule for this deployment's snapshots, in days (stack only; None: none).
    recycle_bin_days: int | None = None
    # Off-site copies: destinations, and how many copies may be in flight per
    # destination across the whole fleet (EC2's limit is 20), and how long a copy may take.
    copy_regions: tuple[CopyRegion, ...] = ()
    copy_max_in_flight: int = MAX_COPIES_IN_FLIGHT
    copy_timeout_seconds: int = 12 * 3600
    # Customer managed KMS keys the fleet's volumes are encrypted with (key ARN, alias name or
    # alias ARN, in the source Region): granted to the roles that copy, archive and drill, and
    # checked by Discover before any snapshot (docs/decisions.md, "Fleets on their own KMS keys").
    fleet_kms_keys: tuple[str, ...] = ()
    # Application-consistent backups (smart_vault.consistency; opt-in per instance by tag): the
    # SSM documents that freeze and thaw an instance unless its tags name others, the other
    # documents a tag may name (IAM allows SendCommand on these only), how long a freeze or thaw
    # may take, and whether a failed freeze falls back to a crash-consistent snapshot (the
    # instance's smart-vault:consistency-fallback tag overrides it).
    consistency_pre_document: str = "SmartVault-FsFreeze"
    consistency_post_document: str = "SmartVault-FsThaw"
    consistency_documents: tuple[str, ...] = ()
    consistency_timeout_seconds: int = 120
    consistency_fallback: bool = False
    # The isolated vault account the source shares its completed backups with (None: none).
    vault: VaultSettings | None = None

    def consistency_document_names(self) -> tuple[str, ...]:
        """Every SSM document the functions may run: the default pair and the listed ones."""
        names = (self.consistency_pre_document, self.consistency_post_document, *self.consistency_documents)
        return tuple(dict.fromkeys(names))

    def steady_state_snapshots_per_volume(self) -> int:
        """About how many snapshots retention keeps of one volume once it is full, for a daily
        schedule (preflight's quota headroom): every GFS pick, or retention_days, at least keep_min."""
        picks = sum(getattr(self.retention, t) for t in GFS_TIERS) if self.retention else self.retention_days
        return max(picks, self.keep_min)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, path: str = "") -> Settings:
        """Validate settings given by lower-case name; unknown names are an error."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InvalidInputError(f"{path}{unknown[0]}", "is not a known setting")
        d = cls()
        wait_initial = read_int(
            data,
            "wait_initial_seconds",
            path=path,
            default=d.wait_initial_seconds,
            minimum=0,
            maximum=3600,
        )
        settings = cls(
            backup_tag_key=read_str(data, "backup_tag_key", path=path, default=d.backup_tag_key),
            backup_tag_value=read_str(data, "backup_tag_value", path=path, default=d.backup_tag_value),
            retention_days=read_int(
                data,
                "retention_days",
                path=path,
                default=d.retention_days,
                minimum=1,
                maximum=36500,
            ),
            keep_min=read_int(data, "keep_min", path=path, default=d.keep_min, minimum=1, maximum=1000),
            orphan_keep=read_int(data, "orphan_keep", path=path, default=d.orphan_keep, minimum=1, maximum=1000),
            copy_tags=read_str_list(data, "copy_tags", path=path, default=d.copy_tags),
            dry_run=read_bool(data, "dry_run", path=path, default=d.dry_run),
            max_delete_fraction=read_fraction(data, "max_delete_fraction", path=path, default=d.max_delete_fraction),
            max_deletes_per_run=read_int(
                data, "max_deletes_per_run", path=path, default=d.max_deletes_per_run, minimum=1
            ),
            notify_on_success=read_bool(data, "notify_on_success", path=path, default=d.notify_on_success),
            wait_initial_seconds=wait_initial,
            wait_max_seconds=read_int(
                data,
                "wait_max_seconds",
                path=path,
                default=max(d.wait_max_seconds, wait_initial),
                minimum=max(1, wait_initial),
                maximum=3600,
            ),
            snapshot_timeout_seconds=read_int(
                data,
                "snapshot_timeout_seconds",
                path=path,
                default=d.snapshot_timeout_seconds,
                minimum=60,
                maximum=7 * 24 * 3600,
            ),
            create_rate_per_second=read_int(
                data,
                "create_rate_per_second",
                path=path,
                default=d.create_rate_per_second,
                minimum=1,
                maximum=5,
            ),
            check_rate_per_second=read_int(
                data,
                "check_rate_per_second",
                path=path,
                default=d.check_rate_per_second,
                minimum=1,
                maximum=20,
            ),
            map_concurrency=read_int(
                data,
                "map_concurrency",
                path=path,
                default=d.map_concurrency,
                minimum=1,
                maximum=10000,
            ),
            deployment_id=read_str(data, "deployment_id", path=path, default=d.deployment_id),
            drill=DrillSettings.from_value(data["drill"], path=f"{path}drill") if "drill" in data else d.drill,
            topic_arn=read_str(data, "topic_arn", path=path, default=None),
            bucket_name=read_str(data, "bucket_name", path=path, default=None),
            lock=LockSettings.read(data.get("lock"), path=path),
            # Recycle Bin: retention 1-365 days (AWS::Rbin::Rule RetentionPeriod).
            recycle_bin_days=None
            if data.get("recycle_bin_days") in (None, "")
            else read_int(data, "recycle_bin_days", path=path, minimum=1, maximum=365),
            copy_regions=read_copy_regions(data, "copy_regions", path=path),
            copy_max_in_flight=read_int(
                data,
                "copy_max_in_flight",
                path=path,
                default=d.copy_max_in_flight,
                minimum=1,
                maximum=MAX_COPIES_IN_FLIGHT,
            ),
            copy_timeout_seconds=read_int(
                data,
                "copy_timeout_seconds",
                path=path,
                default=d.copy_timeout_seconds,
                minimum=60,
                maximum=22 * 3600,  # inside the 23-hour run (the state machine's TimeoutSeconds)
            ),
        )
        settings = _with_consistency(settings, data, path)
        if len(settings.copy_tags) > 40:
            raise InvalidInputError(f"{path}copy_tags", "may name at most 40 tags")
        settings = replace(
            settings,
            fleet_kms_keys=read_fleet_keys(data, "fleet_kms_keys", path=path),
            vault=VaultSettings.from_value(data.get("vault"), path=f"{path}vault."),
        )
        return _with_gfs(settings, data, path)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        names = {f.name for f in fields(cls)}
        data = {name: env[name.upper()] for name in names if env.get(name.upper(), "") != ""}
        return cls.from_mapping(data, path="environment variable ")

    def to_env(self) -> dict[str, str]:
        """The environment the CDK app and the simulator give each function."""
        env: dict[str, str] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None:
                continue
            if isinstance(value, bool):
                value = "true" if value else "false"
            elif f.name == "copy_regions":
                if not value:
                    continue
                value = json.dumps([asdict(c) for c in value], separators=(",", ":"))
            elif isinstance(value, tuple):
                value = ",".join(value)
            elif isinstance(value, LockSettings | VaultSettings):
                value = value.to_text()
            elif isinstance(value, DrillSettings):
                value = json.dumps(asdict(value), separators=(",", ":"))
            env[f.name.upper()] = str(value)  # Gfs: "daily=7,weekly=4,..." (its __str__)
        if self.retention is not None:
            del env["RETENTION_DAYS"]  # mutually exclusive: the environment carries one of them
        return env

    def check_source_region(self, source_region: str | None, *, path: str = "") -> None:
        """A copy into the Region the snapshots are already in protects against nothing."""
        for i, dest in enumerate(self.copy_regions):
            if source_region and dest.region == source_region:
                raise InvalidInputError(
                    f"{path}copy_regions[{i}].region",
                    f"is the source Region {source_region}: copies must go to another Region",
                )

    def require_bucket(self) -> str:
        if not self.bucket_name:
            raise InvalidInputError("environment variable BUCKET_NAME", "is required")
        return self.bucket_name


# SendCommand's DocumentName: a name ("Pattern: ^[a-zA-Z0-9_\\-.:/]{3,128}$", SSM API Reference);
# names of this account's documents only here (an ARN or another account's shared document would
# need another IAM resource).
_DOCUMENT = re.compile(r"^[a-zA-Z0-9_\-.]{3,128}$")


def _document(data: Mapping[str, Any], key: str, default: str, path: str) -> str:
    name = str(read_str(data, key, path=path, default=default))
    if not _DOCUMENT.match(name):
        raise InvalidInputError(
            f"{path}{key}", f"must be an SSM document name (3-128 of A-Z a-z 0-9 _ - .), got {name!r}"
        )
    return name


def _with_consistency(settings: Settings, data: Mapping[str, Any], path: str) -> Settings:
    d = Settings()
    documents = read_str_list(data, "consistency_documents", path=path, default=())
    for i, name in enumerate(documents):
        _document({"name": name}, "name", "", f"{path}consistency_documents[{i}].")
    return replace(
        settings,
        consistency_pre_document=_document(data, "consistency_pre_document", d.consistency_pre_document, path),
        consistency_post_document=_document(data, "consistency_post_document", d.consistency_post_document, path),
        consistency_documents=documents,
        # SSM's own delivery timeout for SendCommand is at least 30 s (TimeoutSeconds, SSM API
        # Reference); a freeze is meant to take seconds, and the instance is frozen meanwhile.
        consistency_timeout_seconds=read_int(
            data,
            "consistency_timeout_seconds",
            path=path,
            default=d.consistency_timeout_seconds,
            minimum=30,
            maximum=900,
        ),
        consistency_fallback=read_bool(data, "consistency_fallback", path=path, default=d.consistency_fallback),
    )


def _with_gfs(settings: Settings, data: Mapping[str, Any], path: str) -> Settings:
    """Add the GFS policy and the archive tier, each validated naming its field."""
    gfs = None
    if data.get("retention") is not None:
        if data.get("retention_days") is not None:
            raise InvalidInputError(
                f"{path}retention", "cannot be combined with retention_days: choose one retention rule"
            )
        raw = data["retention"]
        refuse_text(raw, f"{path}retention", "an object")
        if isinstance(raw, str) and raw.lstrip().startswith("{"):
            # JSON text, as lock and drill take it with -c (the tier=count form stays valid).
            try:
                raw = json.loads(raw)
            except ValueError as error:
                raise InvalidInputError(f"{path}retention", f"must be an object or its JSON text: {error}") from None
        for tier, count in raw.items() if isinstance(raw, Mapping) else ():
            refuse_text(count, f"{path}retention.{tier}", "a JSON number")
        try:
            gfs = Gfs.parse(raw)
        except ValueError as error:
            raise InvalidInputError(f"{path}retention", str(error)) from None
    archive = None
    if data.get("archive_after_days") is not None:
        archive = read_int(data, "archive_after_days", path=path, minimum=1, maximum=36500)
    if archive is not None and (gfs is None or not (gfs.monthly or gfs.yearly)):
        raise InvalidInputError(
            f"{path}archive_after_days",
            "needs retention with monthly or yearly picks: only those are archived",
        )
    return replace(settings, retention=gfs, archive_after_days=archive)


@functools.cache
def get_settings() -> Settings:
    """Parsed once per cold start; a misconfiguration fails the first invocation loudly."""
    return Settings.from_env(os.environ)
