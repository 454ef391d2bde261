"""Recognize a file system, or a partition table and the file systems in its partitions, from the
first bytes of a disk, by their documented on-disk signatures:

- MBR: the boot signature 0x55 0xAA at byte 510 and four 16-byte partition entries from byte 446
  (type at +4, first LBA at +8); type 0xEE is GPT's protective MBR;
- GPT: the header "EFI PART" at LBA 1 (byte 512), its partition entries from the LBA at header
  offset 72, as many as at offset 80, each of the size at offset 84, first LBA at entry offset 32
  (UEFI Specification, "GUID Partition Table (GPT) Disk Layout");
- ext2/3/4: the superblock at byte 1024 of the file system, s_magic 0xEF53 (little-endian) at
  superblock offset 0x38; ext4 when s_feature_incompat (offset 0x60) has extents (0x40) or 64bit
  (0x80) (ext4 Disk Layout, "The Super Block");
- XFS: sb_magicnum "XFSB" at byte 0 of the file system (XFS Algorithms & Data Structures,
  "Superblocks");
- NTFS: the OEM id "NTFS    " at byte 3 of its boot sector.

``read(offset, length)`` gives the disk's bytes (zeros where nothing was ever written).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass

SECTOR = 512
ReadBytes = Callable[[int, int], bytes]

_EXT_MAGIC = 0xEF53
_EXT4_INCOMPAT = 0x40 | 0x80
_MAX_GPT_ENTRIES = 128  # the usual table; more are not followed


@dataclass(frozen=True)
class Partition:
    table: str  # mbr | gpt
    number: int  # 1-based
    offset: int  # byte offset of its first sector
    filesystem: str | None


@dataclass(frozen=True)
class DiskLayout:
    """What the first bytes say: a file system on the whole disk, or a table and its partitions."""

    filesystem: str | None
    table: str | None = None
    partitions: tuple[Partition, ...] = ()

    @property
    def found(self) -> str | None:
        """The report's ``filesystem_found``: ``ext4``, or ``gpt:ext4`` (table: each partition's,
        ``?`` for one with none recognized); None when nothing is recognized."""
        if self.table is None:
            return self.filesystem
        recognized = [p.filesystem for p in self.partitions if p.filesystem]
        if not recognized:
            return None
        return f"{self.table}:" + ",".join(p.filesystem or "?" for p in self.partitions)

    def describe(self) -> str:
        """What was found, for an alert: the signatures seen or that none was."""
        if self.table is not None:
            parts = ", ".join(
                f"partition {p.number} at byte {p.offset}: {p.filesystem or 'no file system'}" for p in self.partitions
            )
            return f"{self.table.upper()} partition table ({parts or 'no partitions'})"
        if self.filesystem is not None:
            return self.filesystem
        return "no file system signature (ext4, XFS, NTFS) and no partition table"


def filesystem_at(read: ReadBytes, offset: int) -> str | None:
    """The file system whose signature starts at ``offset`` (a whole disk or a partition)."""
    head = read(offset, SECTOR)
    if head[3:11] == b"NTFS    ":
        return "ntfs"
    if head[0:4] == b"XFSB":
        return "xfs"
    superblock = read(offset + 1024, 0x64)
    if struct.unpack_from("<H", superblock, 0x38)[0] == _EXT_MAGIC:
        incompat = struct.unpack_from("<I", superblock, 0x60)[0]
        return "ext4" if incompat & _EXT4_INCOMPAT else "ext2/ext3"
    return None


def _gpt_partitions(read: ReadBytes) -> list[tuple[int, int]]:
    header = read(SECTOR, 92)
    entries_lba, count, size = struct.unpack_from("<QII", header, 72)
    if size < 48 or count == 0:
        return []
    count = min(count, _MAX_GPT_ENTRIES)
    table = read(entries_lba * SECTOR, count * size)
    found = []
    for n in range(count):
        entry = table[n * size : (n + 1) * size]
        if entry[:16] != bytes(16):  # an unused entry has a zero type GUID
            found.append((n + 1, struct.unpack_from("<Q", entry, 32)[0] * SECTOR))
    return found


def _mbr_partitions(mbr: bytes) -> list[tuple[int, int]]:
    found = []
    for n in range(4):
        entry = mbr[446 + 16 * n : 446 + 16 * (n + 1)]
        kind, first = entry[4], struct.unpack_from("<I", entry, 8)[0]
        if kind not in (0, 0xEE) and first:
            found.append((n + 1, first * SECTOR))
    return found


def layout(read: ReadBytes) -> DiskLayout:
    """The disk's file system, or its partition table followed into each partition."""
    whole = filesystem_at(read, 0)
    if whole is not None:
        return DiskLayout(filesystem=whole)  # an NTFS boot sector also ends in 0x55AA: checked first
    mbr = read(0, SECTOR)
    if mbr[510:512] != b"\x55\xaa":
        return DiskLayout(filesystem=None)
    if read(SECTOR, 8) == b"EFI PART":
        table, starts = "gpt", _gpt_partitions(read)
    else:
        table, starts = "mbr", _mbr_partitions(mbr)
    partitions = tuple(Partition(table, n, offset, filesystem_at(read, offset)) for n, offset in starts)
    return DiskLayout(filesystem=None, table=table, partitions=partitions)
