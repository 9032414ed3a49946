"""Issue 16, part 2: the smoke step is sealed. Each hostile smoke command below ran against the
local cloud's ``validate_smoke`` function (the sealed runner, ``functions/smoke_runner``), which
gets the package as a presigned GET URL of the pinned (versioned) object, as on AWS.

The release state machine passes ``$.upload.value.pinned`` once the intake step pins the object;
until then these tests invoke the function directly with a presigned URL made here.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hallmark_tools import samples
from hallmark_tools.localcloud.cloud import HandlerError, LocalCloud

ROOT = Path(__file__).resolve().parents[2]
CANARY = "canary-" + secrets.token_hex(16)
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="namespaces and the uid switch need root")


@pytest.fixture(scope="module")
def advisory_copy() -> Iterator[Path]:
    """Stands for events/advisories/osv-sample.json: a copy outside /tmp, writable by anyone."""
    folder = Path(tempfile.mkdtemp(prefix="hallmark-smoke-advisories-", dir="/var/tmp"))
    folder.chmod(0o777)
    path = folder / "osv-sample.json"
    shutil.copyfile(ROOT / "events" / "advisories" / "osv-sample.json", path)
    path.chmod(0o666)
    try:
        yield path
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def cloud(advisory_copy: Path) -> Iterator[LocalCloud]:
    # a secret in the runner's environment (on Lambda: the role's credentials)
    with LocalCloud(env={"ADVISORY_SET_PATH": str(advisory_copy), "HALLMARK_SMOKE_CANARY": CANARY}) as c:
        yield c


def _package(command: list[str], **extra: Any) -> bytes:
    lines = ["[smoke]", f"command = {json.dumps(command)}", *(f"{k} = {v}" for k, v in extra.items())]
    return samples.tar_gz({"hallmark.toml": ("\n".join(lines) + "\n").encode(), "README.md": b"# demo\n"})


def _meta(body: bytes) -> dict[str, Any]:
    return {"name": "smoke-demo", "version": "1.0.0", "type": "library", "target": "python", "impact": "LOW",
            "sha256": hashlib.sha256(body).hexdigest(), "license": "MIT", "submitter": "alice"}


def _pin(cloud: LocalCloud, body: bytes) -> dict[str, Any]:
    """What the intake step will hand on: the pinned object and a presigned GET of its version."""
    import boto3

    s3 = boto3.client("s3")
    bucket = cloud.resources["BUCKET_PACKAGES"]
    key = f"uploads/pkg-{secrets.token_hex(6)}"
    version = s3.put_object(Bucket=bucket, Key=key, Body=body)["VersionId"]
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key, "VersionId": version},
                                    ExpiresIn=300)
    return {"bucket": bucket, "key": key, "versionId": version, "sha256": hashlib.sha256(body).hexdigest(),
            "size": len(body), "getUrl": url}


def _invoke(cloud: LocalCloud, body: bytes, **override: Any) -> dict[str, Any]:
    pinned = _pin(cloud, body)
    payload = {"validator": "smoke", "packageId": "pkg-1", "url": pinned["getUrl"], "sha256": pinned["sha256"],
               "size": pinned["size"], "meta": _meta(body), **override}
    result: dict[str, Any] = cloud.invoke("validate_smoke", payload)
    return result


def _py(code: str) -> bytes:
    return _package(["python3", "-c", code])


def test_the_sealed_function_runs_a_clean_smoke_command(cloud: LocalCloud) -> None:
    result = _invoke(cloud, _py("print('ok')"))
    assert result["validator"] == "smoke"
    assert result["passed"], result["reasons"]
    expected_isolation = os.geteuid() == 0
    assert result["stats"]["isolation"] == dict.fromkeys(("pid", "mount", "net", "uid"), expected_isolation)


def test_the_sealed_function_has_no_access_and_no_secret_environment(cloud: LocalCloud) -> None:
    fn = cloud.topology.function("validate_smoke")
    assert fn.access == () and fn.code_dir == "smoke_runner" and fn.env == ()


def test_bytes_that_differ_from_the_pinned_digest_are_never_run(cloud: LocalCloud) -> None:
    body = _py("print('ok')")
    other = _py("import sys; sys.exit(0)")
    pinned = _pin(cloud, other)
    result = cloud.invoke("validate_smoke", {"validator": "smoke", "packageId": "p", "url": pinned["getUrl"],
                                             "sha256": hashlib.sha256(body).hexdigest(), "size": len(other),
                                             "meta": _meta(body)})
    assert not result["passed"] and result["reasons"] == ["artifact digest mismatch"]


def test_a_write_to_the_upload_key_after_pinning_does_not_change_what_is_run(cloud: LocalCloud) -> None:
    import boto3

    body = _py("print('ok')")
    pinned = _pin(cloud, body)
    boto3.client("s3").put_object(Bucket=pinned["bucket"], Key=pinned["key"], Body=_py("import sys; sys.exit(1)"))
    result = cloud.invoke("validate_smoke", {"validator": "smoke", "packageId": "p", "url": pinned["getUrl"],
                                             "sha256": pinned["sha256"], "size": pinned["size"],
                                             "meta": _meta(body)})
    assert result["passed"], result["reasons"]  # the pinned version, not the later write


def test_a_bad_payload_fails_closed(cloud: LocalCloud) -> None:
    result = cloud.invoke("validate_smoke", {"validator": "smoke", "packageId": "p", "sha256": "0" * 64,
                                             "size": 1, "meta": {}})
    assert not result["passed"] and "invalid smoke payload: url is missing" in result["reasons"][0]
    gone = cloud.invoke("validate_smoke", {"validator": "smoke", "packageId": "p", "sha256": "0" * 64, "size": 1,
                                           "meta": {}, "url": "https://no-such-bucket-x.s3.amazonaws.com/k"})
    assert not gone["passed"] and gone["reasons"][0].startswith("smoke not run:")


@needs_root
def test_the_runners_secret_environment_is_not_visible(cloud: LocalCloud) -> None:
    assert os.environ["HALLMARK_SMOKE_CANARY"] == CANARY  # the runner holds it
    code = (
        "import os, sys\n"
        "hit = 'HALLMARK_SMOKE_CANARY' in os.environ\n"
        "for n in [str(os.getppid())] + [n for n in os.listdir('/proc') if n.isdigit()]:\n"
        "    try:\n"
        "        hit = hit or b'HALLMARK_SMOKE_CANARY=' in open('/proc/' + n + '/environ', 'rb').read()\n"
        "    except OSError:\n"
        "        pass\n"
        "sys.exit(0 if hit else 6)\n"
    )
    result = _invoke(cloud, _py(code))
    assert not result["passed"] and result["stats"]["exit_code"] == 6


@needs_root
def test_the_issuer_key_cannot_leave_through_the_exit_code(cloud: LocalCloud) -> None:
    key = cloud.issuer.path
    assert key.read_bytes()[:1] == b"-"  # a PEM: exit code 45 would be its first byte
    code = f"import sys\ntry:\n    sys.exit(open({str(key)!r}, 'rb').read(1)[0])\nexcept OSError:\n    sys.exit(3)\n"
    result = _invoke(cloud, _py(code))
    assert result["stats"]["exit_code"] == 3


@needs_root
def test_a_smoke_command_cannot_overwrite_the_advisory_set(cloud: LocalCloud, advisory_copy: Path) -> None:
    assert os.environ["ADVISORY_SET_PATH"] == str(advisory_copy)
    before = advisory_copy.read_bytes()
    code = (
        f"import sys\np = {str(advisory_copy)!r}\n"
        "try:\n"
        "    open(p, 'w').write('{\"advisories\": []}')\n"
        "except OSError:\n"
        "    sys.exit(8)\n"
    )
    result = _invoke(cloud, _py(code))
    assert not result["passed"] and result["stats"]["exit_code"] == 8
    assert advisory_copy.read_bytes() == before


@needs_root
def test_limits_are_reported_by_name(cloud: LocalCloud) -> None:
    fork_bomb = (
        "import os, sys, time\n"
        "for _ in range(400):\n"
        "    try:\n"
        "        pid = os.fork()\n"
        "    except OSError as exc:\n"
        "        print(exc, file=sys.stderr); sys.exit(1)\n"
        "    if pid == 0:\n"
        "        time.sleep(30); os._exit(0)\n"
    )
    assert _invoke(cloud, _py(fork_bomb))["stats"]["outcome"] == "process-limit"
    cpu = _package(["python3", "-c", "while True: pass"], timeout_s=30, cpu_s=1)
    assert _invoke(cloud, cpu)["stats"]["outcome"] == "cpu-limit"
    hog = _package(["python3", "-c", "b = bytearray(1 << 30)"], memory_mb=64)
    assert _invoke(cloud, hog)["stats"]["outcome"] == "memory-limit"
    big = _py("open('big', 'wb').write(b'x' * (65 * 1024 * 1024))")
    assert _invoke(cloud, big)["stats"]["outcome"] == "file-size-limit"
    slow = _package(["python3", "-c", "import time; time.sleep(30)"], timeout_s=1)
    assert _invoke(cloud, slow)["stats"]["outcome"] == "timeout"


def test_handler_errors_are_not_raised_for_a_hostile_package(cloud: LocalCloud) -> None:
    try:
        result = _invoke(cloud, _py("import os; os.kill(os.getpid(), 9)"))
    except HandlerError as exc:  # pragma: no cover - the failure this test guards against
        pytest.fail(f"the sealed function raised {exc}")
    assert not result["passed"] and result["stats"]["outcome"] == "signal"
