"""Canonical JSON (RFC 8785, JCS), SHA-256 and RFC 3339 helpers.

Everything Hallmark signs or hashes goes through :func:`canonical_bytes`. The reference
implementation is the ``rfc8785`` package; a fast path hands plain shapes (dicts with
BMP string keys, lists, strings, bools, ``None`` and safe integers, i.e. no floats) to the
C JSON encoder, whose output is byte-identical to RFC 8785 for exactly that shape
(sorted keys, no whitespace, the same minimal string escapes with lowercase ``\\u00xx``,
UTF-8). Anything else (floats, non-BMP keys, ``Mapping`` subclasses, ...) goes to
``rfc8785``. ``tests/unit/test_canonical.py`` checks the equivalence with hypothesis.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from datetime import UTC, datetime
from typing import Any, Final, Literal

import rfc8785

__all__ = [
    "CanonicalizationError",
    "as_utc",
    "canonical_bytes",
    "digest_of",
    "is_rfc3339_utc",
    "parse_rfc3339",
    "sha256_hex",
    "to_rfc3339",
    "utc_now_rfc3339",
]

CanonicalizationError = rfc8785.CanonicalizationError

_INT_MAX: Final = 2**53 - 1
_INT_MIN: Final = -(2**53) + 1
# Keys are sorted by UTF-16 code units in RFC 8785 and by code points in Python: the two
# orders agree as long as no key holds a character at or above U+D800.
_SORT_SAFE_LIMIT: Final = "\ud800"

_encode = json.JSONEncoder(
    skipkeys=False,
    ensure_ascii=False,
    check_circular=True,
    allow_nan=False,
    sort_keys=True,
    separators=(",", ":"),
).encode


def _fast_safe(obj: Any) -> bool:
    """True when the C JSON encoder renders ``obj`` exactly as RFC 8785 does.

    Floats qualify when ``repr`` (which the encoder uses) prints them in plain positional
    form without a trailing ``.0``: both Python and ECMAScript then print the shortest
    round-tripping digits, so the text is identical. Exponent forms (``1e-07``) and
    integral floats (``2.0``, which RFC 8785 prints as ``2``) go to ``rfc8785``.
    """
    t = type(obj)
    if t is str or t is bool or obj is None:
        return True
    if t is int:
        return _INT_MIN <= obj <= _INT_MAX
    if t is dict:
        for k, v in obj.items():
            if type(k) is not str or not (k.isascii() or max(k) < _SORT_SAFE_LIMIT):
                return False
            tv = type(v)
            if tv is str or tv is bool or v is None:
                continue
            if not _fast_safe(v):
                return False
        return True
    if t is list or t is tuple:
        return all(_fast_safe(v) for v in obj)
    if t is float:
        r = float.__repr__(obj)
        return math.isfinite(obj) and "e" not in r and not r.endswith(".0")
    return False  # Mapping subclasses, enums, str/int subclasses, ...: the reference implementation


def canonical_bytes(obj: Any) -> bytes:
    """RFC 8785 canonical JSON of ``obj`` as UTF-8 bytes.

    Raises ``CanonicalizationError`` (a ``ValueError``) for values JSON cannot carry exactly:
    NaN/infinity, integers beyond +-(2**53 - 1), non-string keys, lone surrogates.
    """
    if _fast_safe(obj):
        try:
            return _encode(obj).encode("utf-8")
        except UnicodeEncodeError:
            pass  # lone surrogates: let the reference implementation raise its error
    return rfc8785.dumps(obj)


def sha256_hex(data: bytes) -> str:
    """Lowercase hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def digest_of(obj: Any) -> str:
    """``sha256_hex(canonical_bytes(obj))``."""
    return sha256_hex(canonical_bytes(obj))


_RFC3339_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?Z$")
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:[Zz]|[+-]\d{2}:\d{2})$")
_FRACTION = re.compile(r"\.(\d+)")


def as_utc(moment: datetime) -> datetime:
    """Refuse naive datetimes (a timestamp must be unambiguous); convert aware ones to UTC."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("naive datetime: pass an aware (UTC) datetime")
    return moment.astimezone(UTC)


def to_rfc3339(dt: datetime, timespec: Literal["milliseconds", "auto"] = "milliseconds") -> str:
    """``dt`` as RFC 3339 UTC with a ``Z``: with millisecond precision by default
    (``2026-11-22T20:11:00.123Z``, the audit log's form), or with ``timespec="auto"`` seconds
    and microseconds only when non-zero (``2026-11-22T20:11:00Z``, the domain records' form).

    Naive datetimes are rejected.
    """
    return as_utc(dt).isoformat(timespec=timespec).replace("+00:00", "Z")


def utc_now_rfc3339() -> str:
    """The current time as RFC 3339 UTC (``...Z``, millisecond precision)."""
    return to_rfc3339(datetime.now(UTC))


def is_rfc3339_utc(value: str) -> bool:
    """True for ``YYYY-MM-DDTHH:MM:SS[.fraction]Z`` strings that name a real instant."""
    if not _RFC3339_UTC.match(value):
        return False
    try:
        parse_rfc3339(value)
    except ValueError:
        return False
    return True


def parse_rfc3339(value: str) -> datetime:
    """Parse an RFC 3339 timestamp (offset required) into an aware UTC datetime; fractions
    beyond microseconds are cut.

    Raises ``ValueError`` for anything else (a naive time, a date only, junk).
    """
    if not isinstance(value, str) or not _RFC3339.match(value):
        raise ValueError(f"not an RFC 3339 timestamp with offset: {value!r}")
    text = value.upper()
    frac = _FRACTION.search(text)
    if frac and len(frac.group(1)) > 6:  # Python keeps microseconds: truncate nanoseconds
        text = text.replace(frac.group(0), "." + frac.group(1)[:6])
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)
