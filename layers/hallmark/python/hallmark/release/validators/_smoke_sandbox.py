"""The smoke sandbox: a tiny init that seals one smoke command (stdlib only, no hallmark imports).

Started by :func:`hallmark.release.validators.smoke.run_isolated` as
``python -I -S _smoke_sandbox.py CONFIG_JSON`` with a clean environment, stdin closed, and a
status pipe (``CONFIG["status_fd"]``) on which it writes one JSON report when it is done.

What it does, as far as the platform allows (what was obtained is reported, never assumed):

1. ``unshare(CLONE_NEWNS|CLONE_NEWPID|CLONE_NEWNET|CLONE_NEWIPC|CLONE_NEWUTS)``; with a new PID
   namespace it forks, and the child is PID 1 of that namespace: when it exits, the kernel kills
   every process left in it (a ``setsid()`` or double-forked daemon included).
2. In the new mount namespace: every mount is remounted read-only (and ``nosuid``), a fresh
   tmpfs is mounted on ``/tmp`` and ``/dev/shm``, the hidden folders (the runner's home, ``/root``)
   are covered by an empty tmpfs, the interpreter's prefix is re-exposed read-only at the same path
   when it lives in one of them, the work folder becomes a fresh tmpfs of bounded size holding a
   copy of the package (the only writable place besides ``/tmp``), and a fresh ``/proc`` shows
   only the namespace's own processes (no ``/proc/<ppid>/environ`` of the runner).
3. It becomes a child subreaper, so a descendant that escapes its process group still reparents to
   it and is killed when the command ends (this is all that holds where there are no namespaces).
4. The command's child: its own session, rlimits (address space, CPU, processes, file size, open
   files, no core), ``setgroups([])``/``setgid``/``setuid`` to the unprivileged ids when running as
   root, ``PR_SET_NO_NEW_PRIVS``, cwd = the package root, the given environment, then ``execvpe``.
5. It waits up to the wall-clock timeout, then kills the command and every remaining descendant,
   and reports the wait status, the CPU time used, the most processes seen at once and the largest
   file left in its private ``/tmp``.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import os
import resource
import select
import signal
import stat
import sys
import time
from typing import Any

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_NOATIME = 1024
MS_NODIRATIME = 2048
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
MS_RELATIME = 1 << 21

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38

_TICK_S = 0.05
_SCAN_CAP = 10_000

_libc: Any = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
_libc.unshare.argtypes = [ctypes.c_int]
_libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]


class SetupError(Exception):
    pass


def _b(path: str | None) -> bytes | None:
    return None if path is None else os.fsencode(path)


def _mount(src: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    if _libc.mount(_b(src), _b(target), _b(fstype), flags, _b(data)) != 0:
        err = ctypes.get_errno()
        raise SetupError(f"mount {target}: {errno.errorcode.get(err, err)}")


def _prctl(option: int, value: int) -> bool:
    return bool(_libc.prctl(option, value, 0, 0, 0) == 0)


def _mountpoints() -> list[str]:
    points = []
    with open("/proc/self/mountinfo", "rb") as fh:
        for line in fh:
            fields = line.split(b" ")
            if len(fields) > 4:
                # mountinfo escapes space, tab, newline and backslash as \ooo
                raw = fields[4].decode("utf-8", "surrogateescape")
                points.append(_unescape(raw))
    return points


def _unescape(raw: str) -> str:
    out, i = [], 0
    while i < len(raw):
        if raw[i] == "\\" and i + 3 < len(raw) and raw[i + 1 : i + 4].isdigit():
            out.append(chr(int(raw[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(raw[i])
            i += 1
    return "".join(out)


def _kept_flags(path: str) -> int:
    try:
        f = os.statvfs(path).f_flag
    except OSError:
        return MS_NOSUID | MS_NODEV
    flags = MS_NOSUID
    for st_flag, ms_flag in (
        (os.ST_NODEV, MS_NODEV),
        (os.ST_NOEXEC, MS_NOEXEC),
        (os.ST_NOATIME, MS_NOATIME),
        (os.ST_NODIRATIME, MS_NODIRATIME),
        (os.ST_RELATIME, MS_RELATIME),
    ):
        if f & st_flag:
            flags |= ms_flag
    return flags


def _under(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def _seal_filesystem(cfg: dict[str, Any], pid_ns: bool) -> dict[str, bool]:
    """Read-only everything, private /tmp, hidden homes, a writable work folder, a fresh /proc."""
    work = cfg["workdir"]
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    work_fd = os.open(work, os.O_PATH | os.O_DIRECTORY)
    exposed = [p for p in cfg.get("expose", []) if os.path.isdir(p)]
    exposed_fds = [(p, os.open(p, os.O_PATH | os.O_DIRECTORY)) for p in exposed]
    readonly_root = False
    for point in _mountpoints():
        if _under(point, "/proc"):
            continue
        try:
            _mount(None, point, None, MS_REMOUNT | MS_BIND | MS_RDONLY | _kept_flags(point))
        except SetupError:
            if point == "/":
                raise
            continue  # an over-mounted point cannot be reached: nothing can write through it either
        readonly_root = readonly_root or point == "/"
    _mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, f"mode=1777,size={cfg['tmp_size_mb']}m")
    if os.path.isdir("/dev/shm"):
        _mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=1777,size=1m")
    for hidden in cfg.get("hide", []):
        if os.path.isdir(hidden) and not _under("/tmp", hidden) and not _under(hidden, "/tmp"):
            _mount("tmpfs", hidden, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=0755,size=1m")
    for path, fd in exposed_fds:
        os.makedirs(path, mode=0o755, exist_ok=True)
        _mount(f"/proc/self/fd/{fd}", path, None, MS_BIND | MS_REC)
        _mount(None, path, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)
        os.close(fd)
    # the work folder: a fresh tmpfs of bounded size holding a copy of the package, so nothing the
    # command writes reaches the runner's disk or outlives the namespace
    os.makedirs(work, mode=0o755, exist_ok=True)
    _mount("tmpfs", work, "tmpfs", MS_NOSUID | MS_NODEV, f"mode=0755,size={cfg['work_size_mb']}m")
    owner = (cfg["uid"], cfg["gid"]) if cfg.get("uid") is not None and os.geteuid() == 0 else None
    _copy_tree(f"/proc/self/fd/{work_fd}", work, owner)
    os.close(work_fd)
    fresh_proc = False
    if pid_ns:
        _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
        fresh_proc = True
    readonly_root = readonly_root and bool(os.statvfs("/").f_flag & os.ST_RDONLY)
    return {"readonly_root": readonly_root, "private_tmp": True, "fresh_proc": fresh_proc}


def _copy_tree(src: str, dest: str, owner: tuple[int, int] | None) -> None:
    """Copy the extracted package (regular files, folders, symlinks; nothing followed)."""
    if owner:
        os.chown(dest, *owner)
    for entry in os.scandir(src):
        target = os.path.join(dest, entry.name)
        st = entry.stat(follow_symlinks=False)
        if stat.S_ISLNK(st.st_mode):
            os.symlink(os.readlink(entry.path), target)
        elif stat.S_ISDIR(st.st_mode):
            os.mkdir(target, 0o755)
            _copy_tree(entry.path, target, owner)
            continue
        elif stat.S_ISREG(st.st_mode):
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            with os.fdopen(fd, "wb") as out, open(entry.path, "rb") as inp:
                while chunk := inp.read(1 << 20):
                    out.write(chunk)
            os.chmod(target, stat.S_IMODE(st.st_mode) & 0o755)
        else:
            continue
        if owner:
            os.chown(target, *owner, follow_symlinks=False)


def _set_limits(limits: dict[str, int]) -> None:
    for name, value in limits.items():
        which = getattr(resource, name)
        _soft, hard = resource.getrlimit(which)
        capped = value if hard == resource.RLIM_INFINITY else min(value, hard)
        # CPU: the soft limit sends SIGXCPU, the hard one SIGKILL a second later
        resource.setrlimit(which, (capped, capped + 1 if name == "RLIMIT_CPU" else capped))


def _exec_command(cfg: dict[str, Any], drop: bool, err_w: int) -> None:
    """In the command's child: never returns (exec or ``_exit``)."""
    try:
        os.setsid()
        os.chdir(cfg["cwd"])
        _set_limits(cfg["rlimits"])
        if drop:
            os.setgroups([])
            os.setgid(cfg["gid"])
            os.setuid(cfg["uid"])
            if os.getuid() == 0 or os.geteuid() == 0:
                raise PermissionError("still root after setuid")
        _prctl(PR_SET_NO_NEW_PRIVS, 1)
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
        os.execvpe(cfg["command"][0], cfg["command"], cfg["env"])
    except BaseException as exc:  # report any failure to start, then die
        code = getattr(exc, "errno", None)
        name = "not found" if code == errno.ENOENT else (
            errno.errorcode.get(code, type(exc).__name__) if code else type(exc).__name__
        )
        with contextlib.suppress(OSError):
            os.write(err_w, name.encode()[:200])
    os._exit(127)


