"""Issue 16, part 3: packages that evaded the content validators by packing and encoding.

Each attack here was Published before (see the report in the issue); each must now be rejected
with a reason a submitter can act on. Secrets and personal data are assembled at run time.
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import json
import lzma
from typing import Any

import pytest

from hallmark.release.validators import PackageView, ValidationResult, ValidatorConfig
from hallmark.release.validators._text import detect_encoding, is_binary
from hallmark.release.validators.attribution import validate_attribution
from hallmark.release.validators.compliance import validate_compliance
from hallmark.release.validators.manifests import parse_package_json, parse_pyproject, poetry_to_pep440
from hallmark.release.validators.security import validate_security
from tests.unit.test_validators_support import CLEAN_FILES, config, make_tar_gz, make_zip

MiB = 1024 * 1024


def _aws_key_id() -> str:
    return "AK" + "IA" + "HALLMARKEVADE" + "7Q2"  # assembled at run time


def _aws_pair() -> str:
    secret = "wJalr" + "XUtnFEMI/K7MDENG/bPxRfiCY" + "Q1w2E3r4T5"
    return f'aws_access_key_id = "{_aws_key_id()}"\naws_secret_access_key = "{secret}"\n'


def _pem() -> str:
    return "-----BEGIN " + "RSA PRIVATE KEY-----\nMIIEow" + "IBAAKCAQEA\n-----END " + "RSA PRIVATE KEY-----\n"


def _card() -> str:
    return "4111" + " 1111" + " 1111" + " 1111"


def _ssn() -> str:
    return "219-" + "45-" + "6780"


def _pkg(files: dict[str, bytes]) -> PackageView:
    return PackageView(make_tar_gz({**CLEAN_FILES, **files}))


def _security(files: dict[str, bytes], **cfg: Any) -> ValidationResult:
    return validate_security(_pkg(files), config(**cfg))


def _compliance(files: dict[str, bytes], **cfg: Any) -> ValidationResult:
    return validate_compliance(_pkg(files), config(**cfg))


def _secret_files(result: ValidationResult) -> set[str]:
    return {f["file"] for f in result.findings if "rule" in f and not f["rule"].startswith("vulnerable")}


# --------------------------------------------------------------------------- nested archives


def test_secret_inside_a_nested_zip_is_found() -> None:
    inner = make_zip({"conf/aws.ini": _aws_pair().encode(), "keys/id_rsa": _pem().encode()})
    result = _security({"vendor/bundle.zip": inner})
    assert not result.passed
    assert _secret_files(result) == {"vendor/bundle.zip!/conf/aws.ini", "vendor/bundle.zip!/keys/id_rsa"}
    assert {f["rule"] for f in result.findings} >= {"aws-access-key-id", "aws-secret-access-key", "private-key"}
    assert any("leaked secrets" in r and "vendor/bundle.zip!/conf/aws.ini" in r and "revoke" in r
               for r in result.reasons)
    assert result.stats["nested_archives"] == 1


def test_vulnerable_requirement_inside_a_nested_tar_gz_fails() -> None:
    inner = make_tar_gz({"app/requirements.txt": b"requests==2.0.0\n"})
    result = _security({"deps/app.tar.gz": inner})
    assert not result.passed
    found = [f for f in result.findings if f["rule"] == "vulnerable-dependency"]
    assert found and {(f["file"], f["package"], f["version"]) for f in found} == {
        ("deps/app.tar.gz!/app/requirements.txt", "requests", "2.0.0")}
    assert any("requests 2.0.0" in r and "deps/app.tar.gz!/app/requirements.txt:1" in r and "fixed in" in r
               for r in result.reasons)


def test_pii_inside_a_nested_zip_fails() -> None:
    inner = make_zip({"data/customers.csv": f"name,card,ssn\nAda,{_card()},{_ssn()}\n".encode()})
    result = _compliance({"fixtures.zip": inner})
    assert not result.passed
    assert {f["file"] for f in result.findings} == {"fixtures.zip!/data/customers.csv"}
    assert result.stats["counts"]["card"] == 1 and result.stats["counts"]["national_id"] == 1
    assert any("fixtures.zip!/data/customers.csv:2" in r for r in result.reasons)


def test_archives_nested_two_deep_tgz_and_plain_gzip_are_all_scanned() -> None:
    deepest = make_zip({"secret.env": _aws_pair().encode()})
    middle = make_tar_gz({"inner/deep.zip": deepest})
    result = _security({
        "a/middle.tgz": middle,
        "b/notes.txt.gz": gzip.compress(_pem().encode(), mtime=0),
    })
    assert not result.passed
    assert _secret_files(result) == {"a/middle.tgz!/inner/deep.zip!/secret.env", "b/notes.txt.gz!/notes.txt"}


def _tar(files: dict[str, bytes]) -> bytes:
    return gzip.decompress(make_tar_gz(files))


def test_xz_and_bzip2_archives_and_files_are_scanned() -> None:
    secret = _aws_pair().encode()
    result = _security({
        "a.tar.xz": lzma.compress(_tar({"conf/a.ini": secret})),
        "b.tar.bz2": bz2.compress(_tar({"conf/b.ini": secret})),
        "c.ini.xz": lzma.compress(secret),
        "d.zip.bz2": bz2.compress(make_zip({"conf/d.ini": secret})),
        "e.tar": _tar({"conf/e.ini": secret}),
    })
    assert not result.passed
    assert _secret_files(result) == {
        "a.tar.xz!/conf/a.ini", "b.tar.bz2!/conf/b.ini", "c.ini.xz!/c.ini", "d.zip.bz2!/d.zip!/conf/d.ini",
        "e.tar!/conf/e.ini"}


@pytest.mark.parametrize(("magic", "kind"), [
    (b"\x28\xb5\x2f\xfd", "zstd"), (b"7z\xbc\xaf\x27\x1c", "7z"), (b"Rar!\x1a\x07\x00", "rar"),
    (b"\x04\x22\x4d\x18", "lz4"),
])
def test_uninspectable_compressed_data_is_refused_with_its_kind(magic: bytes, kind: str) -> None:
    result = _compliance({"data/blob.bin": magic + b"\x00" * 64})
    assert not result.passed
    assert any(f"data/blob.bin is {kind}-compressed data, which Hallmark cannot inspect" in r
               for r in result.reasons), result.reasons


def test_a_zip_appended_to_another_file_is_scanned() -> None:
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 16
    polyglot = png + make_zip({"hidden/aws.ini": _aws_pair().encode()})
    result = _security({"assets/logo.png": polyglot})
    assert not result.passed
    assert _secret_files(result) == {"assets/logo.png!/hidden/aws.ini"}
    # a file that merely holds the end-record bytes is only a file
    assert _security({"x.bin": png + b"PK\x05\x06" + bytes(18)}).passed


def test_attribution_reads_nested_archives_too() -> None:
    inner = make_zip({"gen.py": b"# Generated by ChatGPT\nprint(1)\n"})
    result = validate_attribution(_pkg({"lib.zip": inner}), config())
    assert result.stats["files_flagged"] == 1
    assert [f["file"] for f in result.findings] == ["lib.zip!/gen.py"]


def test_nesting_deeper_than_the_bound_is_a_rejection_with_its_path() -> None:
    level3 = make_zip({"x.txt": b"hello\n"})
    level2 = make_zip({"c.zip": level3})
    level1 = make_zip({"b.zip": level2})
    pkg = _pkg({"a.zip": level1})
    for validator in (validate_security, validate_compliance):
        result = validator(pkg, config())
        assert not result.passed, validator
        assert any("nested archive a.zip!/b.zip!/c.zip exceeds depth 2" in r for r in result.reasons), result.reasons
    # informational attribution still says it could not see everything; with a policy it fails
    assert any("exceeds depth 2" in r for r in validate_attribution(pkg, config()).reasons)
    assert not validate_attribution(pkg, config(max_ai_share=0.5)).passed
    # a larger bound admits it
    assert validate_security(pkg, config(max_nested_depth=3)).passed


def test_a_nested_archive_over_the_inspection_size_is_a_rejection() -> None:
    noise = b"".join(hashlib.sha256(str(i).encode()).digest() for i in range(2000))  # incompressible
    inner = make_zip({"big.bin": noise})
    result = _security({"big.zip": inner}, max_nested_inspect_size=1024)
    assert not result.passed
    assert any("nested archive big.zip is" in r and "1024-byte limit" in r for r in result.reasons)


def test_the_byte_budget_counts_nested_archives() -> None:
    inner = make_zip({f"f{i}.txt": b"a" * 300_000 for i in range(4)})
    result = _compliance({"many.zip": inner}, max_total_uncompressed=1 * MiB)
    assert not result.passed
    assert result.stats["scan_budget_exhausted"] is True
    assert any("expands to more than 1048576 bytes" in r for r in result.reasons)


def test_the_file_count_bound_counts_nested_archives() -> None:
    inner = make_zip({f"f{i}.txt": b"ok\n" for i in range(30)})
    result = _security({"many.zip": inner}, max_scan_files=20)
    assert not result.passed
    assert any("more than 20 files in all" in r for r in result.reasons)


def test_a_corrupt_nested_archive_is_a_rejection() -> None:
    broken = make_zip({"a.txt": b"hello " * 100})[:60] + b"\0" * 40
    result = _security({"broken.zip": broken})
    assert not result.passed
    assert any("broken.zip" in r and "could not be read" in r for r in result.reasons), result.reasons


def test_clean_nested_archives_pass_and_results_are_reproducible() -> None:
    inner = make_zip({"docs/readme.txt": b"nothing to see\n"})
    first = _security({"docs.zip": inner})
    second = _security({"docs.zip": inner})
    assert first.passed, first.reasons
    assert first.digest == second.digest
    assert validate_compliance(_pkg({"docs.zip": inner}), config()).passed


# --------------------------------------------------------------------------- large files


@pytest.mark.parametrize("padding", [b" ", b"\n", b"\0"])
def test_secret_after_4_mib_of_padding_is_found(padding: bytes) -> None:
    body = padding * (4 * MiB + 123) + _aws_pair().encode()
    result = _security({"data/blob.txt": body})
    assert not result.passed
    assert _secret_files(result) == {"data/blob.txt"}
    assert result.stats["scan_windows"] >= 2


def test_pii_after_4_mib_of_nul_padding_is_found() -> None:
    result = _compliance({"data/blob.dat": b"\0" * (4 * MiB + 5) + f"card {_card()}\n".encode()})
    assert not result.passed


_WINDOW = 64 * 1024


@pytest.mark.parametrize("pos", [
    *(_WINDOW - 2048 + d for d in (-40, -21, -10, -1, 0, 3, 17)),  # where one window's part ends
    *(_WINDOW + d for d in (-40, -21, -10, -1, 0, 3, 17)),  # where the next window's bytes begin
    *(2 * _WINDOW - 2048 + d for d in (-12, 0, 9)),
])
def test_a_secret_on_a_window_boundary_is_found_once_with_its_real_line(pos: int) -> None:
    text = "".join(f"filler line number {i:06d}\n" for i in range(8000))  # 200 KB
    body = text[:pos] + f" {_aws_key_id()} " + text[pos:]
    result = _security({"big.txt": body.encode()}, scan_max_file_bytes=_WINDOW)
    found = [(f["line"], f["column"]) for f in result.findings if f["rule"] == "aws-access-key-id"]
    line = text.count("\n", 0, pos) + 1
    column = pos - text.rfind("\n", 0, pos) + 1
    assert found == [(line, column)]
    assert result.stats["scan_windows"] == 4 + len(CLEAN_FILES)  # one each, four for big.txt


def test_line_numbers_after_the_first_window_are_those_of_the_file() -> None:
    body = "".join(f"line {i}\n" for i in range(100_000)) + f"email me: jo.bloggs{'@'}corp-mail.net\n"
    result = _compliance({"big.txt": body.encode()}, scan_max_file_bytes=64 * 1024)
    (finding,) = result.findings
    assert finding["line"] == 100_001 and finding["column"] == 11


# --------------------------------------------------------------------------- encodings


@pytest.mark.parametrize("codec", ["utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le", "utf-32-be"])
def test_secret_in_utf16_and_utf32_files_is_found(codec: str) -> None:
    text = "# settings\n" + _aws_pair()
    data = text.encode(codec)  # "utf-16"/"utf-32" write a BOM; -le/-be with a BOM added by hand
    if codec.endswith(("-le", "-be")):
        data = ("\ufeff" + text).encode(codec)
    result = _security({"conf/settings.ini": data})
    assert not result.passed, codec
    assert {f["line"] for f in result.findings if f["rule"] == "aws-access-key-id"} == {2}


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be"])
def test_bom_less_utf16_and_utf32_are_detected(codec: str) -> None:
    data = ("plain text, no BOM\n" + _aws_pair()).encode(codec)
    assert detect_encoding(data) == codec
    assert not _security({"notes.txt": data}).passed


@pytest.mark.parametrize("bom", [b"\xff\xfe", b"\xfe\xff", b"\xff\xfe\x00\x00"])
def test_a_bom_in_front_of_utf8_text_does_not_hide_a_secret(bom: bytes) -> None:
    result = _security({"conf/x.ini": bom + b"# a\n" + _aws_pair().encode()})
    assert not result.passed
    assert {(f["rule"], f["line"]) for f in result.findings} >= {("aws-access-key-id", 2)}


def test_a_bom_in_front_of_utf8_text_does_not_hide_pii() -> None:
    assert not _compliance({"people.csv": b"\xff\xfe" + f"card\n{_card()}\n".encode()}).passed


def test_real_utf16_text_is_reported_once() -> None:
    result = _security({"conf/x.ini": _aws_pair().encode("utf-16")})
    assert sorted(f["rule"] for f in result.findings) == ["aws-access-key-id", "aws-secret-access-key"]
    pii = _compliance({"people.csv": f"card\n{_card()}\n".encode("utf-16")})
    assert pii.stats["counts"]["card"] == 1
    requirements = _security({"requirements.txt": b"pyyaml==5.3\n".decode().encode("utf-16")})
    assert requirements.stats["dependencies"] == 1 and requirements.stats["unparsed"] == 0


def test_pii_in_a_utf16_file_is_found() -> None:
    result = _compliance({"people.csv": f"card\n{_card()}\n".encode("utf-16")})
    assert not result.passed


def test_secret_behind_one_nul_byte_is_found() -> None:
    body = b"\0" + _aws_pair().encode()
    assert not is_binary(body)
    result = _security({"src/config.py": body})
    assert not result.passed
    assert _secret_files(result) == {"src/config.py"}
    assert not _compliance({"c.txt": b"x\0" + f"{_card()}\n".encode()}).passed


def test_secret_in_binary_data_is_found_by_its_precise_rules() -> None:
    blob = bytes(range(256)) * 64 + _aws_key_id().encode() + bytes(range(256)) * 64
    assert is_binary(blob)
    result = _security({"lib/native.so": blob})
    assert not result.passed
    (finding,) = result.findings
    assert finding["rule"] == "aws-access-key-id" and finding["binary"] is True
    assert any("(in binary data)" in r for r in result.reasons)
    # binary data is not scanned for personal data (emails in .so files are not PII leaks)
    assert _compliance({"lib/native.so": blob}).passed


# --------------------------------------------------------------------------- npm and PyPI


def _package_json(section: str = "dependencies", **deps: str) -> bytes:
    return json.dumps({"name": "web", "version": "1.0.0", section: deps}, indent=2).encode()


def test_lodash_pinned_in_package_json_without_lock_fails() -> None:
    result = _security({"web/package.json": _package_json(lodash="4.17.20")})
    assert not result.passed
    (finding,) = [f for f in result.findings if f["rule"] == "vulnerable-dependency"]
    assert (finding["package"], finding["version"], finding["ecosystem"]) == ("lodash", "4.17.20", "npm")
    assert finding["file"] == "web/package.json" and finding["line"] == 5
    assert any("lodash 4.17.20 (npm) in web/package.json:5" in r and "fixed in 4.17.21" in r for r in result.reasons)


@pytest.mark.parametrize("section", ["dependencies", "devDependencies", "optionalDependencies", "peerDependencies"])
def test_every_package_json_section_is_vetted(section: str) -> None:
    assert not _security({"package.json": _package_json(section, lodash="=4.17.20")}).passed


@pytest.mark.parametrize(("spec", "admits"), [
    ("^4.17.0", True), ("~4.17.20", True), (">=4.17.0 <4.17.21", True), ("4.17.x", True),
    ("4.17.0 - 4.17.30", True), ("^3.0.0 || ^4.0.0", True), ("*", True), ("latest", True),
    ("npm:lodash@^4.0.0", True), ("^4.17.21", False), (">=4.17.21", False), ("~4.17.21", False),
    ("4.17.21 - 4.18.0", False), ("5.x", False), (">4.17.20", False),
])
def test_npm_ranges_are_evaluated_against_osv_ranges(spec: str, admits: bool) -> None:
    files = {"package.json": _package_json(lodash=spec)}
    warned = _security(files)
    ranged = [f for f in warned.findings if f["rule"] == "vulnerable-range"]
    assert bool(ranged) is admits, (spec, warned.findings)
    assert warned.passed, warned.reasons  # a range warns...
    assert _security(files, fail_on_vulnerable_range=True).passed is not admits  # ...and fails by policy
    if admits:
        assert any("warning: lodash" in r and "admits versions affected by" in r for r in warned.reasons)


def test_a_lock_file_beside_package_json_decides_the_version() -> None:
    lock = json.dumps({"lockfileVersion": 3, "packages": {
        "": {"name": "web"}, "node_modules/lodash": {"version": "4.17.21"}}}).encode()
    ok = _security({"web/package.json": _package_json(lodash="^4.17.0"), "web/package-lock.json": lock},
                   fail_on_vulnerable_range=True)
    assert ok.passed, ok.reasons
    bad_lock = lock.replace(b"4.17.21", b"4.17.20")
    bad = _security({"web/package.json": _package_json(lodash="^4.17.0"), "web/package-lock.json": bad_lock})
    assert not bad.passed
    assert [f["file"] for f in bad.findings if f["rule"] == "vulnerable-dependency"] == ["web/package-lock.json"]


def test_yarn_lock_classic_and_berry() -> None:
    classic = b'# yarn lockfile v1\n\n"lodash@^4.17.0", lodash@~4.17.1:\n  version "4.17.20"\n  resolved "x"\n'
    berry = (b'__metadata:\n  version: 6\n\n"@scope/x@workspace:.":\n  version: 0.0.0-use.local\n\n'
             b'"lodash@npm:^4.17.0":\n  version: 4.17.20\n  resolution: "lodash@npm:4.17.20"\n')
    for lock in (classic, berry):
        result = _security({"web/package.json": _package_json(lodash="^4.17.0"), "web/yarn.lock": lock})
        assert not result.passed
        (finding,) = [f for f in result.findings if f["rule"].startswith("vulnerable")]
        assert (finding["file"], finding["rule"], finding["version"]) == (
            "web/yarn.lock", "vulnerable-dependency", "4.17.20")


def test_non_registry_npm_specs_are_counted_not_vetted() -> None:
    deps, unparsed = parse_package_json(
        _package_json(a="git+https://example.invalid/a.git", b="file:../b", c="user/repo", d="^1.0.0").decode(),
        "package.json",
    )
    assert unparsed == 0
    assert [(d.name, d.source) for d in deps] == [
        ("a", "non-registry"), ("b", "non-registry"), ("c", "non-registry"), ("d", "registry")]


def test_pep621_ranges_and_exact_pins() -> None:
    pyproject = b'[project]\nname = "x"\ndependencies = ["requests>=2.0,<2.31", "pyyaml==5.3", "rich>=13"]\n'
    result = _security({"pyproject.toml": pyproject})
    assert not result.passed  # the exact pin of pyyaml 5.3
    rules = {(f["package"], f["rule"]) for f in result.findings}
    assert rules == {("requests", "vulnerable-range"), ("pyyaml", "vulnerable-dependency")}


@pytest.mark.parametrize(("constraint", "expected"), [
    ("^1.2.3", [">=1.2.3,<2"]), ("^0.2.3", [">=0.2.3,<0.3"]), ("~1.2.3", [">=1.2.3,<1.3"]),
    ("~1", [">=1,<2"]), ("1.2.3", ["==1.2.3"]), ("*", [""]), (">=1,<2", [">=1,<2"]),
    ("^1.0 || ^2.0", [">=1.0,<2", ">=2.0,<3"]),
])
def test_poetry_constraints_become_pep440(constraint: str, expected: list[str]) -> None:
    assert poetry_to_pep440(constraint) == expected


def test_poetry_pyproject_and_lock_files() -> None:
    pyproject = (b'[tool.poetry]\nname = "x"\n[tool.poetry.dependencies]\npython = "^3.11"\n'
                 b'requests = "2.0.0"\n[tool.poetry.group.dev.dependencies]\npyyaml = {version = "^5.1"}\n')
    deps, unparsed = parse_pyproject(pyproject.decode(), "pyproject.toml")
    assert unparsed == 0 and [(d.name, d.version) for d in deps] == [("requests", "2.0.0"), ("pyyaml", None)]
    assert not _security({"pyproject.toml": pyproject}).passed
    poetry_lock = b'[[package]]\nname = "requests"\nversion = "2.0.0"\n\n[[package]]\nname = "rich"\nversion = "13.7.0"\n'
    uv_lock = (b'version = 1\n[[package]]\nname = "x"\nversion = "0.1.0"\nsource = { editable = "." }\n'
               b'[[package]]\nname = "pyyaml"\nversion = "5.3.1"\nsource = { registry = "https://pypi.org/simple" }\n')
    pipfile_lock = json.dumps({"default": {"pyyaml": {"version": "==5.3"}}, "develop": {}}).encode()
    for name, body, package in (("poetry.lock", poetry_lock, "requests"), ("uv.lock", uv_lock, "pyyaml"),
                                ("Pipfile.lock", pipfile_lock, "pyyaml")):
        result = _security({f"app/{name}": body})
        assert not result.passed, name
        assert {f["package"] for f in result.findings if f["rule"] == "vulnerable-dependency"} == {package}


def test_pipfile_ranges_are_vetted() -> None:
    pipfile = b'[packages]\nrequests = "*"\nrich = {version = ">=13"}\n'
    result = _security({"Pipfile": pipfile})
    assert {f["package"] for f in result.findings if f["rule"] == "vulnerable-range"} == {"requests"}


def test_config_bounds_are_declared() -> None:
    cfg = ValidatorConfig()
    assert (cfg.max_nested_depth, cfg.max_scan_files, cfg.scan_max_file_bytes) == (2, 50_000, 4 * MiB)


def test_a_commit_log_larger_than_the_window_is_read_whole() -> None:
    commits = []
    for i in range(4000):
        body = f"commit {i:040x}\nAuthor: Dev <dev{'@'}corp.invalid>\n\n    change {i}\n"
        if i == 3500:
            body += "\n    Co-authored-by: GitHub Copilot <copilot@github.invalid>\n"
        commits.append(body + "\n")
    log = "".join(commits).encode()
    assert len(log) > 3 * 64 * 1024
    result = validate_attribution(_pkg({".hallmark/git-log.txt": log}), config(scan_max_file_bytes=64 * 1024))
    assert result.stats["commits_scanned"] == 4000
    assert result.stats["commits_flagged"] == 1
    (finding,) = [f for f in result.findings if f["source"] == "commit"]
    assert finding["commit"] == f"{3500:040x}" and finding["tool"] == "GitHub Copilot"
    assert log.decode().splitlines()[finding["line"] - 1].strip().startswith("Co-authored-by")


@pytest.mark.parametrize("codec", ["utf-16", "utf-32"])
def test_secret_after_padding_in_a_large_utf16_or_utf32_file(codec: str) -> None:
    text = "pad\n" * 300_000 + _aws_pair()  # more than one window once encoded
    result = _security({"big.ini": text.encode(codec)}, scan_max_file_bytes=256 * 1024)
    found = {(f["rule"], f["line"]) for f in result.findings}
    assert found == {("aws-access-key-id", 300_001), ("aws-secret-access-key", 300_002)}
