from __future__ import annotations

import hashlib
import json
import tarfile
import time
from typing import Any

from hallmark.release.validators import PackageView, ValidationResult
from hallmark.release.validators.smoke import validate_smoke
from tests.unit.test_validators_support import CLEAN_FILES, Member, config, make_tar_gz, make_zip


def _toml(command: list[str], **extra: Any) -> bytes:
    lines = ["[smoke]", f"command = {json.dumps(command)}"] + [f"{k} = {v}" for k, v in extra.items()]
    return ("\n".join(lines) + "\n").encode()


def _smoke(files: dict[str, bytes], **cfg: Any) -> ValidationResult:
    return validate_smoke(PackageView(make_tar_gz(files)), config(**cfg))


def _py(code: str, **extra: Any) -> dict[str, bytes]:
    return {
        "demo/__init__.py": CLEAN_FILES["demo/__init__.py"],
        "hallmark.toml": _toml(["python", "-c", code], **extra),
    }


def test_missing_declaration_passes() -> None:
    result = _smoke({"README.md": b"hi"})
    assert result.passed
    assert result.reasons == ["no smoke command declared"]
    other = _smoke({"hallmark.toml": b'[package]\nname = "x"\n'})
    assert other.passed and other.reasons == ["no smoke command declared"]


def test_passing_command_records_exit_code_and_output_digest() -> None:
    result = _smoke(_py("import demo; print(demo.add(2, 3))"))
    assert result.passed, result.reasons
    stats = result.stats
    assert stats["exit_code"] == 0 and stats["outcome"] == "passed"
    stdout_digest = hashlib.sha256(b"5\n").digest()
    stderr_digest = hashlib.sha256(b"").digest()
    assert stats["output_sha256"] == hashlib.sha256(stdout_digest + stderr_digest).hexdigest()
    assert isinstance(stats["network_isolated"], bool)
    assert "duration_s" not in stats and result.observations["duration_bucket"] == "<1s"


def test_runs_in_the_extracted_package_with_an_empty_environment() -> None:
    code = (
        "import os, sys; "
        "ok = os.path.isfile('hallmark.toml') and set(os.environ) <= {'PATH', 'HOME', 'LANG', 'LC_CTYPE'}; "
        "sys.exit(0 if ok else 7)"
    )
    assert _smoke(_py(code)).passed
    nested = make_zip({f"demo-1.0/{k}": v for k, v in _py(code).items()})
    assert validate_smoke(PackageView(nested), config()).passed  # root = the single top folder


def test_failing_command_fails_with_its_exit_status() -> None:
    result = _smoke(_py("import sys; sys.stderr.write('boom'); sys.exit(1)"))
    assert not result.passed
    assert result.stats["exit_code"] == 1
    assert result.stats["outcome"] == "exit-nonzero"
    assert "failed: exit status 1" in result.reasons[0]


def test_timeout_kills_the_process_group() -> None:
    started = time.monotonic()
    result = _smoke(
        _py("import subprocess, time; subprocess.Popen(['sleep', '30']); time.sleep(30)", timeout_s=1)
    )
    assert time.monotonic() - started < 6
    assert not result.passed
    assert result.stats["outcome"] == "timeout"
    assert "timed out after 1 s" in result.reasons[0]


def test_memory_limit() -> None:
    result = _smoke(_py("b = bytearray(1024 * 1024 * 1024); print(len(b))", memory_mb=128))
    assert not result.passed
    assert result.stats["outcome"] == "memory-limit"
    assert "exceeded its memory limit of 128 MiB" in result.reasons[0]


def test_network_namespace_when_available() -> None:
    code = "import socket, sys; sys.exit(0 if [n for _, n in socket.if_nameindex()] == ['lo'] else 3)"
    result = _smoke(_py(code))
    if result.stats["network_isolated"]:
        assert result.passed, result.reasons  # only the (down) loopback interface is visible
    else:
        assert any("network_isolated: false" in r for r in result.reasons)


def test_invalid_declarations_fail() -> None:
    as_string = _smoke({"hallmark.toml": b'[smoke]\ncommand = "python -c 1"\n'})
    assert not as_string.passed
    assert "list of strings" in as_string.reasons[0]
    too_long = _smoke(_py("pass", timeout_s=100_000))
    assert not too_long.passed and "timeout_s" in too_long.reasons[0]
    broken = _smoke({"hallmark.toml": b"[smoke\n"})
    assert not broken.passed and "not valid TOML" in broken.reasons[0]


def test_command_not_found() -> None:
    result = _smoke({"hallmark.toml": _toml(["definitely-not-a-command-xyz"])})
    assert not result.passed
    assert result.stats["outcome"] == "error"


def test_unsafe_archives_are_never_extracted() -> None:
    files = {**_py("print(1)"), "../escape.txt": b"x"}
    result = _smoke(files)
    assert not result.passed
    assert result.reasons == ["smoke not run: the archive safety checks failed"]


def test_tar_with_a_dot_root_and_a_top_folder() -> None:
    files = {f"./demo-1.0/{k}": v for k, v in _py("print('ok')").items()}
    data = make_tar_gz(files, [Member(".", tarfile.DIRTYPE, mode=0o755)])
    result = validate_smoke(PackageView(data), config())
    assert result.passed, result.reasons
    assert result.stats["declared"] is True
