from __future__ import annotations

import json

import pytest

from hallmark.release.validators import PackageView, ValidationResult
from hallmark.release.validators.compliance import find_pii, iban_valid, luhn_valid, validate_compliance
from tests.unit.test_validators_support import clean_tar_gz, clean_zip, config, make_tar_gz

# Personal-looking values are assembled at run time so that no scanner flags the repository.
EMAIL = "jane.roe" + "@" + "corp-mail.net"
CARD = "4111 " + " ".join(["1111"] * 3)  # a Luhn-valid Visa-shaped test number
IBAN = "GB82 " + "WEST 1234 5698 7654 32"
SSN = "536" + "-22-" + "8726"
NINO = "AB" + "123456" + "C"
DNI = "12345678" + "Z"


def _compliance(files: dict[str, bytes]) -> ValidationResult:
    return validate_compliance(PackageView(make_tar_gz(files)), config())


def test_clean_packages_pass() -> None:
    for data in (clean_tar_gz(), clean_zip()):
        result = validate_compliance(PackageView(data), config())
        assert result.passed, result.reasons


def test_email_and_card_fail_with_locations_and_never_the_values() -> None:
    text = f"# customers\n\ncontact = '{EMAIL}'\npayment:\n  card: {CARD}\n"
    result = _compliance({"data/customers.yaml": text.encode()})
    assert not result.passed
    assert result.stats["counts"]["email"] == 1
    assert result.stats["counts"]["card"] == 1
    locations = {(f["kind"], f["file"], f["line"], f["column"]) for f in result.findings}
    assert locations == {("email", "data/customers.yaml", 3, 12), ("card", "data/customers.yaml", 5, 9)}
    dumped = json.dumps(result.model_dump(mode="json"))
    for raw in (EMAIL, CARD, CARD.replace(" ", ""), "jane.roe", "4111 1111"):
        assert raw not in dumped
    assert any("personal data found: 1 email, 1 card" in r for r in result.reasons)


def test_each_kind_is_detected_and_verified() -> None:
    text = "\n".join(
        [
            f"iban {IBAN}",
            f"ssn {SSN}",
            f"nino {NINO}",
            f"dni {DNI}",
            "call +44 20 7946 0958 or (212) 555-0199 or 020 7946 0958",
        ]
    )
    findings, _ = find_pii(text, "f.txt")
    kinds = sorted((f["kind"], f.get("subtype", "")) for f in findings)
    assert kinds == [
        ("iban", ""),
        ("national_id", "es_dni"),
        ("national_id", "uk_nino"),
        ("national_id", "us_ssn"),
        ("phone", "international"),
        ("phone", "nanp"),
        ("phone", "uk"),
    ]


@pytest.mark.parametrize(
    "text",
    [
        "4111 1111 1111 1112",  # Luhn fails
        "1700000000000",  # a millisecond timestamp, no card issuer
        "GB83 WEST 1234 5698 7654 32",  # mod-97 fails
        "666-22-8726",  # SSN area 666 is never issued
        "078-05-1120",  # the well-known sample SSN
        "QQ123456C",  # QQ is not a valid NINO prefix
        "12345678A",  # wrong DNI letter
        "support@example.com, root@localhost, git@github.com",
        "version 1.22.333 and 2024-01-15 and 10.0.0.1",
    ],
)
def test_near_misses_are_not_pii(text: str) -> None:
    findings, _ = find_pii(text, "f.txt")
    assert findings == []


def test_checksums() -> None:
    assert luhn_valid(CARD.replace(" ", ""))
    assert not luhn_valid("4111111111111112")
    assert iban_valid(IBAN)
    assert not iban_valid("XX82" + IBAN[4:])


def test_metadata_emails_are_ignored_and_counted() -> None:
    pyproject = f'[project]\nname = "x"\nauthors = [{{ name = "Jane", email = "{EMAIL}" }}]\n'
    result = _compliance({"pyproject.toml": pyproject.encode(), "AUTHORS": EMAIL.encode()})
    assert result.passed, result.reasons
    assert result.stats["ignored_metadata_emails"] == 2
    moved = _compliance({"src/app.py": pyproject.encode()})
    assert not moved.passed


def test_binary_files_are_skipped() -> None:
    # real binary data: NULs aside, mostly control bytes and invalid UTF-8 (a PNG, say); an email
    # in its bytes is not personal data in a text file (a NUL or two alone would not make it binary)
    blob = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8 + EMAIL.encode() + b"\x00"
    result = _compliance({"img.png": blob})
    assert result.passed
    assert result.stats["files_skipped_binary"] == 1


def test_findings_are_capped_and_the_rest_counted() -> None:
    text = "\n".join(f"user{i}" + "@" + "corp-mail.net" for i in range(250))
    result = _compliance({"list.txt": text.encode()})
    assert result.stats["counts"]["email"] == 250
    assert len(result.findings) == 200
    assert result.stats["findings_omitted"] == 50
