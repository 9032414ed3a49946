"""Issue 16, part 4: the advisory set on the local cloud (seeded at boot through the
advisories_sync function from the committed real OSV records).

Attacks / cases:
- no advisory set (the pointer deleted, the sync blocked): a package with dependencies is
  Rejected, with an audited ValidationFailed (data.validator=security) giving the reason;
- a fresh set: requests==2.0.0 is Rejected citing the real advisory (PYSEC-2014-13), and the
  security result records the set's version and sha256;
- a clean package's signed manifest preconditions carry the security digest over that set;
- the boot sync is audited as AdvisorySetPublished.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from hallmark.release.advisories import POINTER_KEY
from hallmark_tools import samples
from hallmark_tools.driver import Driver
from hallmark_tools.localcloud.cloud import LocalCloud


def _bucket(cloud: LocalCloud) -> str:
    return cloud.resources["BUCKET_PACKAGES"]


def _pointer(cloud: LocalCloud) -> dict[str, Any]:
    import json

    body = cloud.client("s3").get_object(Bucket=_bucket(cloud), Key=POINTER_KEY)["Body"].read()
    return dict(json.loads(body))


def _events(cloud: LocalCloud, driver: Driver, subject: str, types: set[str]) -> list[dict[str, Any]]:
    """The release-chain events of ``subject`` once every type in ``types`` is there."""
    deadline = time.monotonic() + 60
    while True:
        cloud.wait_idle(timeout=30)
        events = [e for e in driver.ok("GET", "/audit/release/events?limit=1000", "auditor")["events"]
                  if e["subject"] == subject]
        if types <= {e["type"] for e in events} or time.monotonic() > deadline:
            return events
        time.sleep(0.2)


@pytest.fixture
def no_advisory_set(shared_cloud: LocalCloud) -> Iterator[None]:
    """The current set is gone (a delete marker on the pointer) and the scheduled sync fails."""

    def blocked(event: dict[str, Any]) -> None:
        raise RuntimeError("advisories_sync blocked by the test")

    shared_cloud.faults["advisories_sync"] = blocked
    shared_cloud.wait_idle(timeout=30)  # a sync already under way has finished before the delete
    shared_cloud.client("s3").delete_object(Bucket=_bucket(shared_cloud), Key=POINTER_KEY)
    try:
        yield
    finally:
        del shared_cloud.faults["advisories_sync"]
        shared_cloud.invoke("advisories_sync", {"source": "test.restore"})


def test_the_boot_sync_published_an_audited_set_of_real_records(shared_cloud: LocalCloud, driver: Driver) -> None:
    pointer = _pointer(shared_cloud)
    assert pointer["version"] >= 1 and pointer["records"] == 7 and pointer["ecosystems"] == ["PyPI", "npm"]
    assert pointer["key"] == f"advisories/sets/{pointer['sha256']}.json"
    events = _events(shared_cloud, driver, f"advisory-set/{pointer['sha256']}", {"AdvisorySetPublished"})
    (published,) = [e for e in events if e["type"] == "AdvisorySetPublished"]
    assert published["data"]["sha256"] == pointer["sha256"] and published["data"]["records"] == 7


@pytest.mark.usefixtures("no_advisory_set")
def test_without_an_advisory_set_a_package_with_dependencies_is_rejected(shared_cloud: LocalCloud,
                                                                          driver: Driver) -> None:
    pid = driver.submit(samples.clean_package("no-advisories"), name="no-advisories", version="1.0.0")
    doc = driver.wait_package(pid)
    assert doc["status"] == "Rejected", doc
    assert not doc["validators"]["security"]["passed"]
    assert any(r.startswith("security: no advisory set: dependency vetting cannot run") for r in doc["reasons"]), \
        doc["reasons"]
    events = _events(shared_cloud, driver, pid, {"ValidationFailed", "PackageRejected"})
    failed = [e for e in events if e["type"] == "ValidationFailed"]
    assert [e["data"]["validator"] for e in failed] == ["security"]
    assert any(r.startswith("no advisory set: dependency vetting cannot run") for r in failed[0]["data"]["reasons"])
    assert "PackageRejected" in {e["type"] for e in events}


def test_with_a_fresh_set_requests_2_0_0_is_rejected_citing_the_advisory(shared_cloud: LocalCloud,
                                                                         driver: Driver) -> None:
    shared_cloud.invoke("advisories_sync", {"source": "test.fresh"})
    pointer = _pointer(shared_cloud)
    files = samples.clean_files("old-requests")
    files["requirements.txt"] = b"requests==2.0.0\n"
    body = samples.tar_gz(files)
    pid = driver.submit(body, name="old-requests", version="1.0.0")
    doc = driver.wait_package(pid)
    assert doc["status"] == "Rejected", doc
    security = doc["validators"]["security"]
    assert not security["passed"]
    assert security["stats"]["advisory_set_version"] == pointer["version"]
    assert security["stats"]["advisory_set_sha256"] == pointer["sha256"]
    assert any(r.startswith("security: vulnerable dependency: requests 2.0.0") and "PYSEC-2014-13" in r
               for r in doc["reasons"]), doc["reasons"]
    events = _events(shared_cloud, driver, pid, {"ValidationFailed", "PackageRejected"})
    (failed,) = [e for e in events if e["type"] == "ValidationFailed"]
    assert failed["data"]["validator"] == "security"
    assert any("PYSEC-2014-13" in r for r in failed["data"]["reasons"])


def test_a_published_manifest_says_which_set_it_was_vetted_against(shared_cloud: LocalCloud,
                                                                   driver: Driver) -> None:
    pointer = _pointer(shared_cloud)
    doc = driver.wait_package(driver.submit(samples.clean_package("vetted"), name="vetted", version="1.0.0"))
    assert doc["status"] == "Published", doc
    security = doc["validators"]["security"]
    assert security["stats"]["advisory_set_sha256"] == pointer["sha256"]
    assert security["stats"]["advisory_set_version"] == pointer["version"]
