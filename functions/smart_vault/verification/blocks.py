"""Read a bounded sample of a snapshot's blocks through the EBS direct APIs and judge them.

Per snapshot: block 0 (the partition table, or the file system's own superblock), the first block
of every partition the table names, and ``SAMPLE_BLOCKS`` written blocks spread over the volume.
Each block's data is checked against the ``Checksum`` GetSnapshotBlock returns (SHA256 of the
data, base64; EBS direct APIs reference, GetSnapshotBlock). A block never written reads as zeros
and costs nothing (ListSnapshotBlocks lists only written blocks, EBS direct APIs FAQ).
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Protocol

from smart_vault.errors import InvalidRequestError
from smart_vault.verification.signatures import layout

BLOCK_SIZE = 512 * 1024  # EBS direct APIs: every snapshot block is 524,288 bytes
BLOCKS_PER_GIB = 2048
SAMPLE_BLOCKS = 8  # written data blocks read beyond the headers, spread over the volume
PAGE = 100  # ListSnapshotBlocks MaxResults: its minimum, a page per place looked at
CHECKSUM_ALGORITHM = "SHA256"
RAW = "raw"  # the filesystem tag's value of a volume checked for readability only

CheckStatus = Literal["passed", "failed"]


class Blocks(Protocol):
    """What the check needs of the EBS direct APIs (smart_vault.aws.EbsBlocks)."""

    def list_blocks(self, snapshot_id: str, *, start: int = 0, max_results: int = 100) -> dict[str, Any]: ...

    def get_block(self, snapshot_id: str, index: int, token: str) -> tuple[bytes, str, str]: ...


@dataclass(frozen=True, kw_only=True)
class SnapshotCheck:
    """One snapshot of a drilled recovery point, as the record and the report show it."""

    snapshot_id: str
    device: str
    raw: bool
    filesystem_found: str | None
    found: str  # what was found, in words, for the alert
    blocks_read: int
    checksum_failures: int
    unreadable_blocks: int
    status: CheckStatus

    @property
    def problem(self) -> str | None:
        """Why the check failed, naming the snapshot, the device and what was found."""
        if self.status == "passed":
            return None
        issues = []
        if self.checksum_failures:
            issues.append(f"{self.checksum_failures} of {self.blocks_read} blocks read failed their SHA256 checksum")
        if self.unreadable_blocks:
            issues.append(f"{self.unreadable_blocks} blocks unreadable")
        issues.append(f"found {self.found}")
        return f"snapshot {self.snapshot_id} ({self.device}): " + "; ".join(issues)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class SnapshotReader:
    """A snapshot's bytes, block by block on demand: each block listed, read and checked once."""

    blocks: Blocks
    snapshot_id: str
    volume_blocks: int = 0
    tokens: dict[int, str] = field(default_factory=dict)
    listed: list[tuple[int, int]] = field(default_factory=list)  # index ranges ListSnapshotBlocks covered
    data: dict[int, bytes] = field(default_factory=dict)
    checksum_failures: int = 0
    unreadable: int = 0

    def list_from(self, start: int) -> list[int]:
        """The written block indexes of one page from ``start``."""
        page = self.blocks.list_blocks(self.snapshot_id, start=start, max_results=PAGE)
        self.volume_blocks = int(page.get("VolumeSize") or 0) * BLOCKS_PER_GIB
        found = [int(b["BlockIndex"]) for b in page.get("Blocks") or ()]
        self.tokens.update({int(b["BlockIndex"]): str(b["BlockToken"]) for b in page.get("Blocks") or ()})
        # A page starts at ``start`` or the next written block; without a NextToken it went to the end.
        if not page.get("NextToken"):
            self.listed.append((start, self.volume_blocks))
        else:
            self.listed.append((start, found[-1] if found else start))
        return found

    def _written(self, index: int) -> bool:
        if index in self.tokens:
            return True
        if not any(low <= index <= high for low, high in self.listed):
            self.list_from(index)
        return index in self.tokens

    def block(self, index: int) -> bytes:
        if index in self.data:
            return self.data[index]
        content = bytes(BLOCK_SIZE)
        if self._written(index):
            try:
                content, checksum, algorithm = self.blocks.get_block(self.snapshot_id, index, self.tokens[index])
                expected = base64.b64encode(hashlib.sha256(content).digest()).decode()
                if algorithm != CHECKSUM_ALGORITHM or checksum != expected:
                    self.checksum_failures += 1
            except InvalidRequestError:  # ValidationException: a block EBS will not serve
                self.unreadable += 1
        self.data[index] = content
        return content

    def read(self, offset: int, length: int) -> bytes:
        first, last = offset // BLOCK_SIZE, (offset + length - 1) // BLOCK_SIZE
        joined = b"".join(self.block(i) for i in range(first, last + 1))
        start = offset - first * BLOCK_SIZE
        return joined[start : start + length]

    @property
    def blocks_read(self) -> int:
        return sum(1 for i in self.data if i in self.tokens)

    def sample(self, count: int) -> None:
        """Read ``count`` written blocks spread evenly over the volume (the first written one
        at or after each of ``count`` evenly spaced indexes)."""
        for k in range(count):
            start = (2 * k + 1) * self.volume_blocks // (2 * count)
            written = [i for i in self.list_from(start) if i not in self.data]
            if written:
                self.block(written[0])


def check_snapshot(blocks: Blocks, snapshot_id: str, device: str, *, raw: bool = False) -> SnapshotCheck:
    """Read the headers and a sample of one snapshot and judge them: readable with good
    checksums, and (unless ``raw``) a recognized file system or partitioned file systems."""
    reader = SnapshotReader(blocks, snapshot_id)
    reader.list_from(0)
    found: str | None
    if raw:
        reader.block(0)
        found, described = RAW, "raw (readability only)"
    else:
        disk = layout(reader.read)
        found, described = disk.found, disk.describe()
    reader.sample(SAMPLE_BLOCKS)
    if not reader.tokens:
        described = "no block written (an empty snapshot)"
    failed = reader.checksum_failures or reader.unreadable or (not raw and found is None)
    return SnapshotCheck(
        snapshot_id=snapshot_id,
        device=device,
        raw=raw,
        filesystem_found=found,
        found=described,
        blocks_read=reader.blocks_read,
        checksum_failures=reader.checksum_failures,
        unreadable_blocks=reader.unreadable,
        status="failed" if failed else "passed",
    )
