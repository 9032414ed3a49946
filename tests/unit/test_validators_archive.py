from __future__ import annotations

import gzip
import io
import tarfile
import zipfile

from hallmark.release.validators.archive import (
    ArchiveFormat,
    EntryType,
    PackageView,
    detect_format,
)
from tests.unit.test_validators_support import Member, make_tar_gz, make_zip


def test_format_is_detected_from_magic_bytes_not_names() -> None:
    assert detect_format(make_tar_gz({"a": b"1"})) is ArchiveFormat.TAR_GZ
    assert detect_format(make_zip({"a": b"1"})) is ArchiveFormat.ZIP
    assert detect_format(gzip.compress(b"just text, not a tar" * 40, mtime=0)) is ArchiveFormat.GZIP
    assert detect_format(b"\x7fELF\x02\x01\x01" + bytes(600)) is ArchiveFormat.UNKNOWN
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tf:
        info = tarfile.TarInfo("x")
        tf.addfile(info, io.BytesIO(b""))
    assert detect_format(raw.getvalue()) is ArchiveFormat.TAR


def test_lists_tar_entries_with_types_sizes_links_and_modes() -> None:
    data = make_tar_gz(
        {"pkg/a.txt": b"hello"},
        [
            Member("pkg/run.sh", data=b"#!/bin/sh\n", mode=0o755),
            Member("pkg/link", tarfile.SYMTYPE, linkname="a.txt", mode=0o777),
            Member("pkg/hard", tarfile.LNKTYPE, linkname="pkg/a.txt"),
            Member("pkg/dir", tarfile.DIRTYPE, mode=0o755),
        ],
    )
    view = PackageView(data)
    entries = view.entries()
    assert view.listing_error is None
    assert [(e.name, e.type, e.size) for e in entries] == [
        ("pkg/a.txt", EntryType.FILE, 5),
        ("pkg/run.sh", EntryType.FILE, 10),
        ("pkg/link", EntryType.SYMLINK, 0),
        ("pkg/hard", EntryType.HARDLINK, 0),
        ("pkg/dir", EntryType.DIR, 0),
    ]
    assert entries[1].mode == 0o755
    assert entries[2].link_target == "a.txt"
    assert all(e.compressed_size is not None for e in entries)
    assert view.read("pkg/a.txt", cap=100).data == b"hello"


def test_lists_zip_entries_with_symlinks() -> None:
    data = make_zip({"a.txt": b"hello" * 100}, symlinks={"l": "a.txt"})
    view = PackageView(data)
    entries = view.entries()
    assert [(e.name, e.type) for e in entries] == [("a.txt", EntryType.FILE), ("l", EntryType.SYMLINK)]
    assert entries[0].size == 500 and entries[0].compressed_size is not None
    assert entries[0].compressed_size < 500
    assert entries[1].link_target == "a.txt"


def test_read_stops_at_the_cap() -> None:
    big = bytes(range(256)) * 4096  # 1 MiB
    for data in (make_tar_gz({"big.bin": big}), make_zip({"big.bin": big})):
        view = PackageView(data)
        member = view.read("big.bin", cap=1000)
        assert member.data == big[:1000]
        assert member.truncated
        files = list(view.iter_files(cap=10))
        assert [(m.entry.name, m.data, m.truncated) for m in files] == [("big.bin", big[:10], True)]


def test_listing_a_tar_gz_bomb_is_bounded() -> None:
    data = make_tar_gz({"zeros": bytes(8 * 1024 * 1024)})
    view = PackageView(data, max_stream_bytes=1024 * 1024)
    view.entries()
    assert view.stream_limit_hit
    assert view.listing_error is not None and "exceeds" in view.listing_error


def test_zip_with_too_many_declared_entries_is_not_parsed() -> None:
    raw = io.BytesIO()
    with zipfile.ZipFile(raw, "w") as zf:
        for i in range(30):
            zf.writestr(f"f{i}", b"")
    view = PackageView(raw.getvalue(), max_entries=10)
    assert view.entries() == []
    assert view.declared_entry_count == 30
    assert view.listing_error is not None


def test_unknown_bytes_have_no_entries() -> None:
    view = PackageView(b"definitely not an archive")
    assert view.format is ArchiveFormat.UNKNOWN
    assert view.entries() == []
    assert view.listing_error is not None
