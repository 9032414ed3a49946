"""Compliance: personal data (PII) in the package's text files.

Kinds (each match is verified before it counts, to keep false positives down):

* ``email``: addresses, except reserved example domains (RFC 2606/6761: ``example.com``,
  ``*.test``, ``*.invalid``, ``localhost``, ...), ``git@`` remotes and no-reply addresses, and,
  with ``pii_ignore_metadata_emails`` (default), addresses in package metadata files where
  maintainers publish them on purpose (``pyproject.toml``, ``package.json``, ``AUTHORS``,
  ``CODEOWNERS``, ``LICENSE``, ``CHANGELOG``, ``.hallmark/``, ...; counted as ignored);
* ``phone``: E.164 / international (``+`` and 8-15 digits), North American
  (``(212) 555-0199``, ``212-555-0199``; NANP area and exchange rules) and UK national
  (``020 7946 0958``, ``07700 900123``) formats;
* ``card``: 13-19 digits, optionally grouped by one kind of separator, with a known issuer
  prefix and length, and a valid Luhn check digit;
* ``iban``: known country, the country's length, and ISO 13616 mod-97 = 1;
* ``national_id``: US SSN (``AAA-GG-SSSS``; not area 000, 666 or 9xx, group 00, serial 0000,
  nor well-known sample numbers), UK National Insurance numbers (valid prefix letters, suffix
  A-D), Spanish DNI (8 digits and the mod-23 control letter).

A result holds counts per kind and locations (file, line, column, kind) and never a matched
value. Every file is read, nested archives included (paths ``outer.zip!/inner/file``), in any
of the encodings :mod:`._text` detects; binary data (not text even when NULs are ignored) is
skipped. Any PII fails the validator, and so does a scan that could not cover the package.
"""

from __future__ import annotations

import bisect
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Final

from hallmark.release.validators._text import LineIndex, ScanStats, TextFile, iter_text_files
from hallmark.release.validators.archive import PackageView
from hallmark.release.validators.model import ValidationResult, ValidatorConfig

__all__ = ["KINDS", "find_pii", "iban_valid", "luhn_valid", "validate_compliance"]

KINDS: Final = ("email", "phone", "card", "iban", "national_id")


def luhn_valid(digits: str) -> bool:
    """True when ``digits`` ends with a valid Luhn check digit."""
    if not digits.isdigit():
        return False
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _card_brand_ok(digits: str) -> bool:
    n = len(digits)
    two, three, four = int(digits[:2]), int(digits[:3]), int(digits[:4])
    if digits[0] == "4":
        return n in (13, 16, 19)
    if 51 <= two <= 55 or 2221 <= four <= 2720:
        return n == 16
    if two in (34, 37):
        return n == 15
    if four == 6011 or two == 65 or 644 <= three <= 649:
        return 16 <= n <= 19
    if 3528 <= four <= 3589:
        return 16 <= n <= 19
    if 300 <= three <= 305 or two in (36, 38, 39):
        return 14 <= n <= 19
    if two == 62:
        return 16 <= n <= 19
    return False


_IBAN_LENGTHS: Final[dict[str, int]] = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22,
    "BR": 29, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28, "EE": 20,
    "EG": 29, "ES": 24, "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18,
    "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27,
    "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21,
    "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MR": 27, "MT": 31, "MU": 30, "NL": 18, "NO": 15,
    "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "SA": 24, "SC": 31,
    "SE": 24, "SI": 19, "SK": 24, "SM": 27, "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22,
    "VG": 24, "XK": 20,
}  # fmt: skip


def iban_valid(text: str) -> bool:
    """True for an IBAN of a known country, of its length, with mod-97 = 1 (spaces ignored)."""
    iban = text.replace(" ", "").upper()
    if _IBAN_LENGTHS.get(iban[:2]) != len(iban) or not iban.isalnum():
        return False
    rotated = iban[4:] + iban[:4]
    number = "".join(str(int(ch, 36)) for ch in rotated)
    return int(number) % 97 == 1


