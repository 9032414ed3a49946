"""The sealed smoke function's handler (functions/smoke_runner/app.py), called directly.

The download itself is a presigned GET; here ``fetch_capped`` is replaced by the bytes the test
wants the URL to answer with (the local-cloud flow with a real presigned URL is in
tests/integration/test_smoke_escape.py)."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from hallmark.adapters.http_fetch import FetchError
from hallmark_tools.localcloud.cloud import LambdaContext
from tests.unit.test_validators_support import make_tar_gz

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def app() -> ModuleType:
    spec = importlib.util.spec_from_file_location("_smoke_runner_app", ROOT / "functions" / "smoke_runner" / "app.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _package(code: str) -> bytes:
    toml = f"[smoke]\ncommand = {json.dumps(['python3', '-c', code])}\n".encode()
    return make_tar_gz({"hallmark.toml": toml, "README.md": b"# demo\n"})


def _payload(body: bytes, **override: Any) -> dict[str, Any]:
    meta = {"name": "demo", "version": "1.0.0", "type": "library", "target": "python", "impact": "LOW",
            "sha256": hashlib.sha256(body).hexdigest(), "license": "MIT", "submitter": "alice"}
    return {"validator": "smoke", "packageId": "p-1", "url": "https://example.invalid/pinned?X-Amz-Signature=x",
            "sha256": hashlib.sha256(body).hexdigest(), "size": len(body), "meta": meta, **override}


def _serve(app: ModuleType, monkeypatch: pytest.MonkeyPatch, answer: bytes | Exception) -> list[tuple[str, int]]:
    calls: list[tuple[str, int]] = []

    def fake(url: str, cap: int, **_: Any) -> bytes:
        calls.append((url, cap))
        if isinstance(answer, Exception):
            raise answer
        return answer[: cap + 1]

    monkeypatch.setattr(app, "fetch_capped", fake)
    return calls


def _call(app: ModuleType, event: Any) -> dict[str, Any]:
    result: dict[str, Any] = app.handler(event, LambdaContext("validate_smoke", 1024, 180))
    return result


def test_the_pinned_bytes_run_in_the_sandbox(app: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    body = _package("print('ok')")
    calls = _serve(app, monkeypatch, body)
    result = _call(app, _payload(body))
    assert result["validator"] == "smoke" and result["passed"], result["reasons"]
    assert calls == [("https://example.invalid/pinned?X-Amz-Signature=x", len(body))]  # capped at the size


def test_other_bytes_behind_the_url_are_an_artifact_digest_mismatch(
    app: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = _package("print('ok')")
    _serve(app, monkeypatch, _package("import sys; sys.exit(0)  # swapped"))
    result = _call(app, _payload(body))
    assert not result["passed"] and result["reasons"] == ["artifact digest mismatch"]
    _serve(app, monkeypatch, body + b"trailing")
    longer = _call(app, _payload(body))
    assert longer["reasons"] == ["artifact digest mismatch"]
    assert longer["stats"]["actual_size"] == len(body) + 1  # one byte past the cap is read, no more


def test_a_failed_download_fails_closed(app: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    body = _package("print('ok')")
    _serve(app, monkeypatch, FetchError("the package URL answered HTTP 403"))
    result = _call(app, _payload(body))
    assert not result["passed"] and result["reasons"] == ["smoke not run: the package URL answered HTTP 403"]


@pytest.mark.parametrize(
    ("override", "why"),
    [
        ({"validator": "static"}, "validator must be 'smoke'"),
        ({"url": None}, "url is missing"),
        ({"sha256": "abc"}, "sha256 must be 64 hex digits"),
        ({"size": -1}, "size must be a non-negative integer"),
        ({"size": True}, "size must be a non-negative integer"),
        ({"meta": "x"}, "meta must be an object"),
    ],
)
def test_a_bad_payload_fails_closed_without_a_download(
    app: ModuleType, monkeypatch: pytest.MonkeyPatch, override: dict[str, Any], why: str
) -> None:
    body = _package("print('ok')")
    calls = _serve(app, monkeypatch, body)
    result = _call(app, _payload(body, **override))
    assert not result["passed"] and result["reasons"] == [f"smoke not run: invalid smoke payload: {why}"]
    assert calls == []


def test_an_oversized_package_is_not_downloaded(app: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    body = _package("print('ok')")
    calls = _serve(app, monkeypatch, body)
    result = _call(app, _payload(body, size=10**12))
    assert not result["passed"] and "exceeds the size limit" in result["reasons"][0]
    assert calls == []


def test_on_lambda_tmp_is_scrubbed_before_and_after_each_run(
    app: ModuleType, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # a warm execution environment keeps /tmp: what a previous package left there must go
    (tmp_path / "left-by-the-last-package").write_text("x")
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / "f").write_text("y")
    seen: list[list[str]] = []
    body = _package("print('ok')")

    def fake(url: str, cap: int, **_: Any) -> bytes:
        seen.append(sorted(p.name for p in tmp_path.iterdir()))
        return body

    monkeypatch.setattr(app, "fetch_capped", fake)
    monkeypatch.setattr(app.tempfile, "gettempdir", lambda: str(tmp_path))
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "validate_smoke")
    monkeypatch.setenv("LAMBDA_TASK_ROOT", "/var/task")
    result = _call(app, _payload(body))
    assert result["passed"], result["reasons"]
    assert seen == [[]]  # scrubbed before the download
    assert list(tmp_path.iterdir()) == []  # and after the run


def test_locally_tmp_is_left_alone(app: ModuleType, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "keep").write_text("x")
    monkeypatch.setattr(app.tempfile, "gettempdir", lambda: str(tmp_path))
    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_NAME", raising=False)
    body = _package("print('ok')")
    _serve(app, monkeypatch, body)
    assert _call(app, _payload(body))["passed"]
    assert (tmp_path / "keep").exists()


def test_fetch_capped_reads_a_presigned_url_up_to_one_byte_past_the_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    import boto3
    from moto import mock_aws

    from hallmark.adapters.http_fetch import fetch_capped

    for var, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(var, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="pkgs")
        s3.put_object(Bucket="pkgs", Key="k", Body=b"0123456789")
        url = s3.generate_presigned_url("get_object", Params={"Bucket": "pkgs", "Key": "k"}, ExpiresIn=60)
        assert fetch_capped(url, 10) == b"0123456789"
        assert fetch_capped(url, 4) == b"01234"
        missing = s3.generate_presigned_url("get_object", Params={"Bucket": "pkgs", "Key": "nope"}, ExpiresIn=60)
        with pytest.raises(FetchError, match="HTTP 404"):
            fetch_capped(missing, 10)
    with pytest.raises(FetchError, match="must be http"):
        fetch_capped("file:///etc/passwd", 10)
