from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import shutil
import tarfile
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hallmark.release.validators import PackageView, SmokeLimits, ValidationResult
from hallmark.release.validators.smoke import SmokeSpec, run_isolated, validate_pinned_smoke, validate_smoke
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


# ----------------------------------------------------------------------------- escapes (issue 16, part 2)
#
# Each test is one escape a hostile package tried; each must fail to escape. The sandbox needs
# root for namespaces and the uid switch (we are root here and in CI); without root only the
# tests that need it are skipped.

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="namespaces and the uid switch need root")
#: what Lambda allows: no namespace, and one sandbox user (no uid switch)
LAMBDA_LIKE: dict[str, Any] = {"namespaces": False, "sandbox_uid": None}


def _run(code: str, limits: dict[str, Any] | None = None, **extra: Any) -> ValidationResult:
    cfg: dict[str, Any] = {}
    if limits:
        cfg["smoke"] = SmokeLimits(**limits)
    return _smoke(_py(code, **extra), **cfg)


@pytest.fixture
def outside() -> Iterator[Path]:
    """A folder outside the work folder and outside /tmp, writable by anyone (mode 0o777): only
    the sandbox (read-only filesystem) can stop a write into it."""
    folder = Path(tempfile.mkdtemp(prefix="hallmark-smoke-outside-", dir="/var/tmp"))
    folder.chmod(0o777)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _no_process_with(token: str) -> bool:
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                if token.encode() in Path(f"/proc/{entry}/cmdline").read_bytes():
                    return False
    return True


@needs_root
def test_sandbox_obtains_every_isolation_as_root() -> None:
    result = _run("print('ok')")
    assert result.passed, result.reasons
    assert result.stats["isolation"] == {"pid": True, "mount": True, "net": True, "uid": True}
    assert result.reasons == ["smoke command \"python -c print('ok')\" exited 0"]


@needs_root
def test_reading_etc_shadow_or_a_root_only_file_is_denied(outside: Path) -> None:
    secret = outside / "root-only.key"
    secret.write_bytes(b"K" * 32)
    secret.chmod(0o600)
    code = (
        f"import sys\nSECRET = {str(secret)!r}\n"
        "for p in ('/etc/shadow', SECRET):\n"
        "    try:\n"
        "        open(p, 'rb').read(); sys.exit(0)\n"
        "    except OSError:\n"
        "        pass\n"
        "sys.exit(5)\n"
    )
    result = _run(code)
    assert not result.passed and result.stats["exit_code"] == 5


@needs_root
def test_a_secret_file_cannot_leave_through_the_exit_code(outside: Path) -> None:
    # a 0o644 key in the runner's home (the local JWT issuer key lives in ~/.hallmark): the home is
    # covered by an empty tmpfs in the sandbox, so even a world-readable file there is not seen
    home = Path(os.path.expanduser("~"))
    folder = Path(tempfile.mkdtemp(prefix=".hallmark-smoke-secret-", dir=home))
    try:
        folder.chmod(0o755)
        key = folder / "issuer.key"
        key.write_bytes(bytes([42]) + b"secret")
        key.chmod(0o644)
        root_only = outside / "other.key"
        root_only.write_bytes(bytes([43]))
        root_only.chmod(0o600)
        code = (
            f"import sys\nPATHS = {[str(key), str(root_only)]!r}\n"
            "for p in PATHS:\n"
            "    try:\n"
            "        sys.exit(open(p, 'rb').read(1)[0])\n"
            "    except OSError:\n"
            "        pass\n"
            "sys.exit(3)\n"
        )
        result = _run(code)
        assert result.stats["exit_code"] == 3, result.stats
        assert not result.passed
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@needs_root
def test_writes_outside_the_work_folder_are_denied(outside: Path, tmp_path: Path) -> None:
    existing = outside / "existing.txt"
    existing.write_bytes(b"original")
    existing.chmod(0o666)
    tmp_path.chmod(0o777)
    targets = [str(existing), str(outside / "new.txt"), str(tmp_path / "new.txt"), "/etc/hallmark-smoke-test"]
    code = (
        f"import sys, os\nTARGETS = {targets!r}\n"
        "wrote = []\n"
        "for p in TARGETS:\n"
        "    try:\n"
        "        with open(p, 'wb') as fh: fh.write(b'pwned')\n"
        "        wrote.append(p)\n"
        "    except OSError:\n"
        "        pass\n"
        "open('inside.txt', 'wb').write(b'fine')  # the work folder itself is writable\n"
        "open('/tmp/private.txt', 'wb').write(b'fine')  # and so is the private /tmp\n"
        "sys.exit(9 if wrote else 0)\n"
    )
    result = _run(code)
    assert result.passed, result.stats  # exit 0: no write outside succeeded, inside ones did
    assert existing.read_bytes() == b"original"
    assert not (outside / "new.txt").exists() and not (tmp_path / "new.txt").exists()
    assert not Path("/etc/hallmark-smoke-test").exists()


