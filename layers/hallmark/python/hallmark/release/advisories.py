"""The OSV advisory set: synced from the OSV per-ecosystem archives, stored versioned and
integrity-checked in the packages bucket, read by the security validator.

Storage (keys in the packages bucket)::

    advisories/sets/<sha256>.json   an immutable set: {"format", "ecosystems", "records"}
    advisories/current.json         the pointer: {"version", "sha256", "key", "records",
                                    "ecosystems", "fetchedAt", "source", "bytes"}

A sync (:class:`AdvisorySync`) fetches ``<base>/<Ecosystem>/all.zip`` for every ecosystem
Hallmark vets (PyPI, npm), parses and normalises every record (only what vetting reads:
ids, aliases, affected packages, ranges, versions), and builds one set. Nothing is written
unless every archive parsed: a truncated or corrupt zip, a member that is not an OSV JSON
record, an empty archive, or a set that shrank by more than half is refused and the current
set stays. A new set (a new sha256) is written first, read back and hashed, then audited as
``AdvisorySetPublished`` (release chain, deterministic event id), and only then does the
pointer move to it (``version`` + 1). An unchanged set only refreshes the pointer's
``fetchedAt``.

The reader (:class:`CurrentAdvisorySet`) is the security validator's advisory source: it
reads the pointer (at most every ``ttl``), verifies the set's sha256 against it, caches the
parsed set per container until the pointer names another one, and refuses a set older than
``max_age``. Every refusal is an :class:`AdvisorySetUnavailable` whose message is the reason
the validator reports; the validator then fails closed.

No boto3 here: blobs and bytes come through the :class:`Blobs` and :class:`Fetcher` ports.
"""

from __future__ import annotations

import hashlib
import io
import json
import threading
import zipfile
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, Protocol
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hallmark._domain import EventDraft
from hallmark.canonical import parse_rfc3339, to_rfc3339
from hallmark.release.validators.advisory_set import AdvisorySet, AdvisorySetUnavailable

__all__ = [
    "ECOSYSTEMS",
    "POINTER_KEY",
    "SETS_PREFIX",
    "SET_FORMAT",
    "AdvisoryPointer",
    "AdvisorySetRefused",
    "AdvisorySync",
    "ArchiveLimits",
    "Blobs",
    "CurrentAdvisorySet",
    "Fetcher",
    "SyncOutcome",
    "archive_url",
    "build_osv_archive",
    "build_set",
    "parse_osv_archive",
    "parse_set",
    "read_current",
]

#: The ecosystems Hallmark's dependency vetting reads (requirements/pyproject and npm lock files).
ECOSYSTEMS: Final = ("PyPI", "npm")
DEFAULT_BASE_URL: Final = "https://osv-vulnerabilities.storage.googleapis.com"
PREFIX: Final = "advisories/"
POINTER_KEY: Final = PREFIX + "current.json"
SETS_PREFIX: Final = PREFIX + "sets/"
SET_FORMAT: Final = "hallmark.advisory-set/1"
#: How far in the future a pointer's ``fetchedAt`` may be (clock skew) before it is refused.
_FUTURE_SKEW: Final = timedelta(minutes=5)
_RANGE_TYPES: Final = ("ECOSYSTEM", "SEMVER")
_EVENT_KINDS: Final = ("introduced", "fixed", "last_affected", "limit")


class AdvisorySetRefused(ValueError):
    """A fetched archive or built set that is not published (the current set stays)."""


class Fetcher(Protocol):
    """Fetches the bytes behind a URL (the HTTP adapter bounds time and size)."""

    def fetch(self, url: str) -> bytes: ...


class Blobs(Protocol):
    """Keys -> bytes in the packages bucket (``hallmark.adapters.s3.S3BlobStore`` fits)."""

    def get(self, key: str) -> bytes:
        """The object's bytes; ``KeyError`` when absent."""
        ...

    def put(self, key: str, data: bytes) -> None: ...


class _Audit(Protocol):
    def emit(
        self, *, chain: str, type: str, actor: str, subject: str, data: dict[str, Any], event_id: str | None = None
    ) -> str: ...


