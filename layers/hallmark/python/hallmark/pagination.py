"""Cursor pagination for every list route (one helper: packages, listings, briefs, scoring
batches, approvers, orders, upgrades, settlements).

A route sorts what the caller may see by a total order (a tuple of strings and integers ending
in the record's id), returns at most ``limit`` items, and, when more follow, a ``nextToken``:
the sort key of the last item returned, bound to the route and to the filters of the request.
The next request passes it back (``?nextToken=...``) with the same filters and gets the items
strictly after that key, so a page never repeats or skips a record that existed throughout.

The token is opaque to clients: ``base64url(canonical JSON) "." checksum``. It is validated,
not secret: a token that does not decode, whose checksum does not match, that was made by
another route or under other filters, or whose key is not a key of that route is refused with
``400 invalid_next_token`` and changes nothing. Forging a well-formed one gains nothing: every
page applies the same authorization and filters as the first.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from hallmark.docstore import DocStore
from hallmark.errors import DomainError

T = TypeVar("T")
SortKey = tuple[str | int, ...]

TOKEN_VERSION = 1
MAX_TOKEN_CHARS = 2048
MAX_SCAN = 10_000
"""The most records a list route reads to page over (a collection past it is refused, not cut)."""
_DOMAIN = b"hallmark.cursor/1\n"


class InvalidNextToken(DomainError):
    def __init__(self, reason: str) -> None:
        super().__init__("invalid_next_token", f"nextToken is not valid here: {reason}", 400,
                         {"hint": "pass back the nextToken of the previous page, with the same filters"})


def _filters_digest(filters: Mapping[str, Any]) -> str:
    canonical = json.dumps({k: v for k, v in sorted(filters.items()) if v is not None}, sort_keys=True,
                           separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _checksum(payload: bytes) -> str:
    return hashlib.sha256(_DOMAIN + payload).hexdigest()[:16]


def encode_token(route: str, filters: Mapping[str, Any], key: SortKey) -> str:
    payload = json.dumps({"v": TOKEN_VERSION, "r": route, "f": _filters_digest(filters), "k": list(key)},
                         sort_keys=True, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(payload).decode().rstrip("=") + "." + _checksum(payload)


def decode_token(token: str, route: str, filters: Mapping[str, Any], key_len: int | None = None) -> SortKey:
    """The sort key a token carries; :class:`InvalidNextToken` for anything else."""
    if not token.isascii() or len(token) > MAX_TOKEN_CHARS or token.count(".") != 1:
        raise InvalidNextToken("not a token this API issued")
    body, checksum = token.split(".")
    try:
        payload = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except (binascii.Error, ValueError):
        raise InvalidNextToken("not a token this API issued") from None
    if checksum != _checksum(payload):
        raise InvalidNextToken("its checksum does not match (altered or truncated)")
    try:
        doc = json.loads(payload)
    except ValueError:
        raise InvalidNextToken("not a token this API issued") from None
    if not isinstance(doc, dict) or set(doc) != {"v", "r", "f", "k"} or doc["v"] != TOKEN_VERSION:
        raise InvalidNextToken("not a token this API issued")
    if doc["r"] != route:
        raise InvalidNextToken("it belongs to another list")
    if doc["f"] != _filters_digest(filters):
        raise InvalidNextToken("it was issued for other filters")
    key = doc["k"]
    if (not isinstance(key, list) or not key or (key_len is not None and len(key) != key_len)
            or not all(isinstance(v, str | int) and not isinstance(v, bool) for v in key)):
        raise InvalidNextToken("its position is not one of this list")
    return tuple(key)


def paginate(items: Iterable[T], *, key: Callable[[T], SortKey], limit: int, next_token: str | None,
             route: str, filters: Mapping[str, Any] | None = None,
             newest_first: bool = False) -> tuple[list[T], str | None]:
    """One page of ``items`` (already filtered to what the caller may see): ordered by ``key``
    (descending with ``newest_first``), after the position ``next_token`` carries; with the
    token of the next page, or None on the last one."""
    filters = dict(filters or {})
    ordered = sorted(((key(i), i) for i in items), key=lambda p: p[0], reverse=newest_first)
    if next_token:
        after = decode_token(next_token, route, filters, len(ordered[0][0]) if ordered else None)
        try:
            ordered = [p for p in ordered if (p[0] < after if newest_first else p[0] > after)]
        except TypeError:  # a key of the right length whose parts are of other types
            raise InvalidNextToken("its position is not one of this list") from None
    page = ordered[:limit]
    token = encode_token(route, filters, page[-1][0]) if len(ordered) > limit and page else None
    return [i for _, i in page], token


def scan_kind(docs: DocStore, kind: str) -> list[dict[str, Any]]:
    """Every document of ``kind`` (for a list route to filter and page); a collection past
    :data:`MAX_SCAN` is refused (503) rather than silently cut."""
    out = docs.query(kind, MAX_SCAN + 1)
    if len(out) > MAX_SCAN:
        raise DomainError("list_too_large", f"more than {MAX_SCAN} {kind} records: this list needs an index",
                          503, {"kind": kind, "max": MAX_SCAN})
    return out