@needs_root
def test_the_command_does_not_run_as_root() -> None:
    result = _run("import os, sys; sys.exit(0 if 0 in (os.getuid(), os.geteuid(), os.getgid()) else 4)")
    assert not result.passed and result.stats["exit_code"] == 4
    assert result.stats["isolation"]["uid"] is True


@needs_root
def test_the_parents_environment_is_not_visible(monkeypatch: pytest.MonkeyPatch) -> None:
    canary = "canary-" + secrets.token_hex(16)
    monkeypatch.setenv("HALLMARK_SMOKE_CANARY", canary)
    # The command does not know the value: it looks for the variable's name in every environ it
    # can reach (its own, its parent's, the runner's by pid, all of /proc) and exits 0 on a hit.
    code = (
        f"import os, sys\nRUNNER = {os.getpid()}\n"
        "hits = 'HALLMARK_SMOKE_CANARY' in os.environ\n"
        "for p in [f'/proc/{os.getppid()}/environ', f'/proc/{RUNNER}/environ'] + "
        "['/proc/' + n + '/environ' for n in os.listdir('/proc') if n.isdigit()]:\n"
        "    try:\n"
        "        hits = hits or b'HALLMARK_SMOKE_CANARY=' in open(p, 'rb').read()\n"
        "    except OSError:\n"
        "        pass\n"
        "sys.exit(0 if hits else 6)\n"
    )
    result = _run(code)
    assert not result.passed and result.stats["exit_code"] == 6, result.stats


@needs_root
def test_a_fork_bomb_is_capped_at_the_process_limit() -> None:
    code = (
        "import os, sys, time\n"
        "n = 0\n"
        "for _ in range(64):  # bounded: at most 64 forks even without a limit\n"
        "    try:\n"
        "        pid = os.fork()\n"
        "    except OSError as exc:\n"
        "        print(exc, file=sys.stderr)\n"
        "        break\n"
        "    if pid == 0:\n"
        "        time.sleep(30)\n"
        "        os._exit(0)\n"
        "    n += 1\n"
        "sys.exit(n)\n"
    )
    result = _run(code, {"max_processes": 16})
    assert not result.passed
    assert result.stats["outcome"] == "process-limit", result.stats
    assert result.stats["exit_code"] < 16  # the command itself is one of the 16
    assert "exceeded the process limit of 16" in result.reasons[0]


_DAEMON = (
    "import os, sys, time\n"
    "if os.fork() == 0:\n"
    "    os.setsid()\n"
    "    if os.fork() == 0:\n"
    "        time.sleep(3)  # {token}\n"
    "        with open({target!r}, 'w') as fh: fh.write('escaped')\n"
    "        os._exit(0)\n"
    "    os._exit(0)\n"
    "sys.exit(0)\n"
)


@needs_root
@pytest.mark.parametrize("namespaces", [True, False], ids=["pid-namespace", "subreaper-only"])
def test_a_setsid_double_forked_child_dies_with_the_run(namespaces: bool, outside: Path) -> None:
    # subreaper-only is what Lambda allows (no namespaces, one user: no uid switch): the orphan
    # still reparents to the sandbox init, which kills it; without the mount namespace the 0o777
    # folder is writable, so only a dead daemon leaves it empty
    token = "hallmark-daemon-" + secrets.token_hex(8)
    target = outside / "late.txt"
    limits: dict[str, Any] = {"namespaces": True} if namespaces else LAMBDA_LIKE
    result = _run(_DAEMON.format(token=token, target=str(target)), limits)
    assert result.passed, result.stats
    assert result.stats["isolation"]["pid"] is namespaces
    assert _no_process_with(token)
    time.sleep(4)  # past the daemon's 3 s: had it survived, the file would exist now
    assert not target.exists()
    assert _no_process_with(token)


def test_a_file_size_breach_is_reported_as_such() -> None:
    write = "open('big', 'wb').write(b'x' * (2 * 1024 * 1024))"
    result = _run(write, {"max_file_size_mb": 1})
    assert not result.passed
    assert result.stats["outcome"] == "file-size-limit", result.stats
    assert "exceeded the file size limit of 1 MiB" in result.reasons[0]
    # a command that does not ignore SIGXFSZ (Python does) is killed by it: reported the same
    files = {"hallmark.toml": _toml(["sh", "-c", "head -c 2097152 /dev/zero > big"])}
    shell = _smoke(files, smoke=SmokeLimits(max_file_size_mb=1))
    assert shell.stats["outcome"] == "file-size-limit", shell.stats


