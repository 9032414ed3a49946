"""RFC 8785 canonical JSON (fast path == reference), SHA-256 and RFC 3339 helpers."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from hallmark.canonical import (
    CanonicalizationError,
    canonical_bytes,
    is_rfc3339_utc,
    parse_rfc3339,
    sha256_hex,
    to_rfc3339,
    utc_now_rfc3339,
)

_SAFE_INT = st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1)
_JSON = st.recursive(
    st.none() | st.booleans() | _SAFE_INT | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5)
    ),
    max_leaves=25,
)


def test_rfc8785_appendix_example() -> None:
    # RFC 8785 section 3.2.3 / appendix: sorting, numbers, escapes and literals.
    value = {
        "numbers": [333333333.33333329, 1e30, 4.50, 2e-3, 0.000000000000000000000000001],
        "string": "\u20ac$\u000f\u000aA'\u0042\u0022\u005c\\\"/",
        "literals": [None, True, False],
    }
    expected = (
        '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],'
        '"string":"\u20ac$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}'
    ).encode()
    assert canonical_bytes(value) == expected


def test_keys_sorted_by_utf16_code_units() -> None:
    # U+E000 sorts after U+1F600 in UTF-16 (surrogates D83D..) but before it in code points.
    value = {"\ue000": 1, "\U0001f600": 2, "a": 3}
    assert canonical_bytes(value) == rfc8785.dumps(value)
    assert canonical_bytes(value).startswith(b'{"a":3,"\xf0\x9f\x98\x80":2')


@pytest.mark.parametrize(
    "value",
    [
        1.0,
        -0.0,
        2.5,
        1e-7,
        1e-6,
        1e16,
        1e21,
        123456789012345680.0,
        5e-324,
        0.1,
        -1234.5678,
        1.7976931348623157e308,
    ],
)
def test_floats_match_reference(value: float) -> None:
    assert canonical_bytes(value) == rfc8785.dumps(value)
    assert canonical_bytes({"x": [value]}) == rfc8785.dumps({"x": [value]})


@pytest.mark.parametrize(
    "value",
    [float("nan"), float("inf"), 2**53, -(2**53), {1: "x"}, "\ud800"],
)
def test_values_json_cannot_carry_are_rejected(value: Any) -> None:
    with pytest.raises(CanonicalizationError):
        canonical_bytes(value)
    with pytest.raises(ValueError):
        canonical_bytes({"nested": [value]})


def test_control_characters_and_non_ascii() -> None:
    value: dict[str, Any] = {"s": "tab\there\x00\x1f\x7f\u2028é😀", "é": True}
    assert canonical_bytes(value) == rfc8785.dumps(value)


@settings(max_examples=400, deadline=None)
@given(_JSON)
def test_fast_path_equals_reference(value: Any) -> None:
    assert canonical_bytes(value) == rfc8785.dumps(value)


def test_sha256_hex() -> None:
    assert sha256_hex(b"") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert sha256_hex(b"abc") == hashlib.sha256(b"abc").hexdigest()


def test_rfc3339_helpers() -> None:
    now = utc_now_rfc3339()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", now)
    assert is_rfc3339_utc(now)
    dt = datetime(2026, 11, 22, 20, 11, 0, 123456, tzinfo=UTC)
    assert to_rfc3339(dt) == "2026-11-22T20:11:00.123Z"
    assert to_rfc3339(dt.astimezone(timezone(timedelta(hours=2)))) == "2026-11-22T20:11:00.123Z"
    with pytest.raises(ValueError):
        to_rfc3339(datetime(2026, 1, 1))  # naive
    assert parse_rfc3339("2026-11-22T20:11:00.123456789Z") == datetime(
        2026, 11, 22, 20, 11, 0, 123456, tzinfo=UTC
    )
    assert parse_rfc3339("2026-11-22T22:11:00+02:00") == datetime(2026, 11, 22, 20, 11, tzinfo=UTC)
    for bad in ("2026-11-22 20:11:00Z", "2026-11-22T20:11:00+00:00", "2026-13-01T00:00:00Z", "yesterday"):
        assert not is_rfc3339_utc(bad)
