"""The OSV advisory set (hallmark.release.advisories): parsing the OSV archives, the
sha256-addressed sets and their pointer, staleness, and the security validator failing closed.

Every archive is built here from the committed real OSV records (events/advisories/osv/) and
fed through a fake fetcher: no test touches the network.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from hallmark.adapters.http_fetch import FetchError, UrlFetcher
from hallmark.release.advisories import (
    POINTER_KEY,
    SETS_PREFIX,
    AdvisorySetRefused,
    AdvisorySync,
    ArchiveLimits,
    CurrentAdvisorySet,
    archive_url,
    build_osv_archive,
    parse_osv_archive,
    parse_set,
    read_current,
)
from hallmark.release.validators import PackageView, ValidatorConfig
from hallmark.release.validators.security import AdvisorySetUnavailable, validate_security
from tests.unit.test_validators_support import make_tar_gz

OSV_DIR = Path(__file__).resolve().parents[2] / "events" / "advisories" / "osv"
BASE = "https://osv.test"
T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def real_records(ecosystem: str | None = None) -> list[dict[str, Any]]:
    records = [json.loads(p.read_text()) for p in sorted(OSV_DIR.glob("*.json"))]
    if ecosystem is None:
        return records
    return [r for r in records if any(a["package"]["ecosystem"] == ecosystem for a in r["affected"])]


class Blobs:
    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}
        self.gets: list[str] = []

    def get(self, key: str) -> bytes:
        self.gets.append(key)
        if key not in self.data:
            raise KeyError(key)
        return self.data[key]

    def put(self, key: str, data: bytes) -> None:
        self.data[key] = bytes(data)


class Fetcher:
    def __init__(self, archives: dict[str, bytes | Exception]) -> None:
        self.archives = archives
        self.urls: list[str] = []

    def fetch(self, url: str) -> bytes:
        self.urls.append(url)
        value = self.archives[url]
        if isinstance(value, Exception):
            raise value
        return value


class Audit:
    def __init__(self) -> None:
        self.events: dict[str, dict[str, Any]] = {}

    def emit(self, *, chain: str, type: str, actor: str, subject: str, data: dict[str, Any],
             event_id: str | None = None) -> str:
        assert event_id is not None
        self.events.setdefault(event_id, {"chain": chain, "type": type, "actor": actor, "subject": subject,
                                          "data": data})
        return event_id


def feed(pypi: bytes | Exception | None = None, npm: bytes | Exception | None = None) -> Fetcher:
    return Fetcher({
        archive_url(BASE, "PyPI"): build_osv_archive(real_records("PyPI")) if pypi is None else pypi,
        archive_url(BASE, "npm"): build_osv_archive(real_records("npm")) if npm is None else npm,
    })


def sync(fetcher: Fetcher, blobs: Blobs, audit: Audit | None = None) -> AdvisorySync:
    return AdvisorySync(fetcher, blobs, audit or Audit(), base_url=BASE)


def reader(blobs: Blobs, now: list[datetime], **kw: Any) -> CurrentAdvisorySet:
    return CurrentAdvisorySet(blobs, clock=lambda: now[0], **kw)


def security(files: dict[str, bytes], source: Any) -> Any:
    return validate_security(PackageView(make_tar_gz(files)), ValidatorConfig(advisory_source=source))


# ----------------------------------------------------------------------------- parsing


def test_archive_url_is_the_osv_per_ecosystem_archive() -> None:
    assert archive_url("https://osv-vulnerabilities.storage.googleapis.com/", "PyPI") == \
        "https://osv-vulnerabilities.storage.googleapis.com/PyPI/all.zip"


def test_a_real_record_archive_parses_and_is_normalised() -> None:
    records = parse_osv_archive(build_osv_archive(real_records("PyPI")), "PyPI")
    by_id = {r["id"]: r for r in records}
    assert set(by_id) == {"PYSEC-2014-13", "PYSEC-2014-14", "PYSEC-2018-28", "PYSEC-2021-142",
                          "GHSA-j8r2-6x86-q33q"}
    pysec = by_id["PYSEC-2018-28"]
    assert pysec["aliases"] == ["CVE-2018-18074"]
    assert "references" not in pysec and "details" not in pysec
    (affected,) = pysec["affected"]
    assert affected["ranges"] == [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "2.20.0"}]}]
    assert "2.19.0" in affected["versions"]  # the GIT range is dropped, the versions list kept
    npm = {r["id"] for r in parse_osv_archive(build_osv_archive(real_records("npm")), "npm")}
    assert npm == {"GHSA-35jh-r3h4-6jhm", "GHSA-xvch-5gv4-984h"}


def _corrupt_crc(archive: bytes) -> bytes:
    """Flip one byte of the first member's compressed data (the CRC-32 then fails)."""
    zf = zipfile.ZipFile(io.BytesIO(archive))
    info = zf.infolist()[0]
    name_len = int.from_bytes(archive[info.header_offset + 26:info.header_offset + 28], "little")
    extra_len = int.from_bytes(archive[info.header_offset + 28:info.header_offset + 30], "little")
    at = info.header_offset + 30 + name_len + extra_len + 5
    return archive[:at] + bytes([archive[at] ^ 0xFF]) + archive[at + 1:]