def test_a_cpu_loop_is_reported_as_cpu_limit() -> None:
    result = _run("while True: pass", timeout_s=30, cpu_s=1)
    assert not result.passed
    assert result.stats["outcome"] == "cpu-limit", result.stats
    assert "CPU time limit of 1 s" in result.reasons[0]


def test_a_memory_hog_is_reported_as_memory_limit() -> None:
    result = _run("b = bytearray(1024 * 1024 * 1024)", memory_mb=64)
    assert not result.passed and result.stats["outcome"] == "memory-limit", result.stats


@needs_root
def test_the_advisory_set_cannot_be_overwritten(outside: Path) -> None:
    # stands for events/advisories/osv-sample.json: world-writable here, so only the read-only
    # filesystem of the sandbox protects it
    advisories = outside / "osv-sample.json"
    original = json.dumps({"advisories": [{"id": "GHSA-x", "package": "requests"}]}).encode()
    advisories.write_bytes(original)
    advisories.chmod(0o666)
    code = (
        f"import os, sys\np = {str(advisories)!r}\n"
        "for attempt in (lambda: open(p, 'w').write('[]'), lambda: os.unlink(p),\n"
        "                lambda: os.rename(p, p + '.old'), lambda: os.truncate(p, 0)):\n"
        "    try:\n"
        "        attempt(); sys.exit(0)\n"
        "    except OSError:\n"
        "        pass\n"
        "sys.exit(8)\n"
    )
    result = _run(code)
    assert not result.passed and result.stats["exit_code"] == 8
    assert advisories.read_bytes() == original


def test_without_namespaces_the_isolation_obtained_is_recorded_and_stated() -> None:
    result = _run("print('ok')", LAMBDA_LIKE)
    assert result.passed  # recorded, not required by default
    assert result.stats["isolation"] == {"pid": False, "mount": False, "net": False, "uid": False}
    assert "note: the runner obtained only part of its isolation (pid=no, mount=no, net=no, uid=no)" in result.reasons


def test_required_isolation_that_cannot_be_obtained_fails_closed() -> None:
    result = _run("print('ok')", {**LAMBDA_LIKE, "require_isolation": frozenset({"pid", "mount"})})
    assert not result.passed
    assert any(r.startswith("isolation required but not obtained: mount, pid") for r in result.reasons)


# ----------------------------------------------------------------------------- the sealed function's entry


def _meta_for(data: bytes) -> dict[str, Any]:
    return {"name": "demo", "version": "1.0.0", "type": "library", "target": "python", "impact": "LOW",
            "sha256": hashlib.sha256(data).hexdigest(), "license": "MIT", "unknown": "ignored"}


def test_pinned_bytes_are_checked_before_anything_runs() -> None:
    data = make_tar_gz(_py("print('ok')"))
    digest = hashlib.sha256(data).hexdigest()
    ok = validate_pinned_smoke(data, sha256=digest, size=len(data), meta=_meta_for(data), config=config())
    assert ok.passed, ok.reasons
    swapped = make_tar_gz(_py("import sys; sys.exit(0)"))
    bad = validate_pinned_smoke(swapped, sha256=digest, size=len(data), meta=_meta_for(data), config=config())
    assert not bad.passed and bad.reasons == ["artifact digest mismatch"]
    assert bad.stats["actual_sha256"] == hashlib.sha256(swapped).hexdigest()
    longer = validate_pinned_smoke(data + b"x", sha256=digest, size=len(data), meta=_meta_for(data),
                                   config=config())
    assert longer.reasons == ["artifact digest mismatch"]
    failed = validate_pinned_smoke(None, sha256=digest, size=len(data), meta=_meta_for(data), config=config(),
                                   fetch_error="the package URL answered HTTP 403")
    assert not failed.passed and failed.reasons == ["smoke not run: the package URL answered HTTP 403"]
    huge = validate_pinned_smoke(None, sha256=digest, size=10**12, meta=_meta_for(data), config=config())
    assert not huge.passed and "exceeds the size limit" in huge.reasons[0]


@needs_root
def test_the_work_folder_is_a_bounded_tmpfs_that_never_reaches_the_runners_disk(tmp_path: Path) -> None:
    (tmp_path / "hallmark.toml").write_text("[smoke]\n")
    code = (
        "import sys\n"
        "open('left-behind.txt', 'w').write('x')\n"
        "try:\n"
        "    for i in range(8):\n"
        "        open(f'fill{i}', 'wb').write(b'x' * (900 * 1024))\n"
        "except OSError as exc:\n"
        "    sys.exit(28 if exc.errno == 28 else 2)  # ENOSPC\n"
    )
    spec = SmokeSpec(("python", "-c", code), 10.0, 256)
    outcome = run_isolated(spec, tmp_path, SmokeLimits(work_size_mb=2, max_file_size_mb=1))
    assert outcome.exit_code == 28, outcome
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hallmark.toml"]
