"""File systems and partition tables recognized by their documented on-disk signatures
(smart_vault.verification.signatures cites them), on disks built byte by byte here: an MBR disk
the emulator does not serve, ext2/3 without ext4's features, and a foreign start."""

from __future__ import annotations

import struct

from smart_vault.verification.signatures import layout

MIB = 1024 * 1024


def _disk(size: int = 4 * MIB) -> bytearray:
    return bytearray(size)


def _read(disk: bytearray):
    return lambda offset, length: bytes(disk[offset : offset + length])


def _ext(disk: bytearray, at: int, incompat: int) -> None:
    struct.pack_into("<H", disk, at + 1024 + 0x38, 0xEF53)
    struct.pack_into("<I", disk, at + 1024 + 0x60, incompat)


def test_an_mbr_disk_is_followed_into_each_partition():
    disk = _disk()
    for n, (kind, lba) in enumerate([(0x07, 2048), (0x83, 4096)]):  # NTFS, then Linux
        struct.pack_into("<BBBBBBBBII", disk, 446 + 16 * n, 0, 0, 0, 0, kind, 0, 0, 0, lba, 2048)
    disk[510:512] = b"\x55\xaa"
    disk[2048 * 512 + 3 : 2048 * 512 + 11] = b"NTFS    "
    _ext(disk, 4096 * 512, incompat=0x0002)  # filetype only: ext2/ext3, not ext4
    found = layout(_read(disk))
    assert found.found == "mbr:ntfs,ext2/ext3"
    assert "partition 1 at byte 1048576: ntfs" in found.describe()


def test_a_whole_disk_file_system_wins_over_its_boot_signature():
    disk = _disk()
    disk[3:11] = b"NTFS    "
    disk[510:512] = b"\x55\xaa"  # an NTFS boot sector ends like an MBR
    assert layout(_read(disk)).found == "ntfs"


def test_random_or_zero_starts_have_no_file_system():
    assert layout(_read(_disk())).found is None
    noise = bytearray((i * 7919) % 251 for i in range(4 * MIB))
    found = layout(_read(noise))
    assert found.found is None and "no file system signature" in found.describe()
