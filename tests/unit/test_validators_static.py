from __future__ import annotations

import pytest

from hallmark.release.validators import PackageView
from hallmark.release.validators.static import evaluate_license, validate_static
from tests.unit.test_validators_support import clean_tar_gz, clean_zip, config, meta_for


def _run(data: bytes, **meta: object) -> tuple[bool, list[str]]:
    m = meta_for(data, **meta)  # type: ignore[arg-type]
    result = validate_static(PackageView(data, m), config())
    return result.passed, result.reasons


def test_clean_packages_pass() -> None:
    assert _run(clean_tar_gz())[0]
    assert _run(clean_zip(), filename="demo-1.0.0.zip")[0]
    assert _run(clean_tar_gz(), filename="demo-1.0.0.tgz")[0]


def test_bad_checksum_fails() -> None:
    passed, reasons = _run(clean_tar_gz(), sha256="0" * 64)
    assert not passed
    assert any(r.startswith("checksum:") and "does not match" in r for r in reasons)


def test_disallowed_license_fails() -> None:
    passed, reasons = _run(clean_tar_gz(), license="GPL-3.0-only")
    assert not passed
    assert any("license GPL-3.0-only is not allowed" in r for r in reasons)


@pytest.mark.parametrize(
    ("expression", "allowed"),
    [
        ("MIT", True),
        ("mit", True),
        ("MIT OR GPL-3.0-only", True),  # OR: one fully allowed alternative is enough
        ("GPL-3.0-only OR AGPL-3.0-only", False),
        ("MIT AND GPL-3.0-only", False),  # AND: every operand must be allowed
        ("(MIT AND BSD-3-Clause) OR GPL-2.0-only", True),
        ("Apache-2.0 WITH LLVM-exception", True),  # WITH: judged by the license itself
        ("GPL-2.0-only WITH Classpath-exception-2.0", False),
        ("LicenseRef-proprietary", False),
        ("NOASSERTION", False),
        ("MIT AND", False),
    ],
)
def test_license_policy(expression: str, allowed: bool) -> None:
    assert evaluate_license(expression, config().license_allow_list).allowed is allowed


def test_format_is_judged_by_bytes_and_the_name_must_agree() -> None:
    passed, reasons = _run(clean_tar_gz(), filename="demo-1.0.0.zip")
    assert not passed
    assert any("does not match the detected format tar.gz" in r for r in reasons)
    junk = b"MZ" + bytes(100)
    passed, reasons = _run(junk)
    assert not passed
    assert any("not a .tar.gz or .zip package" in r for r in reasons)


def test_size_limit() -> None:
    data = clean_tar_gz()
    result = validate_static(PackageView(data, meta_for(data)), config(max_size=100))
    assert not result.passed
    assert any("exceeds the limit of 100 bytes" in r for r in result.reasons)
