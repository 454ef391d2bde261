"""The EBS direct APIs in the emulated account: ListSnapshotBlocks, GetSnapshotBlock and
ListChangedBlocks over a per-snapshot block content model.

moto's own ``ebs`` backend knows only snapshots made with StartSnapshot/PutSnapshotBlock, not the
EC2 snapshots Smart Vault creates, so these requests are answered here before they reach moto (a
botocore ``before-call`` handler returns the parsed response, as snapshot_locks does).

The content model (all derived, nothing stored per block):
- a snapshot's volume is ``VolumeSize`` GiB of 512 KiB blocks (``BlockSize`` 524,288); only
  written blocks are listed ("list snapshot blocks ... only returns the block indexes and tokens
  of blocks that have data written", EBS direct APIs FAQ);
- each source volume has a file system (``filesystems``, ext4 by default; see ``FILESYSTEMS``)
  that fixes which blocks are written and what the first blocks hold: the on-disk signatures at
  their documented offsets (ext4 superblock magic 0xEF53 at byte 1024+56, XFS "XFSB" at byte 0
  of the partition, NTFS OEM id "NTFS    " at byte 3, MBR 0x55AA at byte 510, GPT header
  "EFI PART" at LBA 1);
- a block has a version per snapshot: the snapshots of a volume are numbered in creation order
  (generation 0, 1, ...) and ``changed_percent`` (per volume, default 2) of its written blocks
  change between one generation and the next, so two snapshots of a volume can be diffed
  (ListChangedBlocks); a copy in another Region holds its source's content.

Request rules, from the EBS direct APIs reference (ListSnapshotBlocks, GetSnapshotBlock,
ListChangedBlocks, "Common errors") and the EBS direct APIs FAQ
(https://docs.aws.amazon.com/ebs/latest/userguide/ebsapi-faq.html):
- only a ``completed`` snapshot can be read; public snapshots are not supported;
- MaxResults 100-10,000 (botocore refuses fewer client-side); NextToken wins over
  StartingBlockIndex; next tokens last 60 minutes and block tokens 7 days; a page may be empty
  with a NextToken when changes are scarce (pages here scan at most ``SCAN_WINDOW`` indexes);
- GetSnapshotBlock returns the data with its ``Checksum`` (SHA256, base64) and
  ``ChecksumAlgorithm`` ``SHA256``;
- errors: ValidationException (Reason INVALID_SNAPSHOT_ID, INVALID_BLOCK, INVALID_BLOCK_TOKEN,
  INVALID_PAGE_TOKEN, INVALID_PARAMETER_VALUE, UNRELATED_SNAPSHOTS), ResourceNotFoundException
  (SNAPSHOT_NOT_FOUND), RequestThrottledException (ACCOUNT_THROTTLED, RESOURCE_LEVEL_THROTTLE).
- An archived snapshot cannot be read with the EBS direct APIs ("Archive Amazon EBS snapshots",
  considerations); the docs name no error for it, so the emulator answers ValidationException
  INVALID_SNAPSHOT_ID with a message naming the archive tier.
- Request-rate quotas per account and Region ("Amazon Elastic Block Store endpoints and quotas",
  AWS General Reference, https://docs.aws.amazon.com/general/latest/gr/ebs-service.html):
  ``RATE_QUOTAS``, counted over one second of the simulator's virtual clock.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import struct
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError
from botocore.response import StreamingBody

from smart_vault_sim import fleet
from smart_vault_sim.answering import AnsweredApi, Handlers, Response

BLOCK_SIZE = 512 * 1024
BLOCKS_PER_GIB = (1024 * 1024 * 1024) // BLOCK_SIZE
MAX_RESULTS = (100, 10_000)
SCAN_WINDOW = 100_000  # block indexes one page looks at, at most (a page may come back empty)
NEXT_TOKEN_LIFETIME = timedelta(minutes=60)
BLOCK_TOKEN_LIFETIME = timedelta(days=7)
DEFAULT_CHANGED_PERCENT = 2.0
WRITTEN_PERCENT = 40  # data blocks written of a volume's blocks (beyond its metadata blocks)
FILESYSTEMS = ("ext4", "xfs", "ntfs", "gpt-ext4", "raw", "blank", "corrupt")
# Requests per second per account and Region (General Reference, "Amazon Elastic Block Store
# endpoints and quotas", EBS direct APIs); GetSnapshotBlock is also limited per snapshot.
RATE_QUOTAS = {"GetSnapshotBlock": 1000, "ListSnapshotBlocks": 50, "ListChangedBlocks": 50}
PER_SNAPSHOT_QUOTAS = {"GetSnapshotBlock": 1000}
# gpt-ext4: the first partition at LBA 2048 (1 MiB, the usual alignment), block 2.
PARTITION_START_LBA = 2048
_SECTOR = 512
_MASK = (1 << 64) - 1
_LINUX_FS_GUID = bytes.fromhex("af3dc60f838472478e793d69d8477de4")  # 0FC63DAF-8483-4772-8E79-3D69D8477DE4


def ebs_error(code: str, operation: str, reason: str, message: str, *, status: int = 400) -> ClientError:
    """The ClientError botocore raises for an EBS direct API error (rest-json: the Reason member
    beside the code)."""
    return ClientError(
        {
            "Error": {"Code": code, "Message": message},
            "Reason": reason,
            "Message": message,
            "ResponseMetadata": {"HTTPStatusCode": status, "RequestId": "ebs-direct"},
        },
        operation,
    )


def _mix(*values: int) -> int:
    """A deterministic 64-bit hash of integers (splitmix64 steps): cheap enough to decide a
    block's fate for every index a page scans."""
    x = 0x9E3779B97F4A7C15
    for v in values:
        x = (x ^ (v & _MASK)) * 0xBF58476D1CE4E5B9 & _MASK
        x ^= x >> 31
        x = x * 0x94D049BB133111EB & _MASK
        x ^= x >> 29
    return x


