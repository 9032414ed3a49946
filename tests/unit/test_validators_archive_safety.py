from __future__ import annotations

import random
import struct
import tarfile
from typing import Any

import pytest

from hallmark.release.validators import PackageView, ValidationResult
from hallmark.release.validators.archive_safety import validate_archive_safety
from tests.unit.test_validators_support import Member, clean_tar_gz, clean_zip, config, make_tar_gz, make_zip

ZEROS = bytes(20 * 1024 * 1024)  # 20 MiB of zeros: compresses about 1000:1


def _safety(data: bytes, **cfg: Any) -> ValidationResult:
    return validate_archive_safety(PackageView(data), config(**cfg))


def _checks(result: ValidationResult) -> set[str]:
    return {f["check"] for f in result.findings}


def test_clean_packages_pass() -> None:
    for data in (clean_tar_gz(), clean_zip()):
        result = _safety(data)
        assert result.passed, result.reasons
        assert result.stats["entries"] == 5
        assert result.stats["verified_bytes"] == result.stats["declared_bytes"]


@pytest.mark.parametrize(
    ("name", "check"),
    [
        ("../evil.sh", "path-traversal"),
        ("pkg/../../evil.sh", "path-traversal"),
        ("/etc/cron.d/evil", "absolute-path"),
        ("..\\..\\evil.bat", "backslash"),
        ("C:/Windows/evil.dll", "drive-letter"),
    ],
)
def test_zip_slip_is_rejected(name: str, check: str) -> None:
    result = _safety(make_zip({"ok.txt": b"ok", name: b"payload"}))
    assert not result.passed
    assert check in _checks(result)
    assert any(f["path"] == name for f in result.findings)


@pytest.mark.parametrize(
    ("name", "check"), [("../evil.sh", "path-traversal"), ("/tmp/evil.sh", "absolute-path")]
)
def test_tar_traversal_is_rejected(name: str, check: str) -> None:
    result = _safety(make_tar_gz({"ok.txt": b"ok", name: b"payload"}))
    assert not result.passed
    assert check in _checks(result)


@pytest.mark.parametrize(
    "members",
    [
        [Member("link", tarfile.SYMTYPE, linkname="../../etc/passwd")],
        [Member("sub/link", tarfile.SYMTYPE, linkname="../../outside")],
        [Member("abs", tarfile.SYMTYPE, linkname="/etc/passwd")],
        [Member("up", tarfile.SYMTYPE, linkname="."), Member("z", tarfile.SYMTYPE, linkname="up/../../x")],
    ],
)
def test_symlink_outside_the_root_is_rejected(members: list[Member]) -> None:
    result = _safety(make_tar_gz({"ok.txt": b"ok"}, members))
    assert not result.passed
    assert "symlink-escape" in _checks(result)


def test_symlink_chain_through_another_link_is_caught() -> None:
    # "base" is the root itself, so "base/../x" is lexically ./x but really ../x
    members = [
        Member("base", tarfile.SYMTYPE, linkname="."),
        Member("esc", tarfile.SYMTYPE, linkname="base/../x"),
    ]
    result = _safety(make_tar_gz({"x": b"x"}, members))
    assert "symlink-escape" in _checks(result)
    assert any(f["path"] == "esc" for f in result.findings)
    # the same shape through a real folder stays inside: sub/../x is ./x
    members = [
        Member("sub", tarfile.DIRTYPE, mode=0o755),
        Member("base", tarfile.SYMTYPE, linkname="sub"),
        Member("esc", tarfile.SYMTYPE, linkname="base/../x"),
    ]
    result = _safety(make_tar_gz({"x": b"x"}, members))
    assert result.passed, result.reasons
    # a member written through a link that leaves the root
    members = [Member("out", tarfile.SYMTYPE, linkname=".."), Member("out/evil.sh", data=b"x")]
    result = _safety(make_tar_gz({}, members))
    assert "symlink-escape" in _checks(result)


def test_symlink_inside_the_root_and_loops() -> None:
    ok = _safety(make_tar_gz({"pkg/a.txt": b"a"}, [Member("pkg/link", tarfile.SYMTYPE, linkname="a.txt")]))
    assert ok.passed, ok.reasons
    loop = _safety(
        make_tar_gz(
            {}, [Member("a", tarfile.SYMTYPE, linkname="b"), Member("b", tarfile.SYMTYPE, linkname="a")]
        )
    )
    assert "link-loop" in _checks(loop)


def test_zip_symlink_outside_is_rejected() -> None:
    result = _safety(make_zip({"ok.txt": b"ok"}, symlinks={"evil": "../../../root/.ssh"}))
    assert not result.passed
    assert "symlink-escape" in _checks(result)


def test_hardlink_outside_or_dangling_is_rejected() -> None:
    bad = _safety(make_tar_gz({"ok.txt": b"ok"}, [Member("h", tarfile.LNKTYPE, linkname="../../etc/shadow")]))
    assert "hardlink-escape" in _checks(bad)
    dangling = _safety(make_tar_gz({}, [Member("h", tarfile.LNKTYPE, linkname="missing.txt")]))
    assert "hardlink-escape" in _checks(dangling)
    good = _safety(make_tar_gz({"ok.txt": b"ok"}, [Member("h", tarfile.LNKTYPE, linkname="ok.txt")]))
    assert good.passed, good.reasons