def _zip(members: dict[str, bytes]) -> bytes:
    raw = io.BytesIO()
    with zipfile.ZipFile(raw, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return raw.getvalue()


@pytest.mark.parametrize(("kind", "needle"), [
    ("truncated", "not a readable zip archive"),
    ("garbage", "not a readable zip archive"),
    ("crc", "could not be read"),
    ("bad_json", "could not be read"),
    ("not_a_record", "needs a string 'id'"),
    ("not_json_member", "is not an OSV JSON record"),
    ("empty", "refusing an empty set"),
    ("other_ecosystem_only", "refusing an empty set"),
])
def test_a_corrupt_or_truncated_archive_is_refused(kind: str, needle: str) -> None:
    good = build_osv_archive(real_records("PyPI"))
    archive = {
        "truncated": good[: len(good) // 2],
        "garbage": b"<html>503 Service Unavailable</html>",
        "crc": _corrupt_crc(good),
        "bad_json": _zip({"PYSEC-2018-28.json": (OSV_DIR / "PYSEC-2018-28.json").read_bytes()[:-40]}),
        "not_a_record": _zip({"x.json": b'{"affected": []}'}),
        "not_json_member": _zip({"README.txt": b"hello"}),
        "empty": _zip({}),
        "other_ecosystem_only": build_osv_archive(real_records("npm")),
    }[kind]
    with pytest.raises(AdvisorySetRefused, match=needle):
        parse_osv_archive(archive, "PyPI")


def test_archive_limits_bound_members_and_expansion() -> None:
    archive = build_osv_archive(real_records("PyPI"))
    with pytest.raises(AdvisorySetRefused, match="members"):
        parse_osv_archive(archive, "PyPI", ArchiveLimits(max_members=2))
    with pytest.raises(AdvisorySetRefused, match="expands to"):
        parse_osv_archive(archive, "PyPI", ArchiveLimits(max_uncompressed=1000))


# ----------------------------------------------------------------------------- the sync


def test_sync_publishes_an_immutable_set_a_pointer_and_one_audit_event() -> None:
    blobs, audit, fetcher = Blobs(), Audit(), feed()
    outcome = sync(fetcher, blobs, audit).run(T0)
    assert outcome.status == "published"
    assert fetcher.urls == [f"{BASE}/PyPI/all.zip", f"{BASE}/npm/all.zip"]
    pointer = read_current(blobs)
    assert pointer is not None and pointer == outcome.pointer
    assert pointer.version == 1 and pointer.records == 7 and pointer.ecosystems == ["PyPI", "npm"]
    assert pointer.fetchedAt == "2026-12-01T12:00:00Z" and pointer.source == BASE
    body = blobs.data[SETS_PREFIX + pointer.sha256 + ".json"]
    assert hashlib.sha256(body).hexdigest() == pointer.sha256 and pointer.key == SETS_PREFIX + pointer.sha256 + ".json"
    assert len(parse_set(body)) == 7
    (event,) = audit.events.values()
    assert (event["chain"], event["type"], event["subject"]) == (
        "release", "AdvisorySetPublished", f"advisory-set/{pointer.sha256}")
    assert event["data"]["version"] == 1 and event["data"]["sha256"] == pointer.sha256
    assert event["data"]["previous"] is None


def test_an_unchanged_feed_refreshes_fetched_at_only_and_a_changed_one_is_a_new_version() -> None:
    blobs, audit = Blobs(), Audit()
    first = sync(feed(), blobs, audit).run(T0).pointer
    again = sync(feed(), blobs, audit).run(T0 + timedelta(hours=6))
    assert again.status == "unchanged" and again.pointer.version == 1 and again.pointer.sha256 == first.sha256
    assert again.pointer.fetchedAt == "2026-12-01T18:00:00Z"
    assert len(audit.events) == 1
    fewer = build_osv_archive([r for r in real_records("PyPI") if r["id"] != "PYSEC-2014-14"])
    second = sync(feed(pypi=fewer), blobs, audit).run(T0 + timedelta(hours=12))
    assert second.status == "published" and second.pointer.version == 2 and second.pointer.records == 6
    assert second.pointer.sha256 != first.sha256
    assert SETS_PREFIX + first.sha256 + ".json" in blobs.data  # the old set stays (immutable)
    latest = audit.events[str(second.event_id)]
    assert latest["data"]["previous"] == {"version": 1, "sha256": first.sha256}


@pytest.mark.parametrize("broken", ["truncated_npm", "fetch_error", "shrunk"])
def test_a_refused_sync_writes_nothing_and_the_current_set_stays(broken: str) -> None:
    blobs, audit = Blobs(), Audit()
    sync(feed(), blobs, audit).run(T0)
    before = dict(blobs.data)
    good_npm = build_osv_archive(real_records("npm"))
    fetcher = {
        "truncated_npm": feed(npm=good_npm[:-100]),
        "fetch_error": feed(npm=FetchError("https://osv.test/npm/all.zip answered HTTP 503")),
        "shrunk": feed(pypi=build_osv_archive(real_records("PyPI")[:1]), npm=build_osv_archive(real_records("npm")[:1])),
    }[broken]
    with pytest.raises(AdvisorySetRefused):
        sync(fetcher, blobs, audit).run(T0 + timedelta(hours=6))
    assert blobs.data == before
    assert len(audit.events) == 1


def test_a_retried_publish_makes_the_same_audit_event() -> None:
    blobs = Blobs()
    a, b = Audit(), Audit()
    sync(feed(), blobs, a).run(T0)
    del blobs.data[POINTER_KEY]  # as if the pointer write after the audit had failed
    sync(feed(), blobs, b).run(T0 + timedelta(minutes=1))
    assert list(a.events) == list(b.events)


# ----------------------------------------------------------------------------- the reader


def _published(now: datetime = T0) -> Blobs:
    blobs = Blobs()
    sync(feed(), blobs).run(now)
    return blobs


def test_no_pointer_means_no_advisory_set() -> None:
    with pytest.raises(AdvisorySetUnavailable, match="no advisory set: dependency vetting cannot run"):
        reader(Blobs(), [T0]).current()


def test_the_pointer_sha256_is_verified_on_read() -> None:
    blobs = _published()
    pointer = read_current(blobs)
    assert pointer is not None
    good = reader(blobs, [T0]).current()
    assert good.sha256 == pointer.sha256 and good.version == 1 and good.count == 7
    tampered = parse_set(blobs.data[pointer.key])
    tampered[0]["affected"][0]["ranges"] = []  # an attacker "fixes" lodash
    blobs.data[pointer.key] = json.dumps({"format": "hallmark.advisory-set/1", "records": tampered}).encode()
    with pytest.raises(AdvisorySetUnavailable, match="failed its integrity check"):
        reader(blobs, [T0]).current()
    del blobs.data[pointer.key]
    with pytest.raises(AdvisorySetUnavailable, match="is missing"):
        reader(blobs, [T0]).current()


@pytest.mark.parametrize("pointer", [
    b"not json",
    b'{"version": 1}',
    json.dumps({"version": 1, "sha256": "a" * 64, "key": "advisories/sets/elsewhere.json", "records": 1,
                "ecosystems": ["PyPI"], "fetchedAt": "2026-12-01T12:00:00Z", "source": "x", "bytes": 1}).encode(),
    json.dumps({"version": 1, "sha256": "a" * 64, "key": f"advisories/sets/{'a' * 64}.json", "records": 1,
                "ecosystems": ["PyPI"], "fetchedAt": "yesterday", "source": "x", "bytes": 1}).encode(),
])
def test_an_unreadable_pointer_is_refused(pointer: bytes) -> None:
    blobs = Blobs()
    blobs.data[POINTER_KEY] = pointer
    with pytest.raises(AdvisorySetUnavailable, match="advisory set unreadable"):
        reader(blobs, [T0]).current()


def test_a_set_older_than_the_maximum_age_is_refused_with_its_age() -> None:
    blobs = _published()
    now = [T0 + timedelta(hours=47)]
    source = reader(blobs, now, max_age=timedelta(hours=48))
    assert source.current().version == 1
    now[0] = T0 + timedelta(hours=73)
    with pytest.raises(AdvisorySetUnavailable, match=r"advisory set v1 \(sha256 [0-9a-f]{12}\) is 73 h old, "
                                                     r"older than the 48 h allowed"):
        source.current()
    future = reader(blobs, [T0 - timedelta(hours=1)])
    with pytest.raises(AdvisorySetUnavailable, match="in the future"):
        future.current()


def test_the_set_is_cached_until_the_pointer_changes_or_the_ttl_passes() -> None:
    blobs = _published()
    now = [T0]
    source = reader(blobs, now, ttl=timedelta(minutes=5))
    first = source.current()
    blobs.gets.clear()
    assert source.current() is first and blobs.gets == []  # within the TTL: no read at all
    now[0] = T0 + timedelta(minutes=6)
    assert source.current() is first and blobs.gets == [POINTER_KEY]  # same pointer: set not re-read
    sync(feed(pypi=build_osv_archive(real_records("PyPI")[1:])), blobs).run(now[0])
    now[0] = T0 + timedelta(minutes=12)
    second = source.current()
    assert second is not first and second.version == 2 and second.count == 6


# ----------------------------------------------------------------------------- the validator


def test_security_fails_closed_without_an_advisory_set_and_says_why() -> None:
    files = {"requirements.txt": b"requests==2.32.3\n"}
    result = security(files, reader(Blobs(), [T0]))
    assert not result.passed
    assert any(r.startswith("no advisory set: dependency vetting cannot run") for r in result.reasons)
    assert not any("0 advisories" in r for r in result.reasons)
    stale = security(files, reader(_published(), [T0 + timedelta(hours=73)]))
    assert not stale.passed
    assert any("is 73 h old, older than the 48 h allowed" in r for r in stale.reasons)
    # no source and no file at all: fails closed too (the old "checked against 0 advisories" pass is gone)
    bare = validate_security(PackageView(make_tar_gz(files)), ValidatorConfig())
    assert not bare.passed and "no advisory set: dependency vetting cannot run" in bare.reasons


def test_a_store_error_fails_closed() -> None:
    class Broken(Blobs):
        def get(self, key: str) -> bytes:
            raise OSError("connection reset")

    result = security({"requirements.txt": b"requests==2.32.3\n"}, reader(Broken(), [T0]))
    assert not result.passed
    assert any("advisory set could not be read: OSError" in r for r in result.reasons)


def test_the_result_records_the_set_version_and_digest() -> None:
    blobs = _published()
    pointer = read_current(blobs)
    assert pointer is not None
    source = reader(blobs, [T0 + timedelta(hours=1)])
    clean = security({"requirements.txt": b"requests==2.32.3\n"}, source)
    assert clean.passed, clean.reasons
    assert clean.stats["advisory_set_version"] == 1
    assert clean.stats["advisory_set_sha256"] == pointer.sha256
    assert clean.stats["advisories"] == 7
    vulnerable = security({"requirements.txt": b"requests==2.0.0\n"}, source)
    assert not vulnerable.passed
    assert {f["advisory"] for f in vulnerable.findings} == {"PYSEC-2014-13", "PYSEC-2014-14", "PYSEC-2018-28"}
    assert any("requests 2.0.0" in r and "PYSEC-2014-13" in r for r in vulnerable.reasons)
    lock = {"lockfileVersion": 3, "packages": {"": {}, "node_modules/lodash": {"version": "4.17.20"}}}
    npm = security({"package-lock.json": json.dumps(lock, indent=2).encode()}, source)
    assert [f["advisory"] for f in npm.findings] == ["GHSA-35jh-r3h4-6jhm"]
    # another set version gives another result digest (what a manifest's preconditions carry)
    sync(feed(pypi=build_osv_archive(real_records("PyPI")[1:])), blobs).run(T0 + timedelta(hours=2))
    later = security({"requirements.txt": b"requests==2.32.3\n"},
                     reader(blobs, [T0 + timedelta(hours=2)]))
    assert later.passed and later.stats["advisory_set_version"] == 2
    assert later.digest != clean.digest


# ----------------------------------------------------------------------------- the fetcher adapter


def test_the_fetcher_refuses_anything_but_https_and_caps_sizes(tmp_path: Path) -> None:
    with pytest.raises(FetchError, match="only https"):
        UrlFetcher().fetch("http://osv-vulnerabilities.storage.googleapis.com/PyPI/all.zip")
    archive = tmp_path / "all.zip"
    archive.write_bytes(b"x" * 100)
    with pytest.raises(FetchError, match="only https"):
        UrlFetcher().fetch(archive.as_uri())  # file:// only where allowed (the local cloud)
    assert UrlFetcher(allow_file=True).fetch(archive.as_uri()) == b"x" * 100
    with pytest.raises(FetchError, match="larger than"):
        UrlFetcher(allow_file=True, max_bytes=99).fetch(archive.as_uri())


class _Response:
    def __init__(self, body: bytes, *, status: int = 200, length: str | None = None) -> None:
        self.status = status
        self.headers = {} if length is None else {"Content-Length": length}
        self._body = io.BytesIO(body)

    def read(self, n: int) -> bytes:
        return self._body.read(n)

    def __enter__(self) -> _Response:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


@pytest.mark.parametrize(("response", "needle"), [
    (_Response(b"x" * 10, length=str(10**12)), "more than the 100 allowed"),  # refused before reading
    (_Response(b"x" * 101), "sent more than the 100 bytes"),  # no Content-Length: capped while reading
    (_Response(b"x" * 10, length="50"), "truncated"),
])
def test_the_https_fetch_caps_the_size_and_notices_truncation(response: _Response, needle: str,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    fetcher = UrlFetcher(max_bytes=100)
    seen: dict[str, Any] = {}

    def open_(request: Any, timeout: float) -> _Response:
        seen["timeout"] = timeout
        return response

    monkeypatch.setattr(fetcher._opener, "open", open_)
    with pytest.raises(FetchError, match=needle):
        fetcher.fetch("https://osv.test/PyPI/all.zip")
    assert seen["timeout"] == fetcher.timeout_s
    ok = UrlFetcher(max_bytes=100)
    monkeypatch.setattr(ok._opener, "open", lambda request, timeout: _Response(b"x" * 100, length="100"))
    assert ok.fetch("https://osv.test/PyPI/all.zip") == b"x" * 100
