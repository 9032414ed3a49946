"""`hallmark submit`, `hallmark sample package`, `hallmark local token` and the CLI's error lines,
from other processes against one `hallmark local serve`."""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from hallmark_tools import samples
from hallmark_tools.cli_api import CliError, api_error, parse_duration
from hallmark_tools.cli_submit import build_request, read_declaration
from hallmark_tools.localcloud.server import free_port

HALLMARK = [sys.executable, "-m", "hallmark_tools.cli"]


def _run(args: list[str], env: dict[str, str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*HALLMARK, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=180)


def _readable(proc: subprocess.CompletedProcess[str]) -> None:
    """An error is a line, not a traceback or a Python dict repr."""
    text = proc.stdout + proc.stderr
    assert "Traceback" not in text and "{'" not in text, text


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str], Path]]:
    home = tmp_path_factory.mktemp("home")
    port = free_port()
    env = {**os.environ, "HALLMARK_HOME": str(home), "HALLMARK_API": f"http://127.0.0.1:{port}"}
    log = (home / "serve.log").open("w")
    proc = subprocess.Popen([*HALLMARK, "local", "serve", "--port", str(port), "--ratification-window", "60s"],
                            env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        try:
            urllib.request.urlopen(base + "/health", timeout=1)
            break
        except OSError:
            assert proc.poll() is None and time.monotonic() < deadline, (home / "serve.log").read_text()
            time.sleep(0.2)
    yield base, env, home
    proc.terminate()
    proc.wait(timeout=20)
    log.close()


def _token(env: dict[str, str], role: str = "submitter", sub: str = "alice") -> str:
    out = _run(["local", "token", "--role", role, "--sub", sub], env)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_local_token_prints_the_token_alone(served: tuple[str, dict[str, str], Path]) -> None:
    out = _run(["local", "token", "--role", "submitter", "--sub", "alice"], served[1])
    lines = out.stdout.splitlines()
    assert len(lines) == 1 and lines[0].count(".") == 2 and " " not in lines[0], out.stdout


def test_serve_is_quiet_and_writes_this_boots_keys(served: tuple[str, dict[str, str], Path]) -> None:
    _, _, home = served
    log = (home / "serve.log").read_text()
    assert "Hallmark local API" in log and "ratification window: 60s" in log
    assert '"level":"INFO"' not in log and "CloudWatchMetrics" not in log, log[:2000]
    assert (home / "local" / "keys" / "audit.pem").read_bytes().startswith(b"-----BEGIN PUBLIC KEY-----")


def test_submit_follows_a_clean_package_to_published(served: tuple[str, dict[str, str], Path], tmp_path: Path) -> None:
    _, env, _ = served
    made = _run(["sample", "package", "--out", "subdemo-1.0.0.tar.gz", "--name", "subdemo"], env, cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    out = _run(["submit", "subdemo-1.0.0.tar.gz", "--token", _token(env)], env, cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    text = out.stdout
    # the states as they happened, in order, then the validators, then the outcome
    assert text.index("Submitted") < text.index("Validating") < text.index("validator smoke") < text.index("Published")
    assert "Published subdemo 1.0.0" in text and "effective impact MEDIUM" in text  # first release: MEDIUM
    # the same version again: refused by the API, one readable line, exit 2
    again = _run(["submit", "subdemo-1.0.0.tar.gz", "--token", _token(env)], env, cwd=tmp_path)
    assert again.returncode == 2 and "error: version_exists:" in again.stderr and "hint:" in again.stderr
    _readable(again)


def test_submit_a_rejected_package_exits_1_with_the_reasons(served: tuple[str, dict[str, str], Path],
                                                            tmp_path: Path) -> None:
    _, env, _ = served
    made = _run(["sample", "package", "--out", "leaky-1.0.0.tar.gz", "--name", "leaky", "--variant", "secret"],
                env, cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    out = _run(["submit", "leaky-1.0.0.tar.gz", "--token", _token(env)], env, cwd=tmp_path)
    assert out.returncode == 1, out.stdout + out.stderr
    assert "Rejected" in out.stdout and "reason: security: leaked secrets" in out.stdout, out.stdout


def test_submit_flags_name_a_package_without_a_package_table(served: tuple[str, dict[str, str], Path],
                                                             tmp_path: Path) -> None:
    _, env, _ = served
    path = tmp_path / "plain.tar.gz"
    path.write_bytes(samples.clean_package("plainpkg"))  # hallmark.toml has [smoke] only
    missing = _run(["submit", str(path), "--token", _token(env)], env)
    assert missing.returncode == 2 and "error: missing_name:" in missing.stderr
    _readable(missing)
    flags = ["--name", "plainpkg", "--version", "0.1.0", "--license", "MIT", "--token", _token(env)]
    # a prod* target is HIGH by policy; no approver is registered on this cloud: refused at once
    prod = _run(["submit", str(path), *flags, "--target", "prod:plainpkg"], env)
    assert prod.returncode == 2 and "error: approvers_insufficient:" in prod.stderr, prod.stdout + prod.stderr
    assert "hint: register approvers" in prod.stderr
    _readable(prod)
    out = _run(["submit", str(path), *flags], env)
    assert out.returncode == 0 and "Published plainpkg 0.1.0" in out.stdout, out.stdout + out.stderr


def test_cli_errors_are_one_readable_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update({"HALLMARK_HOME": str(tmp_path), "AWS_CONFIG_FILE": str(tmp_path / "none"),
                "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"), "AWS_EC2_METADATA_DISABLED": "true"})
    keys = _run(["keys", "export", "--out", str(tmp_path / "k")], env)
    assert keys.returncode == 2 and "error: aws_not_configured:" in keys.stderr, keys.stdout + keys.stderr
    _readable(keys)
    redrive = _run(["ops", "redrive", "audit"], env)
    assert redrive.returncode == 2 and "error: aws_not_configured:" in redrive.stderr
    _readable(redrive)
    pkg = tmp_path / "x-1.0.0.tar.gz"
    pkg.write_bytes(samples.clean_package("x"))
    down = _run(["submit", str(pkg), "--name", "x", "--version", "1", "--license", "MIT", "--token", "t",
                 "--api", f"http://127.0.0.1:{free_port()}"], env)
    assert down.returncode == 2 and "error: api_unreachable:" in down.stderr
    _readable(down)


def test_declaration_is_read_from_the_root_or_the_single_top_folder(tmp_path: Path) -> None:
    toml = b'[package]\nname = "nested"\nversion = "2.0.0"\nlicense = "Apache-2.0"\n'
    flat = samples.tar_gz({"hallmark.toml": toml, "a.py": b"x = 1\n"})
    nested = samples.tar_gz({"nested-2.0.0/hallmark.toml": toml, "nested-2.0.0/a.py": b"x = 1\n"})
    zipped = samples.zip_bytes({"hallmark.toml": toml})
    for data in (flat, nested, zipped):
        assert read_declaration(data) == {"name": "nested", "version": "2.0.0", "license": "Apache-2.0"}
    req = build_request(tmp_path / "nested-2.0.0.tar.gz", nested, {"version": "2.0.1", "impact": "high"})
    assert (req["name"], req["version"], req["impact"], req["size"]) == ("nested", "2.0.1", "HIGH", len(nested))
    with pytest.raises(CliError, match="not valid TOML"):
        read_declaration(samples.tar_gz({"hallmark.toml": b"[package\n"}))
    assert read_declaration(b"not an archive") == {}
    with tarfile.open(fileobj=__import__("io").BytesIO(flat)) as tf:
        assert "hallmark.toml" in tf.getnames()


def test_api_errors_and_durations_read_as_lines() -> None:
    err = api_error(403, {"error": {"code": "name_owned", "message": "owned by bob", "details": {"owner": "bob"}}})
    assert err.code == "name_owned" and err.message == "owned by bob (owner=bob) [HTTP 403]" and err.hint
    assert api_error(401, {"message": "Unauthorized"}).code == "http_401"
    assert api_error(502, None).message.startswith("the API answered without a JSON error")
    assert [parse_duration(d) for d in ("60s", "5m", "2h", "1d", "90")] == [60, 300, 7200, 86400, 90]
    with pytest.raises(CliError):
        parse_duration("soon")


def test_role_commands_refuse_bad_keys_and_subjects_in_one_line(served: tuple[str, dict[str, str], Path],
                                                                tmp_path: Path) -> None:
    _, env, _ = served
    made = _run(["approver", "keygen", "--out", str(tmp_path / "ap.pem")], env)
    assert made.returncode == 0, made.stderr
    assert (tmp_path / "ap.pem").stat().st_mode & 0o077 == 0  # the private key is the owner's alone
    assert (tmp_path / "ap.pub.pem").read_text().startswith("-----BEGIN PUBLIC KEY-----")
    again = _run(["approver", "keygen", "--out", str(tmp_path / "ap.pem")], env)
    assert again.returncode == 2 and "error: exists:" in again.stderr  # never overwrites a key
    admin = _token(env, "superadmin", "root")
    private = _run(["approver", "register", "--id", "ap", "--public-key", str(tmp_path / "ap.pem"), "--token", admin], env)
    assert private.returncode == 2 and "error: private_key:" in private.stderr
    not_admin = _run(["approver", "register", "--id", "ap", "--public-key", str(tmp_path / "ap.pub.pem"),
                      "--token", _token(env)], env)
    assert not_admin.returncode == 2 and "error: " in not_admin.stderr and "[HTTP 403]" in not_admin.stderr
    # a P-384 key is not an approver key
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    p384 = ec.generate_private_key(ec.SECP384R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    (tmp_path / "p384.pem").write_bytes(p384)
    bad = _run(["approve", "--key", str(tmp_path / "p384.pem"), "--upgrade", "up-x",
                "--token", _token(env, "approver", "ap")], env)
    assert bad.returncode == 2 and "error: bad_key:" in bad.stderr
    # a package with no pending upgrade; an unknown upgrade
    pkg = tmp_path / "noup-1.0.0.tar.gz"
    assert _run(["sample", "package", "--out", str(pkg), "--name", "noup"], env).returncode == 0
    pid = _run(["submit", str(pkg), "--print-id", "--token", _token(env)], env).stdout.strip()
    none = _run(["approve", "--key", str(tmp_path / "ap.pem"), "--package", pid, "--token", _token(env, "approver", "ap")], env)
    assert none.returncode == 2 and "error: no_upgrade:" in none.stderr, none.stdout + none.stderr
    unknown = _run(["approve", "--key", str(tmp_path / "ap.pem"), "--upgrade", "up-nope",
                    "--token", _token(env, "approver", "ap")], env)
    assert unknown.returncode == 2 and "[HTTP 404]" in unknown.stderr, unknown.stdout + unknown.stderr
    status = _run(["status", pid, "--token", _token(env)], env)
    assert status.returncode == 0 and "Published noup 1.0.0" in status.stdout
    for proc in (again, private, not_admin, bad, none, unknown):
        _readable(proc)