def _children() -> list[int]:
    """Our direct children (orphans reparent here: we are a subreaper)."""
    me = os.getpid()
    found: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{me}/task")
        for tid in tasks:
            with open(f"/proc/{me}/task/{tid}/children", "rb") as fh:
                found += [int(p) for p in fh.read().split()]
        return found
    except OSError:
        pass  # no CONFIG_PROC_CHILDREN: read every process's parent
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as fh:
                raw = fh.read()
        except OSError:
            continue
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses; split after the last ")"
        fields = raw[raw.rfind(b")") + 2 :].split()
        if len(fields) > 1 and int(fields[1]) == me:
            found.append(int(name))
    return found


def _count_processes() -> int:
    """Processes in our PID namespace, ourselves excluded (valid with a fresh /proc)."""
    try:
        return sum(1 for n in os.listdir("/proc") if n.isdigit()) - 1
    except OSError:
        return 0


def _reap_all() -> None:
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-1, os.WNOHANG)[0] > 0:
            pass


def _kill_descendants(pid_ns: bool) -> None:
    """Kill every process left below us and reap it; loops until none are left."""
    for _ in range(1000):
        if pid_ns:
            with contextlib.suppress(OSError):
                os.kill(-1, signal.SIGKILL)  # PID 1: every process of the namespace but itself
        kids = _children()
        for kid in kids:
            with contextlib.suppress(OSError):
                os.kill(kid, signal.SIGKILL)
        if not kids and not pid_ns:
            _reap_all()
            if not _children():
                return
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            return
        _reap_all()