@dataclass(frozen=True, slots=True)
class ArchiveLimits:
    """Bounds on one ecosystem archive (the npm archive holds a few hundred thousand records)."""

    max_members: int = 2_000_000
    max_uncompressed: int = 4 * 1024**3
    max_member_bytes: int = 16 * 1024**2
    #: refuse a new set with fewer than this share of the current set's records
    min_keep_ratio: float = 0.5


# ----------------------------------------------------------------------------- parsing


def archive_url(base_url: str, ecosystem: str) -> str:
    """``<base>/<Ecosystem>/all.zip`` (the OSV per-ecosystem archive)."""
    return f"{base_url.rstrip('/')}/{quote(ecosystem, safe='')}/all.zip"


def _normalise(record: Any, ecosystem: str, where: str) -> dict[str, Any] | None:
    """The part of an OSV record vetting reads, or None when it affects nothing in ``ecosystem``."""
    if not isinstance(record, dict):
        raise AdvisorySetRefused(f"{where}: an OSV record is a JSON object")
    rid = record.get("id")
    if not isinstance(rid, str) or not rid.strip() or len(rid) > 200:
        raise AdvisorySetRefused(f"{where}: an OSV record needs a string 'id'")
    if not isinstance(record.get("modified"), str):
        raise AdvisorySetRefused(f"{where}: OSV record {rid} has no 'modified' time")
    affected = record.get("affected") or []
    if not isinstance(affected, list):
        raise AdvisorySetRefused(f"{where}: OSV record {rid}: 'affected' is not a list")
    if record.get("withdrawn"):
        return None
    kept: list[dict[str, Any]] = []
    for item in affected:
        if not isinstance(item, dict):
            raise AdvisorySetRefused(f"{where}: OSV record {rid}: an 'affected' entry is not an object")
        package = item.get("package") or {}
        if not isinstance(package, dict) or package.get("ecosystem") != ecosystem:
            continue
        name = package.get("name")
        if not isinstance(name, str) or not name:
            raise AdvisorySetRefused(f"{where}: OSV record {rid}: an affected package has no name")
        ranges = []
        for rng in item.get("ranges") or []:
            if not isinstance(rng, dict) or rng.get("type") not in _RANGE_TYPES:
                continue
            events = [
                {kind: str(event[kind])}
                for event in rng.get("events") or []
                if isinstance(event, dict)
                for kind in _EVENT_KINDS
                if kind in event
            ]
            ranges.append({"type": rng["type"], "events": events})
        versions = [str(v) for v in item.get("versions") or [] if isinstance(v, str | int | float)]
        if ranges or versions:
            kept.append({"package": {"ecosystem": ecosystem, "name": name}, "ranges": ranges, "versions": versions})
    if not kept:
        return None
    out: dict[str, Any] = {"id": rid, "modified": record["modified"], "affected": kept}
    aliases = [a for a in record.get("aliases") or [] if isinstance(a, str)]
    if aliases:
        out["aliases"] = aliases
    if isinstance(record.get("summary"), str):
        out["summary"] = record["summary"][:300]
    return out


