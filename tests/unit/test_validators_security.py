from __future__ import annotations

import json
from typing import Any

import pytest

from hallmark.release.validators import PackageView, ValidationResult, ValidatorConfig
from hallmark.release.validators.security import (
    SemVer,
    find_secrets,
    load_advisories,
    parse_package_lock,
    parse_requirements,
    validate_security,
)
from tests.unit.test_validators_support import ADVISORIES, clean_tar_gz, config, make_tar_gz, make_zip


def _security(files: dict[str, bytes], **cfg: Any) -> ValidationResult:
    return validate_security(PackageView(make_tar_gz(files)), config(**cfg))


def _aws_key_id() -> str:
    return "AK" + "IA" + "HALLMARKTEST" + "7Q2Z"  # assembled at run time: no scanner sees it in the repo


def test_clean_package_passes() -> None:
    result = validate_security(PackageView(clean_tar_gz()), config())
    assert result.passed, result.reasons
    assert result.stats["advisories"] == len(json.loads(ADVISORIES.read_text()))
    assert result.stats["dependencies"] == 2


def test_vulnerable_pinned_requirement_fails() -> None:
    result = _security({"requirements.txt": b"flask==3.0.0\nrequests==2.19.0  # old\n"})
    assert not result.passed
    found = {f["advisory"]: f for f in result.findings if f["rule"] == "vulnerable-dependency"}
    assert set(found) == {"PYSEC-2018-28", "GHSA-j8r2-6x86-q33q"}  # real records (events/advisories/README.md)
    finding = found["PYSEC-2018-28"]
    assert finding["package"] == "requests"
    assert finding["version"] == "2.19.0"
    assert finding["fixed"] == ["2.20.0"]
    assert finding["line"] == 2
    assert any("requests 2.19.0" in r and "PYSEC-2018-28" in r for r in result.reasons)


def test_requirement_continuations_hashes_and_options() -> None:
    text = (
        "-r base.txt\n--index-url https://pypi.org/simple\n"
        "Requests[socks]==2.31.0 \\\n    --hash=sha256:" + "0" * 64 + "\n"
        "pyyaml==5.4 ; python_version >= '3.8'\n"
        "git+https://github.com/example/thing.git\n"
    )
    deps, unparsed = parse_requirements(text, "requirements.txt")
    assert [(d.name, d.version, d.line) for d in deps] == [("Requests", "2.31.0", 3), ("pyyaml", "5.4", 5)]
    assert unparsed == 1


def test_ranges_warn_and_fail_only_when_configured() -> None:
    files = {"requirements.txt": b"requests>=2.0\n"}
    warned = _security(files)
    assert warned.passed
    assert {f["rule"] for f in warned.findings} == {"vulnerable-range"}
    assert _security({"requirements.txt": b"requests>=2.32.0\n"}).findings == []
    strict = _security(files, fail_on_vulnerable_range=True)
    assert not strict.passed


def test_pyproject_dependencies_with_last_affected_and_versions() -> None:
    pyproject = b'[project]\nname = "x"\ndependencies = ["PyYAML==5.2", "urllib3==2.2.2"]\n'
    result = _security({"pyproject.toml": pyproject})
    assert not result.passed
    assert {f["advisory"] for f in result.findings} == {"PYSEC-2021-142"}
    ok = _security(
        {"pyproject.toml": b'[project]\nname = "x"\ndependencies = ["pyyaml==5.4", "urllib3==1.26.0"]\n'}
    )
    assert ok.passed, ok.reasons


@pytest.mark.parametrize("version", [2, 3])
def test_package_lock_v2_v3(version: int) -> None:
    lock = {
        "name": "app",
        "lockfileVersion": version,
        "packages": {
            "": {"name": "app"},
            "node_modules/lodash": {"version": "4.17.20"},
            "node_modules/a/node_modules/minimist": {"version": "1.2.6"},
        },
    }
    result = _security({"package-lock.json": json.dumps(lock, indent=2).encode()})
    assert not result.passed
    (finding,) = result.findings
    assert (finding["package"], finding["version"], finding["ecosystem"]) == ("lodash", "4.17.20", "npm")
    assert finding["line"] > 0


