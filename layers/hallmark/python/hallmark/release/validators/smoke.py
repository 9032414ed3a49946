"""Smoke: run the package's declared command in an isolated, permissionless runner.

The package declares it in ``hallmark.toml`` at its root (or inside the single top-level
folder, as source distributions are laid out)::

    [smoke]
    command = ["python", "-c", "import mypkg"]   # a list: never parsed by a shell
    timeout_s = 10                               # optional, capped by SmokeLimits.max_timeout_s
    memory_mb = 256                              # optional, capped by SmokeLimits.max_memory_mb

No ``hallmark.toml`` or no ``[smoke]`` table: passed, "no smoke command declared".

The runner:

* runs only after :func:`validate_archive_safety` passed on the same bytes, and extracts the
  package itself into a fresh temporary folder (regular files, folders, in-root symlinks;
  hardlinks become copies; files opened ``O_EXCL|O_NOFOLLOW``; no mode beyond 0o755);
* starts the command with an environment holding only ``PATH``, stdin closed, in a new
  session (its own process group), cwd = the package root;
* applies in the child, before exec: ``RLIMIT_AS`` (memory), ``RLIMIT_CPU``,
  ``RLIMIT_NPROC``, ``RLIMIT_FSIZE``, ``RLIMIT_NOFILE``, ``RLIMIT_CORE`` = 0, and a new
  network namespace (``unshare(CLONE_NEWNET)``, else ``CLONE_NEWUSER|CLONE_NEWNET``) when the
  kernel allows it; whether it did is recorded as ``network_isolated``;
* kills the whole process group at the wall-clock timeout, and after the command ends.

Failures: a non-zero exit, a signal, the timeout, the CPU or memory limit (recognised from
``MemoryError``/allocation-failure messages on stderr), a file-size limit, a command that
cannot be started. The result records the exit code and the SHA-256 of stdout followed by
stderr (``output_sha256``), never the output itself. The duration (and its bucket) is in
``observations``, outside the digest, so results stay reproducible.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import hashlib
import math
import os
import posixpath
import resource
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from hallmark.release.validators.archive import ArchiveError, EntryType, PackageView
from hallmark.release.validators.archive_safety import validate_archive_safety
from hallmark.release.validators.model import MiB, SmokeLimits, ValidationResult, ValidatorConfig

__all__ = ["SmokeOutcome", "SmokeSpec", "duration_bucket", "run_isolated", "validate_smoke"]

_CLONE_NEWNET: Final = 0x40000000
_CLONE_NEWUSER: Final = 0x10000000
_MANIFEST: Final = "hallmark.toml"
_MANIFEST_CAP: Final = 64 * 1024
_STDERR_TAIL: Final = 64 * 1024
_MEMORY_MARKERS: Final = (b"MemoryError", b"Cannot allocate memory", b"out of memory", b"std::bad_alloc")


class SmokeError(Exception):
    """The smoke declaration or the package cannot be run."""


@dataclass(frozen=True, slots=True)
class SmokeSpec:
    command: tuple[str, ...]
    timeout_s: float
    memory_mb: int


@dataclass(frozen=True, slots=True)
class SmokeOutcome:
    #: passed | exit-nonzero | signal | timeout | cpu-limit | memory-limit | file-size-limit | error
    outcome: str
    exit_code: int | None
    signal: str | None
    network_isolated: bool
    output_sha256: str
    stdout_bytes: int
    stderr_bytes: int
    duration_s: float
    error: str | None = None


def duration_bucket(seconds: float) -> str:
    for limit, label in ((1, "<1s"), (5, "1-5s"), (30, "5-30s"), (120, "30-120s")):
        if seconds < limit:
            return label
    return ">=120s"


# ----------------------------------------------------------------------------- declaration


def _root_prefix(pkg: PackageView) -> str | None:
    """Where hallmark.toml is: "" at the archive root, "<dir>/" in the single top folder, else None."""
    names = [_clean(e.name) for e in pkg.entries()]
    if _MANIFEST in names:
        return ""
    tops = {n.split("/", 1)[0] for n in names if n}
    if len(tops) == 1:
        top = next(iter(tops))
        if f"{top}/{_MANIFEST}" in names:
            return f"{top}/"
    return None


def _clean(name: str) -> str:
    while name.startswith("./"):
        name = name[2:]
    name = name.rstrip("/")
    return "" if name == "." else name


def _parse_spec(raw: bytes, limits: SmokeLimits) -> SmokeSpec | None:
    try:
        doc = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise SmokeError(f"{_MANIFEST} is not valid TOML: {exc}") from None
    smoke = doc.get("smoke")
    if smoke is None:
        return None
    if not isinstance(smoke, dict):
        raise SmokeError("[smoke] must be a table")
    command = smoke.get("command")
    if command is None:
        return None
    if (
        not isinstance(command, list)
        or not command
        or not all(isinstance(a, str) and a and "\x00" not in a for a in command)
    ):
        raise SmokeError("smoke.command must be a non-empty list of strings (no shell string)")
    timeout = smoke.get("timeout_s", limits.default_timeout_s)
    if (
        isinstance(timeout, bool)
        or not isinstance(timeout, int | float)
        or not 0 < timeout <= limits.max_timeout_s
    ):
        raise SmokeError(f"smoke.timeout_s must be a number in (0, {limits.max_timeout_s:g}]")
    memory = smoke.get("memory_mb", limits.default_memory_mb)
    if isinstance(memory, bool) or not isinstance(memory, int) or not 16 <= memory <= limits.max_memory_mb:
        raise SmokeError(f"smoke.memory_mb must be an integer in [16, {limits.max_memory_mb}]")
    return SmokeSpec(tuple(command), float(timeout), memory)


# ----------------------------------------------------------------------------- extraction


def _safe_path(root: Path, name: str) -> Path:
    rel = _clean(name)
    if not rel or rel.startswith("/") or ".." in rel.split("/") or "\\" in rel:
        raise SmokeError(f"unsafe member name {name!r}")
    path = root / rel
    parent = Path(os.path.realpath(path.parent))
    if parent != root and root not in parent.parents:
        raise SmokeError(f"member {name!r} leaves the extraction root")
    return path


def extract_safely(pkg: PackageView, dest: Path, max_total: int) -> None:
    """Extract ``pkg`` (already checked by archive safety) into the empty folder ``dest``."""
    root = Path(os.path.realpath(dest))
    entries = pkg.entries()
    for entry in entries:
        if entry.type is EntryType.DIR and _clean(entry.name):
            _safe_path(root, entry.name).mkdir(parents=True, exist_ok=True, mode=0o755)
    budget = max_total
    written: dict[str, Path] = {}
    try:
        for entry, stream in pkg.iter_file_streams():
            path = _safe_path(root, entry.name)
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            with os.fdopen(fd, "wb") as out:
                while piece := stream.read(1024 * 1024):
                    budget -= len(piece)
                    if budget < 0:
                        raise SmokeError("package expands beyond the extraction limit")
                    out.write(piece)
            os.chmod(path, 0o755 if entry.mode & 0o111 else 0o644)
            written[posixpath.normpath(_clean(entry.name))] = path
    except ArchiveError as exc:
        raise SmokeError(f"package could not be extracted: {exc}") from None
    for entry in entries:
        if entry.type is EntryType.HARDLINK:
            source = written.get(posixpath.normpath(_clean(entry.link_target or "")))
            if source is None:
                raise SmokeError(f"hardlink {entry.name!r} names no extracted file")
            shutil.copyfile(source, _safe_path(root, entry.name), follow_symlinks=False)
    for entry in entries:  # last, so no file is ever written through a link
        if entry.type is EntryType.SYMLINK:
            path = _safe_path(root, entry.name)
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
            os.symlink(entry.link_target or "", path)


# ----------------------------------------------------------------------------- the runner


def _libc() -> Any | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None


def _make_preexec(spec: SmokeSpec, limits: SmokeLimits, status_fd: int) -> Callable[[], None]:
    libc = _libc()
    cpu = math.ceil(spec.timeout_s) + 1
    wanted = [
        (resource.RLIMIT_AS, spec.memory_mb * MiB),
        (resource.RLIMIT_CPU, cpu),
        (resource.RLIMIT_NPROC, limits.max_processes),
        (resource.RLIMIT_FSIZE, limits.max_file_size_mb * MiB),
        (resource.RLIMIT_NOFILE, limits.max_open_files),
        (resource.RLIMIT_CORE, 0),
    ]

    def preexec() -> None:  # runs in the child between fork and exec: keep it small
        isolated = False
        if libc is not None and (
            libc.unshare(_CLONE_NEWNET) == 0 or libc.unshare(_CLONE_NEWUSER | _CLONE_NEWNET) == 0
        ):
            isolated = True
        for which, value in wanted:
            _soft, hard = resource.getrlimit(which)
            capped = value if hard == resource.RLIM_INFINITY else min(value, hard)
            # CPU: the soft limit sends SIGXCPU, the hard one SIGKILL a second later
            resource.setrlimit(which, (capped, capped + 1 if which == resource.RLIMIT_CPU else capped))
        os.write(status_fd, b"1" if isolated else b"0")

    return preexec


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def run_isolated(spec: SmokeSpec, cwd: Path, limits: SmokeLimits) -> SmokeOutcome:
    """Run ``spec.command`` in ``cwd`` under the limits; never raises for the command's faults."""
    path = limits.path or os.pathsep.join(
        [os.path.dirname(sys.executable), "/usr/local/bin", "/usr/bin", "/bin"]
    )
    status_r, status_w = os.pipe()
    started = time.monotonic()
    try:
        proc = subprocess.Popen(
            list(spec.command),
            cwd=cwd,
            env={"PATH": path},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
            close_fds=True,
            preexec_fn=_make_preexec(spec, limits, status_w),
        )
    except (OSError, subprocess.SubprocessError) as exc:
        os.close(status_r)
        os.close(status_w)
        reason = "not found" if isinstance(exc, FileNotFoundError) else type(exc).__name__
        return SmokeOutcome("error", None, None, False, hashlib.sha256().hexdigest(), 0, 0, 0.0, reason)
    os.close(status_w)
    with os.fdopen(status_r, "rb") as status:
        network_isolated = status.read() == b"1"

    digests = {"stdout": hashlib.sha256(), "stderr": hashlib.sha256()}
    sizes = {"stdout": 0, "stderr": 0}
    tail = bytearray()
    timed_out = False
    killed = False
    deadline = started + spec.timeout_s
    assert proc.stdout is not None and proc.stderr is not None
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ, "stdout")
        sel.register(proc.stderr, selectors.EVENT_READ, "stderr")
        while sel.get_map():
            now = time.monotonic()
            if not killed and (now >= deadline or proc.poll() is not None):
                # the wall clock ran out, or the command ended: nothing in its group may outlive it
                timed_out = proc.poll() is None
                _kill_group(proc.pid)
                killed = True
                deadline = now + 2.0  # drain what is left in the pipes, briefly
            elif now >= deadline:
                break
            for key, _ in sel.select(timeout=max(0.0, min(deadline - now, 0.2))):
                data = os.read(key.fd, 65536)
                if not data:
                    sel.unregister(key.fileobj)
                    continue
                digests[key.data].update(data)
                sizes[key.data] += len(data)
                if key.data == "stderr":
                    tail += data
                    del tail[:-_STDERR_TAIL]
    try:
        returncode = proc.wait(timeout=max(0.1, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        timed_out = True
        _kill_group(proc.pid)
        returncode = proc.wait()
    _kill_group(proc.pid)  # stragglers left in the group
    proc.stdout.close()
    proc.stderr.close()
    duration = time.monotonic() - started

    combined = hashlib.sha256(digests["stdout"].digest() + digests["stderr"].digest()).hexdigest()
    sig_name = None
    if returncode < 0:
        try:
            sig_name = signal.Signals(-returncode).name
        except ValueError:
            sig_name = f"SIG{-returncode}"
    if timed_out:
        outcome = "timeout"
    elif returncode == 0:
        outcome = "passed"
    elif returncode == -signal.SIGXCPU or (returncode == -signal.SIGKILL and duration < spec.timeout_s):
        outcome = "cpu-limit"
    elif returncode == -signal.SIGXFSZ:
        outcome = "file-size-limit"
    elif any(marker in tail for marker in _MEMORY_MARKERS):
        outcome = "memory-limit"
    elif returncode < 0:
        outcome = "signal"
    else:
        outcome = "exit-nonzero"
    return SmokeOutcome(
        outcome,
        None if timed_out else returncode,
        None if timed_out else sig_name,
        network_isolated,
        combined,
        sizes["stdout"],
        sizes["stderr"],
        duration,
    )


# ----------------------------------------------------------------------------- the validator


def _result(
    passed: bool, reasons: list[str], stats: dict[str, Any], observations: Any = None
) -> ValidationResult:
    return ValidationResult.build(
        "smoke", passed=passed, reasons=reasons, stats=stats, observations=observations
    )


def validate_smoke(pkg: PackageView, config: ValidatorConfig) -> ValidationResult:
    """Run the declared smoke command in the isolated runner (see the module doc)."""
    limits = config.smoke
    if not pkg.is_archive or pkg.listing_error:
        why = pkg.listing_error or f"not an archive (detected: {pkg.format.value})"
        return _result(False, [f"smoke not run: {why}"], {"declared": None})
    prefix = _root_prefix(pkg)
    if prefix is None:
        return _result(True, ["no smoke command declared"], {"declared": False})
    try:
        manifest = pkg.read(prefix + _MANIFEST, cap=_MANIFEST_CAP)
    except KeyError:
        return _result(False, [f"{_MANIFEST} is not a regular file"], {"declared": True})
    if manifest.error is not None or manifest.truncated:
        return _result(False, [f"{_MANIFEST} could not be read"], {"declared": True})
    try:
        spec = _parse_spec(manifest.data, limits)
    except SmokeError as exc:
        return _result(False, [f"invalid smoke declaration: {exc}"], {"declared": True})
    if spec is None:
        return _result(True, ["no smoke command declared"], {"declared": False})

    stats: dict[str, Any] = {
        "declared": True,
        "command": list(spec.command),
        "timeout_s": spec.timeout_s,
        "memory_mb": spec.memory_mb,
    }
    safety = validate_archive_safety(pkg, config)
    if not safety.passed:
        return _result(False, ["smoke not run: the archive safety checks failed"], stats)

    with tempfile.TemporaryDirectory(prefix="hallmark-smoke-") as tmp:
        try:
            extract_safely(pkg, Path(tmp), config.max_total_uncompressed)
        except (SmokeError, OSError) as exc:
            reason = (
                str(exc)
                if isinstance(exc, SmokeError)
                else f"{type(exc).__name__} ({errno.errorcode.get(exc.errno or 0, '?')})"
            )
            return _result(False, [f"smoke not run: extraction failed: {reason}"], stats)
        cwd = Path(os.path.realpath(tmp)) / prefix if prefix else Path(os.path.realpath(tmp))
        outcome = run_isolated(spec, cwd, limits)

    stats.update(
        {
            "outcome": outcome.outcome,
            "exit_code": outcome.exit_code,
            "signal": outcome.signal,
            "network_isolated": outcome.network_isolated,
            "output_sha256": outcome.output_sha256,
            "stdout_bytes": outcome.stdout_bytes,
            "stderr_bytes": outcome.stderr_bytes,
        }
    )
    observations = {
        "duration_s": round(outcome.duration_s, 3),
        "duration_bucket": duration_bucket(outcome.duration_s),
    }
    shown = " ".join(spec.command)
    reasons = {
        "passed": f"smoke command {shown!r} exited 0",
        "exit-nonzero": f"smoke command {shown!r} failed: exit status {outcome.exit_code}",
        "signal": f"smoke command {shown!r} was killed by {outcome.signal}",
        "timeout": f"smoke command {shown!r} timed out after {spec.timeout_s:g} s and was killed",
        "cpu-limit": f"smoke command {shown!r} exceeded its CPU time limit and was killed",
        "memory-limit": f"smoke command {shown!r} exceeded its memory limit of {spec.memory_mb} MiB",
        "file-size-limit": f"smoke command {shown!r} exceeded the file size limit of {limits.max_file_size_mb} MiB",
        "error": f"smoke command {shown!r} could not be started: {outcome.error}",
    }
    reason_list = [reasons[outcome.outcome]]
    passed = outcome.outcome == "passed"
    if not outcome.network_isolated:
        if limits.require_network_isolation:
            passed = False
            reason_list.append("network isolation is required but no network namespace could be created")
        else:
            reason_list.append("note: the runner could not isolate the network (network_isolated: false)")
    return _result(passed, reason_list, stats, observations)