def parse_osv_archive(data: bytes, ecosystem: str, limits: ArchiveLimits | None = None) -> list[dict[str, Any]]:
    """The normalised records of one OSV ``all.zip`` (one JSON record per member).

    Raises :class:`AdvisorySetRefused` for a truncated or corrupt zip (a bad central
    directory or a CRC mismatch), a member that is not an OSV JSON record, limits exceeded,
    or an archive without a single record for ``ecosystem``.
    """
    lim = limits or ArchiveLimits()
    where = f"{ecosystem}/all.zip"
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError, EOFError) as exc:
        raise AdvisorySetRefused(f"{where} is not a readable zip archive (truncated or corrupt): {exc}") from exc
    with zf:
        infos = [i for i in zf.infolist() if not i.is_dir()]
        if len(infos) > lim.max_members:
            raise AdvisorySetRefused(f"{where} has {len(infos)} members, more than {lim.max_members}")
        total = sum(i.file_size for i in infos)
        if total > lim.max_uncompressed:
            raise AdvisorySetRefused(f"{where} expands to {total} bytes, more than {lim.max_uncompressed}")
        records: list[dict[str, Any]] = []
        for info in infos:
            if not info.filename.endswith(".json"):
                raise AdvisorySetRefused(f"{where}: member {info.filename!r} is not an OSV JSON record")
            if info.file_size > lim.max_member_bytes:
                raise AdvisorySetRefused(f"{where}: member {info.filename!r} is larger than {lim.max_member_bytes}")
            try:
                raw = zf.read(info)  # checks the member's CRC-32
                record = json.loads(raw)
            except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, NotImplementedError) as exc:
                raise AdvisorySetRefused(
                    f"{where}: member {info.filename!r} could not be read ({type(exc).__name__}: {exc})"
                ) from exc
            normalised = _normalise(record, ecosystem, f"{where}:{info.filename}")
            if normalised is not None:
                records.append(normalised)
    if not records:
        raise AdvisorySetRefused(f"{where} holds no {ecosystem} advisory: refusing an empty set")
    return records