def test_package_lock_v1_nested_dependencies() -> None:
    lock = {
        "lockfileVersion": 1,
        "dependencies": {"a": {"version": "1.0.0", "dependencies": {"minimist": {"version": "1.2.5"}}}},
    }
    deps, _ = parse_package_lock(json.dumps(lock), "package-lock.json")
    assert {(d.name, d.version) for d in deps} == {("a", "1.0.0"), ("minimist", "1.2.5")}
    result = _security({"package-lock.json": json.dumps(lock).encode()})
    assert [f["advisory"] for f in result.findings] == ["GHSA-xvch-5gv4-984h"]


def test_semver_precedence() -> None:
    ordered = [
        "1.0.0-alpha",
        "1.0.0-alpha.1",
        "1.0.0-alpha.beta",
        "1.0.0-beta.2",
        "1.0.0-beta.11",
        "1.0.0",
        "1.0.1",
    ]
    parsed = [SemVer(v) for v in ordered]
    assert parsed == sorted(reversed(parsed))
    assert SemVer("4.17.20") < SemVer("4.17.21") < SemVer("v4.18.0+build")


def test_fixture_advisory_set_holds_the_committed_real_records() -> None:
    records = json.loads(ADVISORIES.read_text())
    committed = {p.stem: json.loads(p.read_text()) for p in (ADVISORIES.parent / "osv").glob("*.json")}
    assert {r["id"]: r for r in records} == committed
    assert all(r["id"].startswith(("PYSEC-", "GHSA-")) for r in records)
    assert load_advisories(ADVISORIES).count == len(records)


def test_missing_advisory_set_fails_closed_and_none_configured_is_said() -> None:
    missing = validate_security(PackageView(clean_tar_gz()), config(advisory_path="/nonexistent/osv.json"))
    assert not missing.passed
    assert any("could not be loaded" in r for r in missing.reasons)
    none = validate_security(PackageView(clean_tar_gz()), ValidatorConfig())
    assert not none.passed
    assert "no advisory set: dependency vetting cannot run" in none.reasons


def test_leaked_aws_key_fails_and_the_value_is_not_in_the_result() -> None:
    key = _aws_key_id()
    secret = "wJalrXUtnFEMI" + "/K7MDENG/bPxRfiCY" + "HALLMARK12"  # 40 characters
    config_py = f'REGION = "eu-west-1"\nAWS_ACCESS_KEY_ID = "{key}"\naws_secret_access_key = "{secret}"\n'
    result = _security({"app/settings.py": config_py.encode()})
    assert not result.passed
    rules = {(f["rule"], f["file"], f["line"]) for f in result.findings}
    assert ("aws-access-key-id", "app/settings.py", 2) in rules
    assert ("aws-secret-access-key", "app/settings.py", 3) in rules
    dumped = result.model_dump_json()
    assert key not in dumped and secret not in dumped
    assert any("leaked secrets" in r for r in result.reasons)


def test_other_secret_rules() -> None:
    pem = "-----BEGIN " + "RSA PRIVATE KEY-----\nMIIB...\n"
    gh = "ghp" + "_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
    slack = "xox" + "b-" + "1234567890-abcdefghijklmn"
    generic = "db_password = '" + "Zq8#vL2$pW9!mR4t" + "'\n"
    text = f"{pem}token: {gh}\nSLACK={slack}\n{generic}"
    rules = {f["rule"] for f in find_secrets(text, "f", 3.5)}
    assert rules == {"private-key", "github-token", "slack-token", "high-entropy-assignment"}


def test_documented_examples_and_low_entropy_values_are_not_secrets() -> None:
    text = (
        'AWS_ACCESS_KEY_ID = "AKIA' + 'IOSFODNN7EXAMPLE"\n'
        'password = "changeme-changeme"\n'
        "token = get_token(user)\n"
        "secret_name = aaaaaaaaaaaaaaaaaaaa\n"
    )
    assert find_secrets(text, "f", 3.5) == []


def test_many_small_members_cannot_add_up_to_a_scan_bomb() -> None:
    files = {f"z{i:02}.txt": bytes(64 * 1024) + b"x" for i in range(40)}  # 2.5 MiB in all
    result = validate_security(PackageView(make_zip(files)), config(max_total_uncompressed=1024 * 1024))
    assert not result.passed
    assert result.stats["scan_budget_exhausted"] is True
    assert any("scan is incomplete" in r for r in result.reasons)