def _seed(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


@dataclass(frozen=True)
class SnapshotContent:
    """What one snapshot holds: its source volume, generation and the volume's settings."""

    snapshot_id: str
    volume_id: str
    generation: int
    blocks: int  # volume size in blocks
    filesystem: str
    changed_percent: float

    @property
    def seed(self) -> int:
        return _seed(self.volume_id)

    def metadata_blocks(self) -> tuple[int, ...]:
        """Blocks that hold the partition table / file system headers (always written but blank)."""
        if self.filesystem == "gpt-ext4":
            return (0, PARTITION_START_LBA * _SECTOR // BLOCK_SIZE)
        return (0,)

    def written(self, index: int) -> bool:
        if not 0 <= index < self.blocks:
            return False
        if self.filesystem == "blank":
            return index < 4  # zeroed blocks: written, all zero
        if index in self.metadata_blocks():
            return True
        return _mix(self.seed, index) % 100 < WRITTEN_PERCENT

    def version(self, index: int) -> int:
        """How many times the block changed up to this snapshot's generation."""
        threshold = int(self.changed_percent * 100)  # basis points of 10,000
        return sum(1 for g in range(1, self.generation + 1) if _mix(self.seed, index, g) % 10_000 < threshold)

    def corrupt(self, index: int) -> bool:
        """``corrupt``: block 0 and a tenth of the others come back not matching their checksum."""
        return self.filesystem == "corrupt" and (index == 0 or _mix(self.seed, index, 7) % 10 == 0)

    def data(self, index: int) -> bytes:
        """The block's 512 KiB as written (before any corruption)."""
        version = self.version(index)
        if self.filesystem == "blank":
            return bytes(BLOCK_SIZE)
        block = bytearray(hashlib.sha256(f"{self.volume_id}:{index}:{version}".encode()).digest() * (BLOCK_SIZE // 32))
        if index in self.metadata_blocks() and self.filesystem != "raw":
            block[: 64 * 1024] = bytes(64 * 1024)  # headers sit in otherwise zeroed sectors
            _write_signatures(block, self.filesystem, index, self.blocks)
        return bytes(block)

    def served(self, index: int) -> tuple[bytes, str]:
        """What GetSnapshotBlock returns: the data and the checksum of the data as written."""
        data = self.data(index)
        checksum = base64.b64encode(hashlib.sha256(data).digest()).decode()
        if self.corrupt(index):
            flipped = bytearray(data)
            flipped[4096] ^= 0xFF
            data = bytes(flipped)
        return data, checksum


def _ext4_superblock(block: bytearray, at: int) -> None:
    """An ext4 superblock at byte ``at`` (ext4 Disk Layout, "The Super Block"): s_log_block_size
    2 (4 KiB) at 0x18, s_magic 0xEF53 at 0x38, s_feature_incompat extents|64bit|flex_bg|filetype."""
    struct.pack_into("<I", block, at + 0x18, 2)
    struct.pack_into("<H", block, at + 0x38, 0xEF53)
    struct.pack_into("<I", block, at + 0x60, 0x0002 | 0x0040 | 0x0080 | 0x0200)
    block[at + 0x78 : at + 0x78 + 10] = b"smartvault"


def _write_signatures(block: bytearray, filesystem: str, index: int, blocks: int) -> None:
    if filesystem in ("ext4", "corrupt"):
        _ext4_superblock(block, 1024)
    elif filesystem == "xfs":
        block[0:4] = b"XFSB"  # XFS Algorithms & Data Structures, "Superblocks": sb_magicnum
        struct.pack_into(">I", block, 4, 4096)  # sb_blocksize
    elif filesystem == "ntfs":
        block[0:3] = b"\xeb\x52\x90"
        block[3:11] = b"NTFS    "  # the OEM id of the NTFS boot sector
        struct.pack_into("<H", block, 0x0B, _SECTOR)  # bytes per sector
        block[510:512] = b"\x55\xaa"
    elif filesystem == "gpt-ext4" and index == 0:
        _gpt(block, blocks)
    elif filesystem == "gpt-ext4":
        _ext4_superblock(block, 1024)  # the partition's own first 1 KiB, then its superblock


def _gpt(block: bytearray, blocks: int) -> None:
    """A protective MBR (type 0xEE) and a GPT header at LBA 1 with one Linux partition entry at
    LBA 2 (UEFI Specification, "GUID Partition Table (GPT) Disk Layout")."""
    last_lba = blocks * (BLOCK_SIZE // _SECTOR) - 1
    struct.pack_into("<BBBBBBBBII", block, 446, 0, 0, 2, 0, 0xEE, 0xFF, 0xFF, 0xFF, 1, min(last_lba, 0xFFFFFFFF))
    block[510:512] = b"\x55\xaa"
    header = _SECTOR
    block[header : header + 8] = b"EFI PART"
    struct.pack_into("<IIIIQQQQ", block, header + 8, 0x00010000, 92, 0, 0, 1, last_lba, 34, last_lba - 33)
    struct.pack_into("<QII", block, header + 72, 2, 128, 128)  # entries at LBA 2, 128 of 128 bytes
    entry = 2 * _SECTOR
    block[entry : entry + 16] = _LINUX_FS_GUID
    block[entry + 16 : entry + 32] = hashlib.md5(b"smart-vault partition").digest()
    struct.pack_into("<QQ", block, entry + 32, PARTITION_START_LBA, last_lba - 34)


@dataclass
class EbsDirect(AnsweredApi):
    """Install on a boto3 session before its clients are created (``install``), or on every
    session (``everywhere``): answering.AnsweredApi."""

    now: Callable[[], datetime]  # the scenario clock (token expiry)
    seconds: Callable[[], float]  # virtual seconds (request-rate quotas)
    source_of: Callable[[str], tuple[str, str] | None] = lambda _sid: None  # copy id -> (region, source id)
    filesystems: dict[str, str] = field(default_factory=dict)  # source volume id -> FILESYSTEMS entry
    changed_percents: dict[str, float] = field(default_factory=dict)  # source volume id -> percent
    requests: dict[str, int] = field(default_factory=dict)  # operation -> requests answered
    throttled: int = 0
    _generations: dict[str, dict[str, int]] = field(default_factory=dict)  # volume -> snapshot -> gen
    _recent: dict[str, deque[float]] = field(default_factory=dict)  # quota key -> request times

    # -- settings -----------------------------------------------------------------------
    def set_filesystem(self, volume_id: str, filesystem: str) -> None:
        if filesystem not in FILESYSTEMS:
            raise ValueError(f"filesystem must be one of {', '.join(FILESYSTEMS)}, got {filesystem!r}")
        self.filesystems[volume_id] = filesystem

    def set_changed_percent(self, volume_id: str, percent: float) -> None:
        """How many of the volume's written blocks change between two of its snapshots."""
        if not 0 <= percent <= 100:
            raise ValueError(f"changed percent must be 0-100, got {percent}")
        self.changed_percents[volume_id] = float(percent)

    # -- the content model ------------------------------------------------------------------
    def _origin(self, region: str, snapshot_id: str) -> Any:
        """The snapshot whose content this one holds (itself, or a copy's source)."""
        hops = 0
        while (source := self.source_of(snapshot_id)) is not None and hops < 10:
            region, snapshot_id = source
            hops += 1
        return fleet.ec2_backend(region).snapshots.get(snapshot_id), region

    def _generation(self, region: str, snapshot: Any) -> int:
        volume_id = snapshot.volume.id
        known = self._generations.setdefault(volume_id, {})
        if snapshot.id not in known:
            # Number the volume's snapshots not seen yet in creation order, after those seen.
            backend = fleet.ec2_backend(region)
            new = [s for s in backend.snapshots.values() if s.volume.id == volume_id and s.id not in known]
            for s in sorted(new, key=lambda s: (str(s.start_time), s.id)):
                known[s.id] = len(known)
        return known[snapshot.id]

    def content(self, region: str, snapshot_id: str) -> SnapshotContent | None:
        origin, origin_region = self._origin(region, snapshot_id)
        if origin is None:
            return None
        volume_id = origin.volume.id
        return SnapshotContent(
            snapshot_id=snapshot_id,
            volume_id=volume_id,
            generation=self._generation(origin_region, origin),
            blocks=int(origin.volume.size) * BLOCKS_PER_GIB,
            filesystem=self.filesystems.get(volume_id, "ext4"),
            changed_percent=self.changed_percents.get(volume_id, DEFAULT_CHANGED_PERCENT),
        )

    # -- requests ---------------------------------------------------------------------------
    def _readable(self, operation: str, region: str, snapshot_id: str) -> SnapshotContent:
        snapshot = fleet.ec2_backend(region).snapshots.get(snapshot_id)
        if snapshot is None:
            raise ebs_error(
                "ResourceNotFoundException",
                operation,
                "SNAPSHOT_NOT_FOUND",
                f"The snapshot '{snapshot_id}' does not exist.",
                status=404,
            )
        if snapshot.status != "completed":
            raise ebs_error(
                "ValidationException",
                operation,
                "INVALID_SNAPSHOT_ID",
                f"The snapshot '{snapshot_id}' is {snapshot.status}: only completed snapshots can be read.",
            )
        if getattr(snapshot, "storage_tier", "standard") == "archive":
            raise ebs_error(
                "ValidationException",
                operation,
                "INVALID_SNAPSHOT_ID",
                f"The snapshot '{snapshot_id}' is in the archive tier: restore it to read its blocks.",
            )
        content = self.content(region, snapshot_id)
        assert content is not None
        return content

    def _throttle(self, operation: str, snapshot_id: str) -> None:
        now = self.seconds()
        keys = [(operation, RATE_QUOTAS.get(operation), "ACCOUNT_THROTTLED")]
        if operation in PER_SNAPSHOT_QUOTAS:
            keys.append((f"{operation}:{snapshot_id}", PER_SNAPSHOT_QUOTAS[operation], "RESOURCE_LEVEL_THROTTLE"))
        for key, quota, reason in keys:
            if quota is None:
                continue
            recent = self._recent.setdefault(key, deque())
            while recent and recent[0] <= now - 1.0:
                recent.popleft()
            if len(recent) >= quota:
                self.throttled += 1
                raise ebs_error(
                    "RequestThrottledException",
                    operation,
                    reason,
                    f"The number of {operation} requests exceeded {quota} per second.",
                    status=400,
                )
        for key, quota, _ in keys:
            if quota is not None:
                self._recent[key].append(now)

    def _max_results(self, operation: str, params: dict[str, Any]) -> int:
        value = int(params.get("MaxResults") or MAX_RESULTS[1])
        low, high = MAX_RESULTS
        if not low <= value <= high:
            raise ebs_error(
                "ValidationException",
                operation,
                "INVALID_PARAMETER_VALUE",
                f"MaxResults must be between {low} and {high}, got {value}.",
            )
        return value

    def _start(self, operation: str, params: dict[str, Any], snapshot_id: str) -> int:
        """The first index of this page: the NextToken's (it wins), else StartingBlockIndex."""
        token = params.get("NextToken")
        if not token:
            start = int(params.get("StartingBlockIndex") or 0)
            if start < 0:
                raise ebs_error(
                    "ValidationException", operation, "INVALID_PARAMETER_VALUE", "StartingBlockIndex must be >= 0."
                )
            return start
        try:
            data = json.loads(base64.b64decode(str(token)))
            issued = datetime.fromisoformat(data["t"])
            valid = data["s"] == snapshot_id and self.now() - issued <= NEXT_TOKEN_LIFETIME
        except (ValueError, KeyError, TypeError):
            valid = False
        if not valid:
            raise ebs_error("ValidationException", operation, "INVALID_PAGE_TOKEN", "The pagination token is invalid.")
        return int(data["i"])

    def _next_token(self, snapshot_id: str, index: int) -> str:
        raw = json.dumps({"s": snapshot_id, "i": index, "t": self.now().isoformat()})
        return base64.b64encode(raw.encode()).decode()

    def _block_token(self, content: SnapshotContent, index: int) -> str:
        raw = f"{content.snapshot_id}:{index}:{content.volume_id}:{content.version(index)}:{self.now().isoformat()}"
        return base64.b64encode(raw.encode()).decode()

    def _page(
        self, start: int, limit: int, blocks: int, pick: Callable[[int], dict[str, Any] | None]
    ) -> tuple[list[dict[str, Any]], int | None]:
        """Up to ``limit`` entries from ``start``, looking at most SCAN_WINDOW indexes; the
        index to continue from (None: the end of the volume)."""
        found: list[dict[str, Any]] = []
        index = start
        end = min(blocks, start + SCAN_WINDOW)
        while index < end and len(found) < limit:
            entry = pick(index)
            if entry is not None:
                found.append(entry)
            index += 1
        return found, (index if index < blocks else None)

    def _expiry(self) -> datetime:
        return self.now() + BLOCK_TOKEN_LIFETIME

    def list_snapshot_blocks(self, region: str, params: dict[str, Any]) -> dict[str, Any]:
        operation = "ListSnapshotBlocks"
        snapshot_id = str(params.get("SnapshotId") or "")
        content = self._readable(operation, region, snapshot_id)
        limit = self._max_results(operation, params)
        start = self._start(operation, params, snapshot_id)
        self._throttle(operation, snapshot_id)

        def pick(index: int) -> dict[str, Any] | None:
            if not content.written(index):
                return None
            return {"BlockIndex": index, "BlockToken": self._block_token(content, index)}

        return self._listing("Blocks", snapshot_id, content.blocks, self._page(start, limit, content.blocks, pick))

    def get_snapshot_block(self, region: str, params: dict[str, Any]) -> dict[str, Any]:
        operation = "GetSnapshotBlock"
        snapshot_id = str(params.get("SnapshotId") or "")
        content = self._readable(operation, region, snapshot_id)
        index = int(params.get("BlockIndex", -1))
        if not content.written(index):
            raise ebs_error(
                "ValidationException",
                operation,
                "INVALID_BLOCK",
                f"Block {index} of snapshot '{snapshot_id}' holds no data (list its blocks for the valid ones).",
            )
        if not self._token_matches(content, index, str(params.get("BlockToken") or "")):
            raise ebs_error("ValidationException", operation, "INVALID_BLOCK_TOKEN", "The block token is invalid.")
        self._throttle(operation, snapshot_id)
        data, checksum = content.served(index)
        return {
            "DataLength": len(data),
            "BlockData": StreamingBody(io.BytesIO(data), len(data)),
            "Checksum": checksum,
            "ChecksumAlgorithm": "SHA256",
        }

    def _token_matches(self, content: SnapshotContent, index: int, token: str) -> bool:
        """A token of this block (of this snapshot, or of another snapshot with the same block
        version: ListChangedBlocks' FirstBlockToken) that has not expired."""
        try:
            _sid, token_index, volume, version, issued = base64.b64decode(token).decode().split(":", 4)
            fresh = self.now() - datetime.fromisoformat(issued) <= BLOCK_TOKEN_LIFETIME
        except ValueError:
            return False
        same = (int(token_index), volume, int(version)) == (index, content.volume_id, content.version(index))
        return fresh and same

    def list_changed_blocks(self, region: str, params: dict[str, Any]) -> dict[str, Any]:
        operation = "ListChangedBlocks"
        second_id = str(params.get("SecondSnapshotId") or "")
        second = self._readable(operation, region, second_id)
        first_id = params.get("FirstSnapshotId")
        first = self._readable(operation, region, str(first_id)) if first_id else None
        if first is not None and first.volume_id != second.volume_id:
            raise ebs_error(
                "ValidationException",
                operation,
                "UNRELATED_SNAPSHOTS",
                f"The snapshots '{first_id}' and '{second_id}' are not of the same volume lineage.",
            )
        limit = self._max_results(operation, params)
        start = self._start(operation, params, second_id)
        self._throttle(operation, second_id)

        def pick(index: int) -> dict[str, Any] | None:
            if not second.written(index):
                return None
            entry: dict[str, Any] = {"BlockIndex": index, "SecondBlockToken": self._block_token(second, index)}
            if first is None:
                return entry  # no first snapshot: every written block of the second
            if first.version(index) == second.version(index):
                return None
            entry["FirstBlockToken"] = self._block_token(first, index)
            return entry

        return self._listing("ChangedBlocks", second_id, second.blocks, self._page(start, limit, second.blocks, pick))

    def _listing(
        self, key: str, snapshot_id: str, volume_blocks: int, page: tuple[list[dict[str, Any]], int | None]
    ) -> dict[str, Any]:
        """A List* answer: the page's blocks under ``key``, their expiry, the volume's size and
        block size, and a NextToken that resumes after the page when there is more."""
        blocks, resume = page
        response: dict[str, Any] = {
            key: blocks,
            "ExpiryTime": self._expiry(),
            "VolumeSize": volume_blocks // BLOCKS_PER_GIB,
            "BlockSize": BLOCK_SIZE,
        }
        if resume is not None:
            response["NextToken"] = self._next_token(snapshot_id, resume)
        return response

    # -- botocore handlers ------------------------------------------------------------------
    _OPERATIONS = ("ListSnapshotBlocks", "GetSnapshotBlock", "ListChangedBlocks")

    def handlers(self) -> Handlers:
        return [
            *((f"before-parameter-build.ebs.{op}", self.remember) for op in self._OPERATIONS),
            *((f"before-call.ebs.{op}", self._answer) for op in self._OPERATIONS),
        ]

    def _answer(self, model: Any, context: Any = None, **_: Any) -> tuple[Response, dict[str, Any]]:
        region = str((context or {}).get("client_region") or "")
        answer = {
            "ListSnapshotBlocks": self.list_snapshot_blocks,
            "GetSnapshotBlock": self.get_snapshot_block,
            "ListChangedBlocks": self.list_changed_blocks,
        }[model.name]
        response = answer(region, self.params(context))
        self.requests[model.name] = self.requests.get(model.name, 0) + 1
        return Response(), response