def build_osv_archive(records: Iterable[Mapping[str, Any]]) -> bytes:
    """An OSV-style ``all.zip`` of ``records`` (``<id>.json`` each; deterministic bytes).

    What OSV publishes, rebuilt from committed records: the local cloud and the tests feed
    the sync through it.
    """
    raw = io.BytesIO()
    with zipfile.ZipFile(raw, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for record in sorted(records, key=lambda r: str(r["id"])):
            info = zipfile.ZipInfo(f"{record['id']}.json", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, json.dumps(record, indent=2, ensure_ascii=False))
    return raw.getvalue()


def build_set(records: Iterable[dict[str, Any]], ecosystems: Iterable[str]) -> bytes:
    """The set document's bytes (deterministic: records sorted by id, keys sorted).

    A record id seen twice (an advisory affecting packages of two ecosystems appears in both
    archives) keeps one record holding every ecosystem's affected entries.
    """
    by_id: dict[str, dict[str, Any]] = {}
    for record in records:
        seen = by_id.get(record["id"])
        if seen is None:
            by_id[record["id"]] = {**record, "affected": list(record["affected"])}
        else:
            seen["affected"] += [a for a in record["affected"] if a not in seen["affected"]]
    doc = {"format": SET_FORMAT, "ecosystems": sorted(ecosystems), "records": [by_id[k] for k in sorted(by_id)]}
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def parse_set(data: bytes) -> list[dict[str, Any]]:
    """The records of a set document; ``ValueError`` when it is not one."""
    doc = json.loads(data)
    if not isinstance(doc, dict) or doc.get("format") != SET_FORMAT or not isinstance(doc.get("records"), list):
        raise ValueError(f"not a {SET_FORMAT} document")
    return list(doc["records"])


# ----------------------------------------------------------------------------- the pointer


class AdvisoryPointer(BaseModel):
    """``advisories/current.json``: which set is current, and when it was fetched."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, defer_build=True)

    version: int = Field(ge=1)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    key: str = Field(min_length=1)
    records: int = Field(ge=0)
    ecosystems: list[str]
    fetchedAt: str
    source: str
    bytes: int = Field(ge=0)

    def fetched_at(self) -> datetime:
        return parse_rfc3339(self.fetchedAt)

    def label(self) -> str:
        return f"v{self.version} (sha256 {self.sha256[:12]})"


def read_current(blobs: Blobs) -> AdvisoryPointer | None:
    """The current pointer; None when there is none. ``ValueError`` when it is not a pointer."""
    try:
        raw = blobs.get(POINTER_KEY)
    except KeyError:
        return None
    try:
        pointer = AdvisoryPointer.model_validate(json.loads(raw))
        pointer.fetched_at()
    except (ValueError, ValidationError) as exc:
        raise ValueError(f"{POINTER_KEY} is not an advisory-set pointer: {exc}") from exc
    if pointer.key != SETS_PREFIX + pointer.sha256 + ".json":
        raise ValueError(f"{POINTER_KEY} names {pointer.key!r}, not the set of its sha256")
    return pointer


def _pointer_bytes(pointer: AdvisoryPointer) -> bytes:
    return json.dumps(pointer.model_dump(), sort_keys=True, indent=2).encode()


# ----------------------------------------------------------------------------- the sync


@dataclass(frozen=True, slots=True)
class SyncOutcome:
    status: str  # "published" | "unchanged"
    pointer: AdvisoryPointer
    event_id: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"status": self.status, **self.pointer.model_dump(), "eventId": self.event_id}


class AdvisorySync:
    """Fetch, parse, build, verify, audit, then move the pointer (see the module doc)."""

    def __init__(
        self,
        fetcher: Fetcher,
        blobs: Blobs,
        audit: _Audit,
        *,
        base_url: str = DEFAULT_BASE_URL,
        ecosystems: tuple[str, ...] = ECOSYSTEMS,
        limits: ArchiveLimits | None = None,
        actor: str = "system:advisories_sync",
    ) -> None:
        self.fetcher = fetcher
        self.blobs = blobs
        self.audit = audit
        self.base_url = base_url
        self.ecosystems = ecosystems
        self.limits = limits or ArchiveLimits()
        self.actor = actor

    def run(self, now: datetime) -> SyncOutcome:
        """One sync; raises :class:`AdvisorySetRefused` (nothing written) when it cannot publish."""
        records: list[dict[str, Any]] = []
        for ecosystem in self.ecosystems:
            url = archive_url(self.base_url, ecosystem)
            try:
                data = self.fetcher.fetch(url)
            except Exception as exc:  # any adapter failure: nothing is written, the current set stays
                raise AdvisorySetRefused(f"{url} could not be fetched: {type(exc).__name__}: {exc}") from exc
            records += parse_osv_archive(data, ecosystem, self.limits)
        return self.publish(records, now=now, source=self.base_url)

    def publish(self, records: list[dict[str, Any]], *, now: datetime, source: str) -> SyncOutcome:
        body = build_set(records, self.ecosystems)
        sha = hashlib.sha256(body).hexdigest()
        count = len({r["id"] for r in records})  # build_set keeps one record per id
        try:
            current = read_current(self.blobs)
        except ValueError:
            current = None  # an unreadable pointer is replaced (the validator refused it anyway)
        if current is not None and current.sha256 == sha:
            pointer = current.model_copy(update={"fetchedAt": to_rfc3339(now, "auto"), "source": source})
            self.blobs.put(POINTER_KEY, _pointer_bytes(pointer))
            return SyncOutcome("unchanged", pointer)
        if current is not None and count < current.records * self.limits.min_keep_ratio:
            raise AdvisorySetRefused(
                f"the new set has {count} records, fewer than {self.limits.min_keep_ratio:.0%} of the current "
                f"{current.label()}'s {current.records}: refusing a truncated feed"
            )
        key = SETS_PREFIX + sha + ".json"
        self.blobs.put(key, body)
        if hashlib.sha256(self.blobs.get(key)).hexdigest() != sha:
            raise AdvisorySetRefused(f"{key} read back with another sha256: the pointer was not moved")
        pointer = AdvisoryPointer(
            version=(current.version + 1) if current is not None else 1,
            sha256=sha,
            key=key,
            records=count,
            ecosystems=sorted(self.ecosystems),
            fetchedAt=to_rfc3339(now, "auto"),
            source=source,
            bytes=len(body),
        )
        draft = EventDraft(
            type="AdvisorySetPublished",
            subject=f"advisory-set/{sha}",
            actor=self.actor,
            data={
                "version": pointer.version,
                "sha256": sha,
                "key": key,
                "records": count,
                "ecosystems": pointer.ecosystems,
                "source": source,
                "previous": None if current is None else {"version": current.version, "sha256": current.sha256},
            },
        )
        # audited before the pointer moves: a set the validator reads always has its audit event
        # (a retried sync makes the same draft, so the same event id, never a second entry)
        event_id = self.audit.emit(
            chain="release", type=draft.type, actor=draft.actor, subject=draft.subject, data=draft.data,
            event_id=draft.event_id,
        )
        self.blobs.put(POINTER_KEY, _pointer_bytes(pointer))
        return SyncOutcome("published", pointer, event_id)


# ----------------------------------------------------------------------------- the reader


class CurrentAdvisorySet:
    """The security validator's advisory source over the packages bucket (one per container)."""

    def __init__(
        self,
        blobs: Blobs,
        *,
        max_age: timedelta = timedelta(hours=48),
        ttl: timedelta = timedelta(minutes=5),
        clock: Callable[[], datetime],
        max_bytes: int = 1024**3,
    ) -> None:
        self.blobs = blobs
        self.max_age = max_age
        self.ttl = ttl
        self.clock = clock
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._pointer: AdvisoryPointer | None = None
        self._read_at: datetime | None = None
        self._set: AdvisorySet | None = None

    def current(self) -> AdvisorySet:
        """The current set; :class:`AdvisorySetUnavailable` (the reason) when there is none usable."""
        with self._lock:
            now = self.clock()
            pointer = self._pointer
            if pointer is None or self._read_at is None or not timedelta(0) <= now - self._read_at < self.ttl:
                pointer = self._read_pointer()
                self._pointer, self._read_at = pointer, now
            self._check_age(pointer, now)
            if self._set is None or self._set.sha256 != pointer.sha256:
                self._set = None
                self._set = self._load(pointer)
            return self._set

    def _read_pointer(self) -> AdvisoryPointer:
        try:
            pointer = read_current(self.blobs)
        except ValueError as exc:
            raise AdvisorySetUnavailable(f"advisory set unreadable: {exc}") from exc
        if pointer is None:
            raise AdvisorySetUnavailable(
                f"no advisory set: dependency vetting cannot run ({POINTER_KEY} is missing; "
                "has the advisories_sync function run?)"
            )
        return pointer

    def _check_age(self, pointer: AdvisoryPointer, now: datetime) -> None:
        age = now - pointer.fetched_at()
        if age < -_FUTURE_SKEW:
            raise AdvisorySetUnavailable(
                f"advisory set {pointer.label()} claims to be fetched at {pointer.fetchedAt}, in the future"
            )
        if age > self.max_age:
            raise AdvisorySetUnavailable(
                f"advisory set {pointer.label()} is {int(age.total_seconds() // 3600)} h old, older than the "
                f"{_hours(self.max_age)} h allowed (fetched {pointer.fetchedAt}; the advisories_sync "
                "function has not refreshed it)"
            )

    def _load(self, pointer: AdvisoryPointer) -> AdvisorySet:
        if pointer.bytes > self.max_bytes:
            raise AdvisorySetUnavailable(f"advisory set {pointer.label()} is larger than {self.max_bytes} bytes")
        try:
            body = self.blobs.get(pointer.key)
        except KeyError as exc:
            raise AdvisorySetUnavailable(f"advisory set {pointer.label()} is missing ({pointer.key})") from exc
        digest = hashlib.sha256(body).hexdigest()
        if digest != pointer.sha256:
            raise AdvisorySetUnavailable(
                f"advisory set {pointer.label()} failed its integrity check: the stored set hashes to "
                f"{digest[:12]}, not the pointer's sha256"
            )
        try:
            records = parse_set(body)
        except ValueError as exc:
            raise AdvisorySetUnavailable(f"advisory set {pointer.label()} unreadable: {exc}") from exc
        return AdvisorySet(
            records, digest, version=pointer.version, fetched_at=pointer.fetchedAt, source=pointer.source
        )

    def age(self) -> timedelta | None:
        """How old the cached pointer's set is now (None before the first read)."""
        return None if self._pointer is None else self.clock() - self._pointer.fetched_at()


def _hours(delta: timedelta) -> str:
    hours = delta.total_seconds() / 3600
    return str(int(hours)) if hours == int(hours) else f"{hours:g}"
