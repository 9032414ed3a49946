"""``hallmark local serve --state DIR``: a package published before a restart (SIGTERM) is there
after it, the KMS keys are the same (the public keys exported before the restart verify the
audit chain exported after it), and the chain continues."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from hallmark_tools.localcloud.server import free_port
from hallmark_tools.localcloud.state import STATE_FILE

HALLMARK = [sys.executable, "-m", "hallmark_tools.cli"]


def _cli(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([*HALLMARK, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=240)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def _serve(env: dict[str, str], port: int, state: Path, log: Path) -> subprocess.Popen[bytes]:
    out = log.open("ab")
    proc = subprocess.Popen([*HALLMARK, "local", "serve", "--port", str(port), "--state", str(state)],
                            env=env, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1)
            return proc
        except OSError:
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=90) == 0


def test_state_and_keys_survive_a_restart(tmp_path: Path) -> None:
    port = free_port()
    home, state, log = tmp_path / "home", tmp_path / "state", tmp_path / "serve.log"
    env = {**os.environ, "HALLMARK_HOME": str(home), "HALLMARK_API": f"http://127.0.0.1:{port}"}
    server = _serve(env, port, state, log)
    try:
        token = _cli(["local", "token", "--role", "submitter", "--sub", "alice"], env, tmp_path).stdout.strip()
        auditor = _cli(["local", "token", "--role", "auditor", "--sub", "ada"], env, tmp_path).stdout.strip()
        assert _cli(["sample", "package", "--out", "keep-1.0.0.tar.gz", "--name", "keep"], env, tmp_path).returncode == 0
        first = _cli(["submit", "keep-1.0.0.tar.gz", "--print-id", "--token", token], env, tmp_path)
        assert first.returncode == 0, first.stdout + first.stderr
        pid = first.stdout.strip().splitlines()[-1]
        before = {p.name: p.read_bytes() for p in (home / "local" / "keys").glob("*.pem")}
        (tmp_path / "old-keys").mkdir()
        for name, pem in before.items():
            (tmp_path / "old-keys" / name).write_bytes(pem)
    finally:
        _stop(server)
    assert "saved" in log.read_text() and (state / STATE_FILE).exists()
    assert oct((state / STATE_FILE).stat().st_mode & 0o777) == "0o600"

    server = _serve(env, port, state, log)
    try:
        after = {p.name: p.read_bytes() for p in (home / "local" / "keys").glob("*.pem")}
        assert after == before  # the same KMS keys (ids, material): the same public keys
        status = _cli(["status", pid, "--token", token], env, tmp_path)
        assert status.returncode == 0 and "Published" in status.stdout, status.stdout + status.stderr
        listed = _cli(["packages", "--name", "keep", "--token", token], env, tmp_path)
        assert f"{pid}  keep@1.0.0  Published" in listed.stdout, listed.stdout
        # the version is taken: the name registry came back too
        again = _cli(["submit", "keep-1.0.0.tar.gz", "--token", token], env, tmp_path)
        assert again.returncode == 2 and "version_exists" in again.stderr, again.stderr
        # the chain continues, and verifies with the key exported before the restart
        assert _cli(["sample", "package", "--out", "keep-1.1.0.tar.gz", "--name", "keep", "--version", "1.1.0"],
                    env, tmp_path).returncode == 0
        second = _cli(["submit", "keep-1.1.0.tar.gz", "--token", token], env, tmp_path)
        assert second.returncode == 0, second.stdout + second.stderr
        exported = _cli(["audit", "export", "--chain", "release", "--out", "export", "--token", auditor], env,
                        tmp_path)
        assert exported.returncode == 0, exported.stderr
        verified = _cli(["audit", "verify", "export/release.events.jsonl", "--checkpoints",
                         "export/release.checkpoints.jsonl", "--key", "old-keys/audit.pem"], env, tmp_path)
        assert verified.returncode == 0, verified.stdout + verified.stderr
        events = (tmp_path / "export" / "release.events.jsonl").read_text()
        assert pid in events and events.count("PackagePublished") >= 2
    finally:
        _stop(server)


def test_a_state_file_of_another_kind_is_refused_in_one_line(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (state / STATE_FILE).write_text('{"format": "something else"}')
    env = {**os.environ, "HALLMARK_HOME": str(tmp_path / "home")}
    proc = _cli(["local", "serve", "--port", str(free_port()), "--state", str(state)], env, tmp_path)
    assert proc.returncode == 2 and proc.stderr.startswith("error: bad_state: "), proc.stderr
