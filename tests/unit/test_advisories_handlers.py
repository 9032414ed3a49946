"""The advisories_sync and validate (security) handlers on moto: a versioned packages bucket,
the audit FIFO queue, and OSV archives built from the committed real records, served by a fake
fetcher (no network)."""

from __future__ import annotations

import hashlib
import importlib.util
import itertools
import json
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest
from moto import mock_aws

from hallmark.adapters import http_fetch, runtime
from hallmark.release.advisories import (
    DEFAULT_BASE_URL,
    POINTER_KEY,
    AdvisorySetRefused,
    archive_url,
    build_osv_archive,
)
from hallmark_tools.localcloud.cloud import LambdaContext
from tests.unit.test_advisories import Fetcher, real_records
from tests.unit.test_validators_support import make_tar_gz, meta_for

ROOT = Path(__file__).resolve().parents[2]
BUCKET = "hallmark-packages-test"
_fresh = itertools.count()
NOW = datetime(2026, 12, 2, 6, 0, tzinfo=UTC)


def _import(function: str) -> ModuleType:
    name = f"_advisories_{function}_{next(_fresh)}"
    spec = importlib.util.spec_from_file_location(name, ROOT / "functions" / function / "app.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        sys.modules.pop(name, None)
    return module


class Cloud:
    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.s3 = boto3.client("s3", region_name="us-east-1")
        self.sqs = boto3.client("sqs", region_name="us-east-1")
        self.s3.create_bucket(Bucket=BUCKET)
        self.s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        self.queue = self.sqs.create_queue(QueueName="audit.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
        monkeypatch.setenv("BUCKET_PACKAGES", BUCKET)
        monkeypatch.setenv("QUEUE_AUDIT_URL", self.queue)
        self.now = [NOW]
        monkeypatch.setattr(runtime, "now", lambda: self.now[0])
        self.archives: dict[str, bytes | Exception] = {
            archive_url(DEFAULT_BASE_URL, eco): build_osv_archive(real_records(eco)) for eco in ("PyPI", "npm")
        }
        monkeypatch.setattr(http_fetch, "UrlFetcher", lambda **kw: Fetcher(self.archives))
        self.sync_app = _import("advisories_sync")
        self.validate_app = _import("validate")

    def sync(self) -> dict[str, Any]:
        result: dict[str, Any] = self.sync_app.handler({}, LambdaContext("advisories_sync", 3008, 900))
        return result

    def validate(self, files: dict[str, bytes], name: str) -> dict[str, Any]:
        body = make_tar_gz(files)
        digest = hashlib.sha256(body).hexdigest()
        key = f"sha256/{digest}"
        put = self.s3.put_object(Bucket=BUCKET, Key=key, Body=body)
        pinned = {"bucket": BUCKET, "key": key, "versionId": put.get("VersionId"), "sha256": digest,
                  "size": len(body)}
        event = {"validator": "security", "pinned": pinned, "meta": meta_for(body).model_dump(mode="json")}
        result: dict[str, Any] = self.validate_app.handler(event, LambdaContext("validate_security", 2048, 120))
        return result

    def pointer(self) -> dict[str, Any]:
        return dict(json.loads(self.s3.get_object(Bucket=BUCKET, Key=POINTER_KEY)["Body"].read()))

    def pointer_versions(self) -> int:
        versions = self.s3.list_object_versions(Bucket=BUCKET, Prefix=POINTER_KEY).get("Versions", [])
        return len(versions)

    def audit_types(self) -> list[str]:
        msgs = self.sqs.receive_message(QueueUrl=self.queue, MaxNumberOfMessages=10).get("Messages", [])
        return [json.loads(m["Body"])["type"] for m in msgs]


@pytest.fixture
def cloud(monkeypatch: pytest.MonkeyPatch) -> Iterator[Cloud]:
    for var, value in (("AWS_DEFAULT_REGION", "us-east-1"), ("AWS_ACCESS_KEY_ID", "testing"),
                       ("AWS_SECRET_ACCESS_KEY", "testing"), ("POWERTOOLS_METRICS_NAMESPACE", "Hallmark"),
                       ("ADVISORY_SET_CACHE_SECONDS", "0")):
        monkeypatch.setenv(var, value)
    monkeypatch.delenv("ADVISORY_SET_PATH", raising=False)
    runtime.reset()
    with mock_aws():
        yield Cloud(monkeypatch)
    runtime.reset()


def test_the_sync_writes_a_versioned_pointer_and_audits_the_version(cloud: Cloud) -> None:
    out = cloud.sync()
    assert out["status"] == "published" and out["version"] == 1 and out["records"] == 7
    pointer = cloud.pointer()
    body = cloud.s3.get_object(Bucket=BUCKET, Key=pointer["key"])["Body"].read()
    import hashlib

    assert hashlib.sha256(body).hexdigest() == pointer["sha256"]
    assert cloud.audit_types() == ["AdvisorySetPublished"]
    again = cloud.sync()
    assert again["status"] == "unchanged" and again["version"] == 1
    assert cloud.pointer_versions() == 2  # the bucket keeps every pointer write


def test_a_corrupt_archive_is_refused_and_the_current_set_stays(cloud: Cloud) -> None:
    cloud.sync()
    before = cloud.pointer()
    npm = archive_url(DEFAULT_BASE_URL, "npm")
    good = cloud.archives[npm]
    assert isinstance(good, bytes)
    cloud.archives[npm] = good[: len(good) - 50]
    cloud.now[0] = NOW + timedelta(hours=6)
    with pytest.raises(AdvisorySetRefused, match=r"npm/all\.zip"):
        cloud.sync()
    assert cloud.pointer() == before and cloud.pointer_versions() == 1


def test_security_reads_the_synced_set_and_records_its_version_and_digest(cloud: Cloud) -> None:
    out = cloud.sync()
    clean = cloud.validate({"requirements.txt": b"requests==2.32.3\n"}, "clean")
    assert clean["passed"], clean["reasons"]
    assert clean["stats"]["advisory_set_version"] == 1
    assert clean["stats"]["advisory_set_sha256"] == out["sha256"]
    bad = cloud.validate({"requirements.txt": b"requests==2.0.0\n"}, "old-requests")
    assert not bad["passed"]
    assert any("requests 2.0.0" in r and "PYSEC-2014-13" in r for r in bad["reasons"])


def test_security_fails_closed_without_a_set_and_with_a_stale_one(cloud: Cloud) -> None:
    files = {"requirements.txt": b"requests==2.32.3\n"}
    none = cloud.validate(files, "no-set")
    assert not none["passed"]
    assert any(r.startswith("no advisory set: dependency vetting cannot run") for r in none["reasons"])
    cloud.sync()
    assert cloud.validate(files, "fresh")["passed"]
    cloud.now[0] = NOW + timedelta(hours=73)
    stale = cloud.validate(files, "stale")
    assert not stale["passed"]
    assert any("is 73 h old, older than the 48 h allowed" in r for r in stale["reasons"])
    cloud.s3.delete_object(Bucket=BUCKET, Key=POINTER_KEY)  # a delete marker: no current set
    cloud.now[0] = NOW
    gone = cloud.validate(files, "deleted")
    assert not gone["passed"] and any(r.startswith("no advisory set") for r in gone["reasons"])


def test_only_the_security_validator_gets_an_advisory_source(cloud: Cloud) -> None:
    assert cloud.validate_app.config("security").advisory_source is not None
    assert cloud.validate_app.config("static").advisory_source is None
    assert cloud.validate_app.config("security").advisory_path is None
