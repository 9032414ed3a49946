"""hallmark.pagination: every list route's cursor (one helper)."""

from __future__ import annotations

import base64
import json

import pytest

from hallmark.pagination import InvalidNextToken, encode_token, paginate

ITEMS = [{"id": f"r{i}", "at": f"2026-12-0{i % 3 + 1}"} for i in range(7)]


def key(d: dict[str, str]) -> tuple[str, ...]:
    return (d["at"], d["id"])


def walk(limit: int, newest_first: bool, filters: dict[str, str] | None = None) -> list[list[str]]:
    pages, token = [], None
    while True:
        page, token = paginate(ITEMS, key=key, limit=limit, next_token=token, route="GET /things",
                               filters=filters, newest_first=newest_first)
        pages.append([d["id"] for d in page])
        if token is None:
            return pages


@pytest.mark.parametrize("newest_first", [False, True])
def test_pages_cover_every_item_once_in_order(newest_first: bool) -> None:
    pages = walk(3, newest_first)
    assert [len(p) for p in pages] == [3, 3, 1]
    flat = [i for p in pages for i in p]
    expected = [d["id"] for d in sorted(ITEMS, key=key, reverse=newest_first)]
    assert flat == expected


def test_an_exact_multiple_ends_without_a_token() -> None:
    page, token = paginate(ITEMS[:6], key=key, limit=3, next_token=None, route="GET /things")
    page2, token2 = paginate(ITEMS[:6], key=key, limit=3, next_token=token, route="GET /things")
    assert len(page) == len(page2) == 3 and token is not None and token2 is None


def test_a_record_added_before_the_cursor_does_not_shift_the_next_page() -> None:
    page, token = paginate(ITEMS, key=key, limit=3, next_token=None, route="GET /things")
    earlier = {"id": "r0a", "at": "2026-12-01"}
    rest, _ = paginate([earlier, *ITEMS], key=key, limit=10, next_token=token, route="GET /things")
    assert {d["id"] for d in page}.isdisjoint(d["id"] for d in rest)
    assert len(page) + len(rest) == len(ITEMS)


def _token() -> str:
    _, token = paginate(ITEMS, key=key, limit=2, next_token=None, route="GET /things", filters={"status": "Pending"})
    assert token is not None
    return token


def _reencode(token: str, change: dict[str, object]) -> str:
    body = token.split(".")[0]
    doc = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    doc.update(change)
    payload = json.dumps(doc).encode()
    return base64.urlsafe_b64encode(payload).decode().rstrip("=") + "." + token.split(".")[1]


@pytest.mark.parametrize(("make", "reason"), [
    (lambda t: "garbage", "not a token"),
    (lambda t: "!!!.???", "not a token|checksum"),
    (lambda t: t[:-1] + ("0" if t[-1] != "0" else "1"), "checksum"),
    (lambda t: _reencode(t, {"k": ["2099-01-01", "zz"]}), "checksum"),
    (lambda t: "é" + t, "not a token"),
    (lambda t: t + "." + t, "not a token"),
])
def test_a_token_that_is_not_ours_is_refused(make: object, reason: str) -> None:
    with pytest.raises(InvalidNextToken, match=reason) as err:
        paginate(ITEMS, key=key, limit=2, next_token=make(_token()), route="GET /things",  # type: ignore[operator]
                 filters={"status": "Pending"})
    assert err.value.http_status == 400 and err.value.code == "invalid_next_token"


def test_a_token_of_another_route_or_other_filters_is_refused() -> None:
    token = _token()
    with pytest.raises(InvalidNextToken, match="another list"):
        paginate(ITEMS, key=key, limit=2, next_token=token, route="GET /others", filters={"status": "Pending"})
    with pytest.raises(InvalidNextToken, match="other filters"):
        paginate(ITEMS, key=key, limit=2, next_token=token, route="GET /things", filters={"status": "Applied"})


def test_a_well_formed_token_with_a_foreign_key_shape_is_refused() -> None:
    for bad_key in ([1, 2], ["only-one"], [True, "x"], []):
        token = encode_token("GET /things", {}, tuple(bad_key))  # type: ignore[arg-type]
        with pytest.raises(InvalidNextToken, match="position"):
            paginate(ITEMS, key=key, limit=2, next_token=token, route="GET /things")


def test_a_garbage_token_is_refused_on_an_empty_list_too() -> None:
    with pytest.raises(InvalidNextToken):
        paginate([], key=key, limit=2, next_token="garbage", route="GET /things")