def _largest_file(root: str) -> int:
    largest, seen, stack = 0, 0, [root]
    while stack and seen < _SCAN_CAP:
        folder = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            seen += 1
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if stat.S_ISDIR(st.st_mode):
                stack.append(entry.path)
            elif stat.S_ISREG(st.st_mode):
                largest = max(largest, st.st_size)
    return largest


def _supervise(cfg: dict[str, Any], report: dict[str, Any], pid_ns: bool) -> None:
    """Fork the command, wait for it under the wall clock, then kill everything left."""
    report["isolation"]["subreaper"] = _prctl(PR_SET_CHILD_SUBREAPER, 1)
    if report["isolation"]["uts"]:
        with contextlib.suppress(OSError):
            _libc.sethostname(b"smoke", 5)
    drop = cfg.get("uid") is not None and os.geteuid() == 0
    err_r, err_w = os.pipe2(os.O_CLOEXEC)
    started = time.monotonic()
    child = os.fork()
    if child == 0:
        os.close(err_r)
        _exec_command(cfg, drop, err_w)
    os.close(err_w)
    with os.fdopen(err_r, "rb") as errs:
        start_error = errs.read().decode("utf-8", "replace")  # EOF at exec (CLOEXEC) or at death
    report["isolation"]["uid"] = drop and not start_error
    deadline = started + cfg["timeout_s"]
    counting = pid_ns and report["isolation"]["fresh_proc"]  # /proc shows only our namespace
    peak = 0
    status: int | None = None
    usage = None
    pidfd: int | None = None
    with contextlib.suppress(AttributeError, OSError):
        pidfd = os.pidfd_open(child)
    try:
        while True:
            if counting:
                peak = max(peak, _count_processes())
            pid, wait_status, ru = os.wait4(child, os.WNOHANG)
            if pid == child:
                status, usage = wait_status, ru
                break
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                report["timed_out"] = True
                with contextlib.suppress(OSError):
                    os.killpg(child, signal.SIGKILL)
                with contextlib.suppress(OSError):
                    os.kill(child, signal.SIGKILL)
                _pid, status, usage = os.wait4(child, 0)
                break
            if pidfd is not None:
                select.select([pidfd], [], [], min(_TICK_S, remaining))
            else:
                time.sleep(min(_TICK_S, remaining))
    finally:
        if pidfd is not None:
            os.close(pidfd)
    if counting:
        peak = max(peak, _count_processes())  # what the command left behind, before it is killed
    _kill_descendants(pid_ns)
    report.update(
        {
            "status": status,
            "start_error": start_error or None,
            "cpu_s": (usage.ru_utime + usage.ru_stime) if usage is not None else 0.0,
            "peak_processes": peak,
            "duration_s": time.monotonic() - started,
        }
    )
    if report["isolation"].get("private_tmp"):
        report["largest_tmp_file"] = max(
            _largest_file("/tmp"), _largest_file("/dev/shm"), _largest_file(cfg["workdir"])
        )


