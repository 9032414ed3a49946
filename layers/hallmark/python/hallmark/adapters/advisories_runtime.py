"""Composition root of the OSV advisory set (``hallmark.release.advisories``): the sync's
fetcher and blobs, and the security validator's advisory source, built from the environment
the topology declares.

Settings (all optional):

- ``ADVISORY_OSV_BASE_URL``: where ``<Ecosystem>/all.zip`` is fetched (default: OSV's bucket).
- ``ADVISORY_FETCH_MAX_BYTES`` / ``ADVISORY_FETCH_TIMEOUT_SECONDS``: per-archive size cap and
  per-socket-operation timeout of the fetch.
- ``ADVISORY_SET_MAX_AGE_HOURS``: an older set fails security validation (default 48).
- ``ADVISORY_SET_CACHE_SECONDS``: how long a validator container trusts the pointer it read
  before reading it again (default 300; 0: read it on every validation).

``file://`` base URLs are accepted only with ``HALLMARK_ENV=local`` (the local cloud).
"""

from __future__ import annotations

import os
from datetime import timedelta

from hallmark.adapters import runtime
from hallmark.adapters.http_fetch import UrlFetcher
from hallmark.adapters.s3 import S3BlobStore
from hallmark.release.advisories import DEFAULT_BASE_URL, AdvisorySync, CurrentAdvisorySet


def _number(name: str, default: float, *, zero_ok: bool = False) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError as exc:
        raise runtime.ConfigurationError(f"{name}={raw!r} is not a number") from exc
    if not (value > 0 or (zero_ok and value == 0)):
        raise runtime.ConfigurationError(f"{name}={raw!r} must be positive")
    return value


def blobs() -> S3BlobStore:
    return S3BlobStore(runtime.bucket("packages"), runtime.client("s3"))


def advisory_source() -> CurrentAdvisorySet:
    """The security validator's source (build once per container: it caches the parsed set)."""
    return CurrentAdvisorySet(
        blobs(),
        max_age=timedelta(hours=_number("ADVISORY_SET_MAX_AGE_HOURS", 48)),
        ttl=timedelta(seconds=_number("ADVISORY_SET_CACHE_SECONDS", 300, zero_ok=True)),
        clock=lambda: runtime.now(),
    )


def advisory_sync() -> AdvisorySync:
    local = os.environ.get("HALLMARK_ENV") == "local"
    fetcher = UrlFetcher(
        timeout_s=_number("ADVISORY_FETCH_TIMEOUT_SECONDS", 30),
        max_bytes=int(_number("ADVISORY_FETCH_MAX_BYTES", 1024**3)),
        allow_file=local,
    )
    return AdvisorySync(
        fetcher, blobs(), runtime.audit(), base_url=os.environ.get("ADVISORY_OSV_BASE_URL") or DEFAULT_BASE_URL
    )