# Every pattern starts with one plain character class, which lets the regex engine skip
# quickly to plausible starts; what may not precede a match is a width-2 negative lookbehind
# right after that first character, so runs of digits or letters cost one step per character.
_EMAIL_LOCAL: Final = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._%+-")
_EMAIL_DOMAIN = re.compile(
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}(?![A-Za-z0-9-])"
)
_RESERVED_DOMAIN = re.compile(
    r"(?i)(?:^|\.)(?:example\.(?:com|net|org)|example|test|invalid|localhost|local)$|noreply\.github\.com$"
)
_PHONE_INTL = re.compile(r"\+(?<![\w+]\+)[1-9](?:[ .-]?\(?\d{1,4}\)?){2,6}(?!\w)")
_PHONE_NANP = re.compile(
    r"(?:\((?<![\w.+-]\()[2-9]\d\d\) ?|[2-9](?<![\w.+-][2-9])\d\d[.-])[2-9]\d\d[.-]\d{4}(?![\w-]|\.\d)"
)
_PHONE_UK = re.compile(r"0(?<![\w.+-]0)[12378]\d{1,3}[ -]\d{3,4}[ -]?\d{3,4}(?![\w-]|\.\d)")
_CARD = re.compile(r"\d(?<![\d.-]\d)(?:[ -]?\d){12,18}(?![\d-]|\.\d)")
_IBAN = re.compile(
    r"[A-Z](?<![A-Za-z0-9][A-Z])[A-Z]\d\d(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?(?![A-Za-z0-9])"
)
_SSN = re.compile(r"\d(?<![\d-]\d)\d\d-\d\d-\d\d\d\d(?![\d-])")
_NINO = re.compile(
    r"[A-CEGHJ-PR-TW-Z](?<![A-Za-z0-9][A-Z])[A-CEGHJ-NPR-TW-Z] ?\d\d ?\d\d ?\d\d ?[A-D](?![A-Za-z0-9])"
)
_DNI = re.compile(r"\d(?<![A-Za-z0-9]\d)\d{7}-?[A-Z](?![A-Za-z0-9])")
_DNI_LETTERS: Final = "TRWAGMYFPDXBNJZSQVHLCKE"
_SAMPLE_SSNS: Final = frozenset({"078-05-1120", "219-09-9999", "123-45-6789"})
_BAD_NINO_PREFIX: Final = frozenset({"BG", "GB", "KN", "NK", "NT", "TN", "ZZ"})

_METADATA_FILES = re.compile(
    r"(?i)^(?:pyproject\.toml|setup\.py|setup\.cfg|package\.json|pkg-info|metadata|codeowners|\.mailmap"
    r"|(?:authors|contributors|maintainers|license|licence|copying|notice|changelog|changes|history)(?:\.\w+)?)$"
)


def _card_ok(m: re.Match[str]) -> str | None:
    raw = m.group(0)
    separators = {ch for ch in raw if not ch.isdigit()}
    digits = "".join(ch for ch in raw if ch.isdigit())
    if len(separators) > 1 or not 13 <= len(digits) <= 19:
        return None
    return "card" if _card_brand_ok(digits) and luhn_valid(digits) else None


def _iban_ok(m: re.Match[str]) -> str | None:
    return "iban" if iban_valid(m.group(0)) else None


def _ssn_ok(m: re.Match[str]) -> str | None:
    area, group, serial = m.group(0).split("-")
    if area in ("000", "666") or area[0] == "9" or group == "00" or serial == "0000":
        return None
    return None if m.group(0) in _SAMPLE_SSNS else "us_ssn"


def _nino_ok(m: re.Match[str]) -> str | None:
    return None if m.group(0)[:2] in _BAD_NINO_PREFIX else "uk_nino"


def _dni_ok(m: re.Match[str]) -> str | None:
    text = m.group(0)
    return "es_dni" if _DNI_LETTERS[int(text[:8]) % 23] == text[-1] else None


def _phone_intl_ok(m: re.Match[str]) -> str | None:
    digits = sum(ch.isdigit() for ch in m.group(0))
    return "international" if 8 <= digits <= 15 else None


def _phone_nanp_ok(m: re.Match[str]) -> str | None:
    return "nanp"


def _phone_uk_ok(m: re.Match[str]) -> str | None:
    digits = sum(ch.isdigit() for ch in m.group(0))
    return "uk" if digits in (10, 11) else None


@dataclass(frozen=True, slots=True)
class _Detector:
    kind: str
    pattern: re.Pattern[str]
    check: Callable[[re.Match[str]], str | None]


# Order matters: a later match overlapping an earlier one is dropped (a card is not a phone).
_DETECTORS: Final[tuple[_Detector, ...]] = (
    _Detector("card", _CARD, _card_ok),
    _Detector("iban", _IBAN, _iban_ok),
    _Detector("national_id", _SSN, _ssn_ok),
    _Detector("national_id", _NINO, _nino_ok),
    _Detector("national_id", _DNI, _dni_ok),
    _Detector("phone", _PHONE_INTL, _phone_intl_ok),
    _Detector("phone", _PHONE_NANP, _phone_nanp_ok),
    _Detector("phone", _PHONE_UK, _phone_uk_ok),
)