def main() -> int:
    cfg = json.loads(sys.argv[1])
    status_fd = int(cfg["status_fd"])
    os.set_inheritable(status_fd, False)
    isolation = {
        "pid": False, "mount": False, "net": False, "ipc": False, "uts": False, "uid": False,
        "readonly_root": False, "private_tmp": False, "fresh_proc": False, "subreaper": False,
    }
    report: dict[str, Any] = {"isolation": isolation, "timed_out": False, "setup_error": None}
    root = os.geteuid() == 0
    if cfg.get("namespaces", True):
        every = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS
        if _libc.unshare(every) == 0:
            isolation.update(pid=True, mount=True, net=True, ipc=True, uts=True)
        else:
            for name, flag in (("mount", CLONE_NEWNS), ("net", CLONE_NEWNET), ("ipc", CLONE_NEWIPC),
                               ("uts", CLONE_NEWUTS)):
                isolation[name] = _libc.unshare(flag) == 0
            if not isolation["net"] and not root and _libc.unshare(CLONE_NEWUSER | CLONE_NEWNET) == 0:
                isolation["net"] = True
    if isolation["pid"]:
        init = os.fork()
        if init != 0:
            # the intermediate: hold nothing the command could wait on, relay the init's end
            os.close(status_fd)
            devnull = os.open(os.devnull, os.O_RDWR)
            for fd in (1, 2):
                os.dup2(devnull, fd)
            while True:
                try:
                    _pid, st = os.waitpid(init, 0)
                    return os.waitstatus_to_exitcode(st) & 0xFF
                except ChildProcessError:
                    return 0
                except InterruptedError:
                    continue
        _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)  # the intermediate killed: the namespace dies
    try:
        if isolation["mount"]:
            try:
                sealed = _seal_filesystem(cfg, isolation["pid"])
            except (SetupError, OSError) as exc:
                report["setup_error"] = str(exc)
                isolation["mount"] = False
                raise
            isolation.update(sealed)
        _supervise(cfg, report, isolation["pid"])
    except (SetupError, OSError) as exc:
        report["setup_error"] = report["setup_error"] or f"{type(exc).__name__}: {exc}"
    with os.fdopen(status_fd, "wb") as out:
        out.write(json.dumps(report).encode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
