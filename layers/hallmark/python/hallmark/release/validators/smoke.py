"""Smoke: run the package's declared command in an isolated, permissionless runner.

The package declares it in ``hallmark.toml`` at its root (or inside the single top-level
folder, as source distributions are laid out)::

    [smoke]
    command = ["python", "-c", "import mypkg"]   # a list: never parsed by a shell
    timeout_s = 10                               # optional, capped by SmokeLimits.max_timeout_s
    memory_mb = 256                              # optional, capped by SmokeLimits.max_memory_mb
    cpu_s = 5                                    # optional CPU seconds, at most the timeout + 1

No ``hallmark.toml`` or no ``[smoke]`` table: passed, "no smoke command declared".

The runner (see ``_smoke_sandbox.py`` and docs/runbooks/smoke_runner.md):

* runs only after :func:`validate_archive_safety` passed on the same bytes, and extracts the
  package itself into a fresh temporary folder (regular files, folders, in-root symlinks;
  hardlinks become copies; files opened ``O_EXCL|O_NOFOLLOW``; no mode beyond 0o755);
* starts the sandbox init (``python -I -S _smoke_sandbox.py``), which tries new PID, mount,
  network, IPC and UTS namespaces (read-only filesystem, private ``/tmp``, hidden homes, a bounded
  tmpfs work folder, a fresh ``/proc``), becomes a child subreaper, and starts the command as an
  unprivileged uid (65534, when the runner is root) with ``PR_SET_NO_NEW_PRIVS``, an environment of
  only ``PATH``, ``HOME`` (the work folder) and ``LANG``, stdin closed, its own session, cwd = the
  package root, and ``RLIMIT_AS``, ``RLIMIT_CPU``, ``RLIMIT_NPROC``, ``RLIMIT_FSIZE``,
  ``RLIMIT_NOFILE``, ``RLIMIT_CORE`` = 0;
* at the wall-clock timeout, and when the command ends, kills every process left below the init
  (with a PID namespace the kernel does it when the init exits);
* records which isolation it obtained (``stats.isolation``: pid, mount, net, uid) and says in the
  reasons when some is missing (on Lambda: all of it); ``SmokeLimits.require_isolation`` turns a
  missing one into a failure.

Failures, each by name in ``stats.outcome``: ``exit-nonzero``, ``signal``, ``timeout``,
``cpu-limit``, ``memory-limit`` (allocation-failure messages on stderr), ``file-size-limit``,
``process-limit``, ``error`` (a command that cannot be started, a sandbox that cannot be set up).
The result records the exit code and the SHA-256 of stdout followed by stderr
(``output_sha256``), never the output itself. The duration (and its bucket) is in
``observations``, outside the digest, so results stay reproducible.

:func:`validate_pinned_smoke` is the sealed function's entry: it checks the downloaded bytes
against the pinned object's SHA-256 and size ("artifact digest mismatch") before anything runs.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import hmac
import json
import math
import os
import posixpath
import selectors
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from hallmark.release.validators.archive import ArchiveError, EntryType, PackageView
from hallmark.release.validators.archive_safety import validate_archive_safety
from hallmark.release.validators.model import (
    MiB,
    PackageMeta,
    SmokeLimits,
    ValidationResult,
    ValidatorConfig,
)

__all__ = [
    "SmokeOutcome",
    "SmokeSpec",
    "duration_bucket",
    "run_isolated",
    "scrub_directory",
    "validate_pinned_smoke",
    "validate_smoke",
]

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
    cpu_s: int = 0  # RLIMIT_CPU in seconds; 0: the timeout rounded up, plus one

    def __post_init__(self) -> None:
        if self.cpu_s <= 0:
            object.__setattr__(self, "cpu_s", math.ceil(self.timeout_s) + 1)


@dataclass(frozen=True, slots=True)
class SmokeOutcome:
    #: passed | exit-nonzero | signal | timeout | cpu-limit | memory-limit | file-size-limit |
    #: process-limit | error
    outcome: str
    exit_code: int | None
    signal: str | None
    network_isolated: bool
    output_sha256: str
    stdout_bytes: int
    stderr_bytes: int
    duration_s: float
    error: str | None = None
    #: what the sandbox obtained: {"pid", "mount", "net", "uid"} -> bool
    isolation: dict[str, bool] | None = None


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
    cpu_cap = math.ceil(timeout) + 1
    cpu = smoke.get("cpu_s", cpu_cap)
    if isinstance(cpu, bool) or not isinstance(cpu, int) or not 1 <= cpu <= cpu_cap:
        raise SmokeError(f"smoke.cpu_s must be an integer in [1, {cpu_cap}] (the timeout, plus one)")
    return SmokeSpec(tuple(command), float(timeout), memory, cpu)


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

_SANDBOX: Final = Path(__file__).with_name("_smoke_sandbox.py")
_ISOLATION_KEYS: Final = ("pid", "mount", "net", "uid")
#: stderr of a command whose fork/clone/thread creation hit RLIMIT_NPROC (EAGAIN)
_PROCESS_MARKERS: Final = (
    b"Resource temporarily unavailable",
    b"BlockingIOError",
    b"fork: retry",
    b"Cannot fork",
    b"can't fork",
    b"can't start new thread",
)
_FILE_SIZE_MARKERS: Final = (b"File too large", b"EFBIG")


def _default_path() -> str:
    # the base interpreter's folder (never the venv's: the sandbox gets no site-packages of ours)
    base = os.path.dirname(os.path.realpath(sys.executable))
    return os.pathsep.join(dict.fromkeys([base, "/usr/local/bin", "/usr/bin", "/bin"]))


def _hidden(limits: SmokeLimits) -> list[str]:
    home = os.path.realpath(os.path.expanduser("~"))
    hidden = [os.path.realpath(p) for p in limits.hidden_paths]
    if home not in ("/", "") and home not in hidden:
        hidden.append(home)
    return [p for p in hidden if p != "/"]


def _under(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def _give_to(root: Path, uid: int, gid: int) -> None:
    """Hand the fresh work folder to the sandbox user (nothing below follows a link)."""
    os.chown(root, uid, gid, follow_symlinks=False)
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            os.chown(os.path.join(folder, name), uid, gid, follow_symlinks=False)


def _largest_file(root: Path) -> int:
    largest = 0
    for folder, _dirs, files in os.walk(root):
        for name in files:
            with contextlib.suppress(OSError):
                st = os.lstat(os.path.join(folder, name))
                if stat.S_ISREG(st.st_mode):
                    largest = max(largest, st.st_size)
    return largest


def _tree_bytes(root: Path) -> int:
    total = 0
    for folder, _dirs, files in os.walk(root):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(folder, name)).st_size
    return total


def _empty_outcome(reason: str, isolation: dict[str, bool] | None = None) -> SmokeOutcome:
    iso = isolation or dict.fromkeys(_ISOLATION_KEYS, False)
    return SmokeOutcome("error", None, None, iso.get("net", False), hashlib.sha256(
        hashlib.sha256().digest() * 2).hexdigest(), 0, 0, 0.0, reason, iso)


def run_isolated(spec: SmokeSpec, cwd: Path, limits: SmokeLimits, workdir: Path | None = None) -> SmokeOutcome:
    """Run ``spec.command`` in ``cwd`` (inside the fresh folder ``workdir``) in the sandbox.

    Never raises for the command's faults. ``workdir`` (default: ``cwd``) is the only folder the
    command may write besides its private ``/tmp``; it is handed to the sandbox uid.
    """
    work = Path(os.path.realpath(workdir or cwd))
    cwd = Path(os.path.realpath(cwd))
    root = os.geteuid() == 0
    drop = root and limits.sandbox_uid is not None
    if drop:
        assert limits.sandbox_uid is not None
        _give_to(work, limits.sandbox_uid, limits.sandbox_gid)
    path = limits.path or _default_path()
    hidden = _hidden(limits)
    prefix = os.path.realpath(sys.base_prefix)
    # the interpreter must stay reachable where the sandbox covers its folder (a home, /tmp)
    expose = [prefix] if any(_under(prefix, h) for h in [*hidden, "/tmp"]) else []
    cpu = spec.cpu_s
    status_r, status_w = os.pipe()
    cfg = {
        "status_fd": status_w,
        "command": list(spec.command),
        "cwd": str(cwd),
        "workdir": str(work),
        "env": {"PATH": path, "HOME": str(work), "LANG": "C.UTF-8"},
        "timeout_s": spec.timeout_s,
        "namespaces": limits.namespaces,
        "uid": limits.sandbox_uid if drop else None,
        "gid": limits.sandbox_gid,
        "tmp_size_mb": limits.tmp_size_mb,
        "work_size_mb": limits.work_size_mb + math.ceil(_tree_bytes(work) / MiB),
        "hide": hidden,
        "expose": expose,
        "rlimits": {
            "RLIMIT_AS": spec.memory_mb * MiB,
            "RLIMIT_CPU": cpu,
            "RLIMIT_NPROC": limits.max_processes,
            "RLIMIT_FSIZE": limits.max_file_size_mb * MiB,
            "RLIMIT_NOFILE": limits.max_open_files,
            "RLIMIT_CORE": 0,
        },
    }
    started = time.monotonic()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-I", "-S", str(_SANDBOX), json.dumps(cfg)],
            cwd="/",
            env={"PATH": path, "LANG": "C.UTF-8"},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
            close_fds=True,
            pass_fds=(status_w,),
        )
    except (OSError, subprocess.SubprocessError) as exc:
        os.close(status_r)
        os.close(status_w)
        return _empty_outcome(f"the sandbox could not be started: {type(exc).__name__}")
    os.close(status_w)

    digests = {"stdout": hashlib.sha256(), "stderr": hashlib.sha256()}
    sizes = {"stdout": 0, "stderr": 0}
    tail = bytearray()
    status_raw = bytearray()
    # the sandbox keeps the wall clock itself; this one only catches a sandbox that hangs
    deadline = started + spec.timeout_s + 10.0
    assert proc.stdout is not None and proc.stderr is not None
    status_file = os.fdopen(status_r, "rb")
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ, "stdout")
        sel.register(proc.stderr, selectors.EVENT_READ, "stderr")
        sel.register(status_file, selectors.EVENT_READ, "status")
        while sel.get_map():
            now = time.monotonic()
            if now >= deadline:
                _kill_group(proc.pid)
                break
            for key, _ in sel.select(timeout=min(deadline - now, 1.0)):
                data = os.read(key.fd, 65536)
                if not data:
                    sel.unregister(key.fileobj)
                    continue
                if key.data == "status":
                    status_raw += data[: max(0, (1 << 20) - len(status_raw))]
                    continue
                digests[key.data].update(data)
                sizes[key.data] += len(data)
                if key.data == "stderr":
                    tail += data
                    del tail[:-_STDERR_TAIL]
    _kill_group(proc.pid)
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        _kill_group(proc.pid)
        proc.wait()
    proc.stdout.close()
    proc.stderr.close()
    status_file.close()
    duration = time.monotonic() - started
    combined = hashlib.sha256(digests["stdout"].digest() + digests["stderr"].digest()).hexdigest()

    try:
        report = json.loads(bytes(status_raw)) if status_raw else None
    except ValueError:
        report = None
    if not isinstance(report, dict):
        return _empty_outcome("the sandbox ended without a report")
    iso_all = report.get("isolation") or {}
    isolation = {k: bool(iso_all.get(k)) for k in _ISOLATION_KEYS}
    if report.get("setup_error"):
        return _empty_outcome(f"sandbox setup failed: {report['setup_error']}", isolation)
    if report.get("start_error"):
        out = _empty_outcome(str(report["start_error"]), isolation)
        return SmokeOutcome(**{**_fields(out), "output_sha256": combined,
                               "stdout_bytes": sizes["stdout"], "stderr_bytes": sizes["stderr"]})
    status = report.get("status")
    timed_out = bool(report.get("timed_out"))
    returncode = os.waitstatus_to_exitcode(status) if isinstance(status, int) else None
    sig_name = None
    if returncode is not None and returncode < 0:
        try:
            sig_name = signal.Signals(-returncode).name
        except ValueError:
            sig_name = f"SIG{-returncode}"
    fsize = limits.max_file_size_mb * MiB
    largest = max(int(report.get("largest_tmp_file") or 0), _largest_file(work))
    cpu_used = float(report.get("cpu_s") or 0.0)
    failed = returncode != 0
    if timed_out or returncode is None:
        outcome = "timeout"
    elif returncode == -signal.SIGXCPU or (returncode == -signal.SIGKILL and cpu_used >= cpu - 0.05):
        outcome = "cpu-limit"
    elif returncode == -signal.SIGXFSZ or largest >= fsize or (
        failed and any(m in tail for m in _FILE_SIZE_MARKERS)
    ):
        outcome = "file-size-limit"
    elif failed and any(marker in tail for marker in _MEMORY_MARKERS):
        outcome = "memory-limit"
    elif int(report.get("peak_processes") or 0) >= limits.max_processes or (
        failed and any(m in tail for m in _PROCESS_MARKERS)
    ):
        outcome = "process-limit"
    elif returncode == 0:
        outcome = "passed"
    elif returncode < 0:
        outcome = "signal"
    else:
        outcome = "exit-nonzero"
    return SmokeOutcome(
        outcome,
        None if timed_out else returncode,
        None if timed_out else sig_name,
        isolation["net"],
        combined,
        sizes["stdout"],
        sizes["stderr"],
        float(report.get("duration_s") or duration),
        None,
        isolation,
    )


def _fields(outcome: SmokeOutcome) -> dict[str, Any]:
    return {name: getattr(outcome, name) for name in SmokeOutcome.__slots__}


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


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

    with tempfile.TemporaryDirectory(prefix="hallmark-smoke-", ignore_cleanup_errors=True) as tmp:
        try:
            extract_safely(pkg, Path(tmp), config.max_total_uncompressed)
        except (SmokeError, OSError) as exc:
            reason = (
                str(exc)
                if isinstance(exc, SmokeError)
                else f"{type(exc).__name__} ({errno.errorcode.get(exc.errno or 0, '?')})"
            )
            return _result(False, [f"smoke not run: extraction failed: {reason}"], stats)
        work = Path(os.path.realpath(tmp))
        cwd = work / prefix if prefix else work
        outcome = run_isolated(spec, cwd, limits, workdir=work)
    return _outcome_result(spec, limits, outcome, stats)


def _outcome_result(
    spec: SmokeSpec, limits: SmokeLimits, outcome: SmokeOutcome, stats: dict[str, Any]
) -> ValidationResult:
    isolation = outcome.isolation or dict.fromkeys(_ISOLATION_KEYS, False)
    stats.update(
        {
            "outcome": outcome.outcome,
            "exit_code": outcome.exit_code,
            "signal": outcome.signal,
            "network_isolated": outcome.network_isolated,
            "isolation": {k: bool(isolation.get(k)) for k in _ISOLATION_KEYS},
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
        "cpu-limit": f"smoke command {shown!r} exceeded its CPU time limit of {spec.cpu_s} s and was killed",
        "memory-limit": f"smoke command {shown!r} exceeded its memory limit of {spec.memory_mb} MiB",
        "file-size-limit": f"smoke command {shown!r} exceeded the file size limit of {limits.max_file_size_mb} MiB",
        "process-limit": f"smoke command {shown!r} exceeded the process limit of {limits.max_processes}",
        "error": f"smoke command {shown!r} could not be started: {outcome.error}",
    }
    reason_list = [reasons[outcome.outcome]]
    passed = outcome.outcome == "passed"
    required = set(limits.require_isolation)
    if limits.require_network_isolation:
        required.add("net")
    missing = sorted(k for k in required if not isolation.get(k))
    obtained = ", ".join(f"{k}={'yes' if isolation.get(k) else 'no'}" for k in _ISOLATION_KEYS)
    if missing:
        passed = False
        reason_list.append(f"isolation required but not obtained: {', '.join(missing)} ({obtained})")
    elif not all(isolation.get(k) for k in _ISOLATION_KEYS):
        reason_list.append(f"note: the runner obtained only part of its isolation ({obtained})")
    if not outcome.network_isolated and "net" not in missing:
        reason_list.append("note: the runner could not isolate the network (network_isolated: false)")
    return _result(passed, reason_list, stats, observations)


# ----------------------------------------------------------------------------- the sealed function


def _pinned_failure(reason: str, stats: dict[str, Any]) -> ValidationResult:
    return _result(False, [reason], {"declared": None, **stats})


def validate_pinned_smoke(
    data: bytes | None,
    *,
    sha256: str,
    size: int,
    meta: PackageMeta | Mapping[str, Any],
    config: ValidatorConfig,
    fetch_error: str | None = None,
) -> ValidationResult:
    """The sealed smoke function's one domain call: check the downloaded bytes against the pinned
    object's digest and size, then :func:`validate_smoke` them. Fails closed: a download that
    failed, a size over the limit, or bytes whose SHA-256 or length differ are never run."""
    expected = sha256.strip().lower()
    if size > config.max_size:
        return _pinned_failure(
            f"smoke not run: the package ({size} bytes) exceeds the size limit of {config.max_size} bytes",
            {"size": size},
        )
    if data is None or fetch_error is not None:
        return _pinned_failure(f"smoke not run: {fetch_error or 'the package could not be downloaded'}", {})
    actual = hashlib.sha256(data).hexdigest()
    if len(data) != size or not hmac.compare_digest(actual, expected):
        return _pinned_failure(
            "artifact digest mismatch",
            {"expected_sha256": expected, "actual_sha256": actual, "expected_size": size, "actual_size": len(data)},
        )
    try:
        package_meta = meta if isinstance(meta, PackageMeta) else PackageMeta.model_validate(
            {k: v for k, v in meta.items() if k in PackageMeta.model_fields}
        )
    except ValueError as exc:
        return _pinned_failure(f"smoke not run: invalid package metadata ({type(exc).__name__})", {})
    return validate_smoke(PackageView.for_config(data, package_meta, config), config)


def scrub_directory(folder: Path) -> None:
    """Remove everything below ``folder`` (not ``folder`` itself); nothing is followed through a link.

    The sealed function calls it on ``/tmp`` before and after each run: Lambda reuses an execution
    environment, and its ``/tmp`` with it."""
    with contextlib.suppress(FileNotFoundError):
        for entry in os.scandir(folder):
            path = Path(entry.path)
            with contextlib.suppress(OSError):
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink()