def _emails(text: str) -> Iterator[tuple[int, int, str, str]]:
    """``(start, end, local part, domain)`` of each address, found from its ``@``."""
    at = text.find("@")
    while at >= 0:
        start = at
        while start > 0 and at - start <= 64 and text[start - 1] in _EMAIL_LOCAL:
            start -= 1
        if 1 <= at - start <= 64 and not (start > 0 and text[start - 1] in _EMAIL_LOCAL):
            m = _EMAIL_DOMAIN.match(text, at + 1)
            if m is not None:
                yield start, m.end(), text[start:at], m.group(0)
        at = text.find("@", at + 1)


def find_pii(
    text: str, path: str, *, skip_emails: bool = False, window: TextFile | None = None
) -> tuple[list[dict[str, Any]], int]:
    """PII locations in one text (never values), and the number of emails skipped as ignorable.

    With ``window`` (a window of a larger file), locations are those in the whole file and only
    matches the window owns are reported.
    """
    index = window.index() if window is not None else LineIndex(text)

    def owned(start: int, end: int) -> bool:
        return window is None or window.owns(start, end)

    starts: list[int] = []  # claimed spans, sorted and disjoint
    ends: list[int] = []
    findings: list[dict[str, Any]] = []
    ignored = 0

    def free(start: int, end: int) -> bool:
        i = bisect.bisect_right(starts, start)
        if i > 0 and ends[i - 1] > start:
            return False
        return not (i < len(starts) and starts[i] < end)

    def claim(start: int, end: int) -> None:
        i = bisect.bisect_right(starts, start)
        starts.insert(i, start)
        ends.insert(i, end)

    def add(kind: str, subtype: str | None, start: int, end: int) -> None:
        claim(start, end)
        line, column = index.locate(start)
        finding: dict[str, Any] = {"file": path, "line": line, "column": column, "kind": kind}
        if subtype and subtype != kind:
            finding["subtype"] = subtype
        findings.append(finding)

    for start, end, local, domain in _emails(text):
        if _RESERVED_DOMAIN.search(domain) or local.lower() in ("git", "noreply", "no-reply"):
            continue
        if skip_emails:
            ignored += int(owned(start, end))
            claim(start, end)
            continue
        if owned(start, end):
            add("email", None, start, end)
        else:
            claim(start, end)
    for detector in _DETECTORS:
        for m in detector.pattern.finditer(text):
            start = m.start()
            if not free(start, m.end()):
                continue
            subtype = detector.check(m)
            if subtype is not None:
                if owned(start, m.end()):
                    add(detector.kind, subtype, start, m.end())
                else:
                    claim(start, m.end())
    return findings, ignored


def validate_compliance(pkg: PackageView, config: ValidatorConfig) -> ValidationResult:
    """PII detection (see the module doc); counts and locations only, never values."""
    if not pkg.is_archive:
        return ValidationResult.build(
            "compliance",
            passed=False,
            reasons=[f"not an archive (detected: {pkg.format.value}); nothing scanned"],
        )
    scan = ScanStats()
    findings: list[dict[str, Any]] = []
    ignored = 0
    for tf in iter_text_files(pkg, config, scan):
        base = tf.path.rsplit("/", 1)[-1]
        metadata = tf.path.startswith(".hallmark/") or bool(_METADATA_FILES.match(base))
        found, skipped = find_pii(
            tf.text, tf.path, skip_emails=config.pii_ignore_metadata_emails and metadata, window=tf
        )
        findings += found
        ignored += skipped
    counts = Counter(f["kind"] for f in findings)
    files = sorted({f["file"] for f in findings})
    reasons: list[str] = []
    complete = pkg.listing_error is None and scan.complete
    if pkg.listing_error is not None:
        reasons.append(f"archive could not be read completely, the scan is incomplete: {pkg.listing_error}")
    reasons += scan.incomplete_reasons()
    if findings:
        first = min(findings, key=lambda f: (f["file"], f["line"], f["column"]))
        summary = ", ".join(f"{counts[k]} {k}" for k in KINDS if counts[k])
        reasons.append(
            f"personal data found: {summary} in {len(files)} file{'s' if len(files) != 1 else ''} "
            f"(first at {first['file']}:{first['line']}:{first['column']}); remove or anonymise it"
        )
    passed = complete and not findings
    if passed:
        reasons.append(f"no personal data found in {scan.files_scanned} text files")
    stats: dict[str, Any] = {
        **scan.as_dict(),
        "counts": {k: counts[k] for k in KINDS},
        "files_with_pii": len(files),
        "ignored_metadata_emails": ignored,
    }
    return ValidationResult.build(
        "compliance", passed=passed, reasons=reasons, findings=findings, stats=stats
    )