@pytest.mark.parametrize("kind", [tarfile.CHRTYPE, tarfile.BLKTYPE, tarfile.FIFOTYPE])
def test_device_files_and_fifos_are_rejected(kind: bytes) -> None:
    result = _safety(make_tar_gz({"ok.txt": b"ok"}, [Member("dev/evil", kind)]))
    assert not result.passed
    assert "special-file" in _checks(result)


def test_setuid_files_are_rejected() -> None:
    result = _safety(make_tar_gz({}, [Member("bin/tool", data=b"\x7fELF", mode=0o4755)]))
    assert "setuid" in _checks(result)


def test_too_many_entries() -> None:
    files = {f"f{i:03}.txt": b"x" for i in range(21)}
    for data in (make_tar_gz(files), make_zip(files)):
        result = _safety(data, max_entries=20)
        assert not result.passed
        assert "too-many-entries" in _checks(result)
        assert any("too many entries (limit 20 entries)" in r for r in result.reasons)


def test_zip_bomb_is_rejected_by_ratio() -> None:
    result = _safety(make_zip({"readme.txt": b"hi", "zeros.bin": ZEROS}))
    assert not result.passed
    assert "entry-ratio" in _checks(result)
    assert result.stats["verified_bytes"] == 0  # never decompressed: the declared sizes already told


def test_tar_gz_bomb_is_rejected_by_ratio() -> None:
    result = _safety(make_tar_gz({"readme.txt": b"hi", "zeros.bin": ZEROS}))
    assert not result.passed
    assert {"entry-ratio", "total-ratio"} & _checks(result)


def test_total_uncompressed_limit_is_enforced() -> None:
    incompressible = random.Random(7).randbytes(3 * 1024 * 1024)
    result = _safety(make_tar_gz({"a.bin": incompressible}), max_total_uncompressed=1024 * 1024)
    assert not result.passed
    assert "total-size" in _checks(result)


def test_data_hidden_after_the_tar_end_is_rejected() -> None:
    hidden = bytes(range(256)) * 1024  # 256 KiB after the end-of-archive marker
    result = _safety(make_tar_gz({"ok.txt": b"ok"}, trailing=hidden))
    assert not result.passed
    assert "trailing-data" in _checks(result)


def test_nested_archives_are_inspected_to_the_depth_limit() -> None:
    level3 = make_zip({"deep.txt": b"deep"})
    level2 = make_zip({"l3.zip": level3})
    level1 = make_zip({"l2.zip": level2})
    too_deep = _safety(make_tar_gz({"l1.zip": level1}))
    assert not too_deep.passed
    assert "nested-depth" in _checks(too_deep)
    assert any(f["path"] == "l1.zip!/l2.zip!/l3.zip" for f in too_deep.findings)
    ok = _safety(make_tar_gz({"l1.zip": level2}))
    assert ok.passed, ok.reasons
    assert ok.stats["nested_archives"] == 2


def test_a_bomb_inside_a_nested_archive_is_found() -> None:
    result = _safety(make_tar_gz({"vendor/inner.zip": make_zip({"zeros.bin": ZEROS})}))
    assert not result.passed
    assert any(
        f["check"] == "entry-ratio" and f["path"] == "vendor/inner.zip!/zeros.bin" for f in result.findings
    )


def test_overlapping_zip_entries_are_rejected() -> None:
    data = bytearray(make_zip({"a.txt": b"a" * 1000, "b.txt": b"b" * 1000}))
    # point the second central directory record at the first local header
    second = data.find(b"PK\x01\x02", data.find(b"PK\x01\x02") + 4)
    struct.pack_into("<I", data, second + 42, 0)
    result = _safety(bytes(data))
    assert not result.passed
    assert "overlapping-entries" in _checks(result)


def test_a_lying_declared_size_is_caught_by_bounded_decompression() -> None:
    data = bytearray(make_zip({"zeros.bin": ZEROS}))
    central = data.find(b"PK\x01\x02")
    struct.pack_into("<I", data, central + 24, 1000)  # declare 1000 bytes for 20 MiB
    result = _safety(bytes(data))
    assert not result.passed  # the declared sizes look harmless: only streaming tells
    assert {"corrupt", "size-mismatch"} & _checks(result)
    assert result.stats["verified_bytes"] <= 1001


def test_corrupt_archive_fails() -> None:
    data = clean_tar_gz()
    result = _safety(data[: len(data) // 2])
    assert not result.passed
    assert "corrupt" in _checks(result)


def test_not_an_archive_fails() -> None:
    result = _safety(b"plain text is not a package")
    assert not result.passed
    assert "not a .tar.gz or .zip archive" in result.reasons[0]


def test_encrypted_zip_members_are_rejected_and_do_not_hide_the_rest() -> None:
    data = bytearray(make_zip({"secret.bin": b"s" * 100, "b.txt": b"visible"}))
    for signature, flag_offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        at = data.find(signature)  # the first member's local and central headers
        struct.pack_into("<H", data, at + flag_offset, 0x1)
    view = PackageView(bytes(data))
    assert [e.encrypted for e in view.entries()] == [True, False]
    assert "encrypted" in _checks(validate_archive_safety(view, config()))
    members = list(view.iter_files(cap=100))
    assert members[0].error is not None and members[1].data == b"visible"
