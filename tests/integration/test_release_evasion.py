"""Issue 16, part 3, through the real release flow on the local cloud: packages that used to be
Published by packing or encoding what the validators look for. Each must end Rejected, with an
audited ``ValidationFailed`` naming the validator and a reason, and a ``PackageRejected``.

Secrets and personal data are assembled at run time (nothing real-looking is in the repository).
"""

from __future__ import annotations

import gzip
import json
import lzma
import time
from collections.abc import Callable
from typing import Any

import pytest

from hallmark_tools import samples
from hallmark_tools.driver import Driver

MiB = 1024 * 1024


def _aws_pair() -> str:
    secret = "wJalr" + "XUtnFEMI/K7MDENG/bPxRfiCY" + "Q1w2E3r4T5"
    return f'aws_access_key_id = "{samples.fake_aws_key_id()}"\naws_secret_access_key = "{secret}"\n'


def _pem() -> str:
    return "-----BEGIN " + "OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAA\n-----END " + "OPENSSH PRIVATE KEY-----\n"


def _pii() -> str:
    card = "4111" + " 1111" + " 1111" + " 1111"
    ssn = "219-" + "45-" + "6780"
    return f"name,card,ssn\nAda,{card},{ssn}\n"


def _package_json(**deps: str) -> bytes:
    return json.dumps({"name": "web", "version": "1.0.0", "dependencies": deps}, indent=2).encode()


#: (attack, extra files for the clean package, the validator that must reject, text in its reason)
ATTACKS: list[tuple[str, Callable[[], dict[str, bytes]], str, str]] = [
    ("secret-nested-zip",
     lambda: {"vendor/bundle.zip": samples.zip_bytes({"conf/aws.ini": _aws_pair().encode()})},
     "security", "vendor/bundle.zip!/conf/aws.ini"),
    ("vulnerable-nested-tgz",
     lambda: {"deps/app.tar.gz": samples.tar_gz({"requirements.txt": b"requests==2.0.0\n"})},
     "security", "requests 2.0.0"),
    ("pii-nested-zip",
     lambda: {"fixtures.zip": samples.zip_bytes({"data/customers.csv": _pii().encode()})},
     "compliance", "fixtures.zip!/data/customers.csv"),
    ("secret-after-padding",
     lambda: {"data/blob.txt": b"\n" * (4 * MiB + 17) + _aws_pair().encode()},
     "security", "data/blob.txt:4194322"),
    ("secret-utf16le",
     lambda: {"conf/settings.ini": _aws_pair().encode("utf-16")},
     "security", "conf/settings.ini"),
    ("secret-utf16be",
     lambda: {"conf/settings.ini": ("\ufeff" + _aws_pair()).encode("utf-16-be")},
     "security", "conf/settings.ini"),
    ("secret-utf32",
     lambda: {"conf/settings.ini": _aws_pair().encode("utf-32")},
     "security", "conf/settings.ini"),
    ("secret-behind-nul",
     lambda: {"keys/deploy": b"\0" + _pem().encode()},
     "security", "private-key"),
    ("lodash-package-json",
     lambda: {"web/package.json": _package_json(lodash="4.17.20")},
     "security", "lodash 4.17.20 (npm)"),
    ("nested-too-deep",
     lambda: {"a.zip": samples.zip_bytes({"b.zip": samples.zip_bytes({"c.zip": samples.zip_bytes(
         {"x.txt": b"hello\n"})})})},
     "security", "exceeds depth 2"),
    ("secret-nested-tar-xz",
     lambda: {"vendor/keys.tar.xz": lzma.compress(gzip.decompress(samples.tar_gz({"id_ed25519": _pem().encode()})))},
     "security", "vendor/keys.tar.xz!/id_ed25519"),
    ("bom-before-utf8",
     lambda: {"conf/x.ini": b"\xff\xfe" + _aws_pair().encode()},
     "security", "conf/x.ini"),
    ("zstd-unreadable",
     lambda: {"data/blob.zst": b"\x28\xb5\x2f\xfd" + bytes(64)},
     "compliance", "data/blob.zst is zstd-compressed data"),
    ("zip-appended-to-png",
     lambda: {"assets/logo.png": b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 16
              + samples.zip_bytes({"hidden/aws.ini": _aws_pair().encode()})},
     "security", "assets/logo.png!/hidden/aws.ini"),
    ("secret-in-gzip-file",
     lambda: {"logs/boot.log.gz": gzip.compress(_aws_pair().encode(), mtime=0)},
     "security", "logs/boot.log.gz!/boot.log"),
]


def _events_of(driver: Driver, package_id: str, wanted: set[str], timeout: float = 30.0) -> list[dict[str, Any]]:
    """The release chain's events about ``package_id`` once every ``wanted`` type is in (audit is async)."""
    deadline = time.monotonic() + timeout
    while True:
        events: list[dict[str, Any]] = []
        after = 0
        while True:
            page = driver.ok("GET", f"/audit/release/events?after={after}&limit=1000", "auditor")
            events += [json.loads(e) if isinstance(e, str) else e for e in page["events"]]
            if not page["events"] or page["next"] is None or page["next"] >= page["total"]:
                break
            after = page["next"]
        mine = [e for e in events if e.get("subject") == package_id]
        if wanted <= {e["type"] for e in mine} or time.monotonic() > deadline:
            return mine
        time.sleep(0.2)


@pytest.mark.parametrize(("attack", "files", "validator", "needle"), ATTACKS, ids=[a[0] for a in ATTACKS])
def test_packed_or_encoded_content_is_rejected(driver: Driver, attack: str, files: Callable[[], dict[str, bytes]],
                                               validator: str, needle: str) -> None:
    name = f"evade-{attack}"
    body = samples.tar_gz({**samples.clean_files(name), **files()})
    pid = driver.submit(body, name=name, version="1.0.0")
    doc = driver.wait_package(pid)
    assert doc["status"] == "Rejected", doc
    assert doc["listingId"] is None and doc["manifest"] is None
    assert not doc["validators"][validator]["passed"]
    assert any(r.startswith(f"{validator}:") and needle in r for r in doc["reasons"]), doc["reasons"]

    events = _events_of(driver, pid, {"ValidationFailed", "PackageRejected"})
    failed = [e for e in events if e["type"] == "ValidationFailed" and e["data"]["validator"] == validator]
    assert failed, [e["type"] for e in events]
    assert any(needle in reason for reason in failed[0]["data"]["reasons"])
    assert any(e["type"] == "PackageRejected" for e in events)
    assert not any(e["type"] in ("ManifestSigned", "PackagePublished") for e in events)
