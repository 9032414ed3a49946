"""Startup guards (issue 9, item 2): with REQUIRE_KMS, REQUIRE_SIGNING_PROXY or REQUIRE_MTLS set,
a signing function fails at init (import) when its key or its mTLS inputs are missing, with a
message naming what is missing; with every input present it imports."""

from __future__ import annotations

import importlib.util
import itertools
import sys
from pathlib import Path
from types import ModuleType

import pytest

from hallmark.adapters.runtime import ConfigurationError

ROOT = Path(__file__).resolve().parents[2]
# function folder -> the signing key it guards
SIGNERS = {"release_sign": "MANIFEST", "audit_writer": "AUDIT"}
GUARD_ENV = ("REQUIRE_KMS", "REQUIRE_SIGNING_PROXY", "REQUIRE_MTLS", "SIGNING_PROXY_URL",
             "MTLS_CERT_PATH", "MTLS_KEY_PATH", "MTLS_CA_PATH", "KEY_MANIFEST_ID", "KEY_AUDIT_ID")
_fresh = itertools.count()


def _import(function: str) -> ModuleType:
    """Import functions/<function>/app.py as a brand-new module (its init runs again)."""
    name = f"_startup_guard_{function}_{next(_fresh)}"
    spec = importlib.util.spec_from_file_location(name, ROOT / "functions" / function / "app.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        sys.modules.pop(name, None)
    return module


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in GUARD_ENV:
        monkeypatch.delenv(var, raising=False)


def _mtls_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, skip: str | None = None) -> None:
    for var, name in (("MTLS_CERT_PATH", "client.crt"), ("MTLS_KEY_PATH", "client.key"), ("MTLS_CA_PATH", "ca.crt")):
        path = tmp_path / name
        path.write_text("placeholder: the guard checks presence, not content\n")
        if var != skip:
            monkeypatch.setenv(var, str(path))


@pytest.mark.parametrize("function", SIGNERS)
def test_without_any_require_flag_the_function_imports(function: str) -> None:
    assert callable(_import(function).handler)


@pytest.mark.parametrize("function", SIGNERS)
def test_require_kms_without_the_signing_key_fails_at_init_naming_it(
        function: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REQUIRE_KMS", "1")
    with pytest.raises(ConfigurationError) as err:
        _import(function)
    assert f"KEY_{SIGNERS[function]}_ID" in str(err.value)
    assert "KMS" in str(err.value)


@pytest.mark.parametrize("function", SIGNERS)
def test_require_kms_with_the_key_imports(function: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REQUIRE_KMS", "1")
    monkeypatch.setenv(f"KEY_{SIGNERS[function]}_ID", "arn:aws:kms:us-east-1:123456789012:key/guard-test")
    assert callable(_import(function).handler)


def test_require_kms_asks_each_function_only_for_its_own_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REQUIRE_KMS", "1")
    monkeypatch.setenv("KEY_MANIFEST_ID", "arn:aws:kms:us-east-1:123456789012:key/manifest")
    _import("release_sign")
    with pytest.raises(ConfigurationError, match="KEY_AUDIT_ID"):
        _import("audit_writer")


@pytest.mark.parametrize("function", SIGNERS)
def test_require_signing_proxy_without_its_url_fails_naming_it(
        function: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REQUIRE_SIGNING_PROXY", "1")
    with pytest.raises(ConfigurationError, match="SIGNING_PROXY_URL"):
        _import(function)
    monkeypatch.setenv("SIGNING_PROXY_URL", "https://signer.internal:8443")
    assert callable(_import(function).handler)


@pytest.mark.parametrize("function", SIGNERS)
@pytest.mark.parametrize("missing", ["MTLS_CERT_PATH", "MTLS_KEY_PATH", "MTLS_CA_PATH"])
def test_require_mtls_names_the_missing_input(function: str, missing: str, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REQUIRE_MTLS", "1")
    _mtls_files(tmp_path, monkeypatch, skip=missing)
    with pytest.raises(ConfigurationError) as err:
        _import(function)
    message = str(err.value)
    assert missing in message
    assert all(v not in message for v in ("MTLS_CERT_PATH", "MTLS_KEY_PATH", "MTLS_CA_PATH") if v != missing)


@pytest.mark.parametrize("function", SIGNERS)
def test_require_mtls_with_a_path_to_no_file_fails(function: str, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REQUIRE_MTLS", "1")
    _mtls_files(tmp_path, monkeypatch)
    monkeypatch.setenv("MTLS_KEY_PATH", str(tmp_path / "absent.key"))
    with pytest.raises(ConfigurationError, match="MTLS_KEY_PATH"):
        _import(function)


@pytest.mark.parametrize("function", SIGNERS)
def test_require_mtls_with_all_files_present_imports(function: str, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REQUIRE_MTLS", "1")
    _mtls_files(tmp_path, monkeypatch)
    assert callable(_import(function).handler)


@pytest.mark.parametrize("function", SIGNERS)
def test_every_flag_at_once_lists_every_missing_input(function: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for flag in ("REQUIRE_KMS", "REQUIRE_SIGNING_PROXY", "REQUIRE_MTLS"):
        monkeypatch.setenv(flag, "true")
    with pytest.raises(ConfigurationError) as err:
        _import(function)
    message = str(err.value)
    for needle in (f"KEY_{SIGNERS[function]}_ID", "SIGNING_PROXY_URL", "MTLS_CERT_PATH", "MTLS_KEY_PATH",
                   "MTLS_CA_PATH"):
        assert needle in message, message


@pytest.mark.parametrize("function", SIGNERS)
def test_every_flag_with_every_input_imports(function: str, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    for flag in ("REQUIRE_KMS", "REQUIRE_SIGNING_PROXY", "REQUIRE_MTLS"):
        monkeypatch.setenv(flag, "true")
    monkeypatch.setenv(f"KEY_{SIGNERS[function]}_ID", "alias/hallmark-test")
    monkeypatch.setenv("SIGNING_PROXY_URL", "https://signer.internal:8443")
    _mtls_files(tmp_path, monkeypatch)
    assert callable(_import(function).handler)


@pytest.mark.parametrize("value", ["false", "0", "no", "off", "FALSE", " Off ", ""])
def test_a_flag_set_to_false_is_off(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for flag in ("REQUIRE_KMS", "REQUIRE_SIGNING_PROXY", "REQUIRE_MTLS"):
        monkeypatch.setenv(flag, value)
    assert callable(_import("release_sign").handler)


@pytest.mark.parametrize("value", ["1", "true", "True", "yes", "ON"])
def test_a_flag_set_to_true_is_on(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REQUIRE_KMS", value)
    with pytest.raises(ConfigurationError, match="KEY_MANIFEST_ID"):
        _import("release_sign")


@pytest.mark.parametrize("flag", ["REQUIRE_KMS", "REQUIRE_SIGNING_PROXY", "REQUIRE_MTLS"])
def test_a_flag_that_is_not_a_boolean_fails_at_init_naming_it(flag: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(flag, "ture")
    with pytest.raises(ConfigurationError, match=f"{flag}='ture' is not a boolean"):
        _import("release_sign")
