"""The docs test: every ```bash block of README.md runs exactly as written, in order, in one bash
session, in a fresh directory that looks like the repository root after `make setup` (a `.venv`
holding this interpreter's `hallmark`), against the `hallmark local serve` the README starts.

Only commands that need the network or take minutes are skipped, each named below with its
reason; a block mixing skipped and run commands fails the test (keep them apart). The server
port and `~` are redirected through the environment (`HALLMARK_PORT`, `HALLMARK_API`, `HOME`),
which the README's commands read as documented, so the text itself is never rewritten.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

from hallmark_tools.localcloud.server import free_port

README = Path(__file__).resolve().parents[2] / "README.md"

#: command prefix -> why the docs test does not run it
SKIPPED: dict[str, str] = {
    "make demo": "installs .venv and the CDK CLI from the network, then runs the full scenario (minutes)",
    "make test": "runs the whole suite (this test is part of it)",
    "make setup": "installs .venv and the CDK CLI from the network",
    "npx cdk ": "needs an AWS account and the network",
}


def bash_blocks(text: str) -> list[str]:
    return re.findall(r"^```bash\n(.*?)^```", text, flags=re.S | re.M)


def commands(block: str) -> list[str]:
    """The block's commands: continuation lines joined, comment-only and blank lines dropped."""
    out: list[str] = []
    current = ""
    for line in block.splitlines():
        current += line
        if line.endswith("\\"):
            current = current[:-1] + " "
            continue
        if current.strip() and not current.lstrip().startswith("#"):
            out.append(current.strip())
        current = ""
    return out


def skip_reason(command: str) -> str | None:
    return next((why for prefix, why in SKIPPED.items() if command.startswith(prefix)), None)


def runnable_script(text: str) -> tuple[str, list[str]]:
    """(the blocks to run, verbatim, joined in order; the commands skipped)."""
    run: list[str] = []
    skipped: list[str] = []
    for block in bash_blocks(text):
        reasons = [skip_reason(c) for c in commands(block)]
        if all(reasons):
            skipped += commands(block)
            continue
        assert not any(reasons), f"a README block mixes skipped and run commands; keep them apart:\n{block}"
        run.append(block)
    return "\n".join(run), skipped


def test_the_readme_lists_only_the_declared_skips() -> None:
    script, skipped = runnable_script(README.read_text())
    assert script.strip(), "README.md has no runnable bash block"
    assert {c.split()[0] + " " + c.split()[1] for c in skipped} >= {"make demo", "make test"}, skipped
    for command in skipped:
        assert skip_reason(command), command


def test_every_readme_command_runs_as_written(tmp_path: Path) -> None:
    script, _ = runnable_script(README.read_text())
    work = tmp_path / "repo"
    (work / "home").mkdir(parents=True)
    (work / ".venv").symlink_to(Path(sys.prefix))  # the venv running this test (make setup's .venv in CI)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "HALLMARK_"))}
    env.update({"HOME": str(work / "home"), "HALLMARK_PORT": str(port), "HALLMARK_API": f"http://127.0.0.1:{port}"})
    (work / "readme.sh").write_text("set -eo pipefail\n" + script)
    log = work / "readme.log"
    with log.open("w") as sink:  # a file, not a pipe: a server left running cannot hold the test open
        proc = subprocess.Popen(["bash", "readme.sh"], cwd=work, env=env, stdout=sink, stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            proc.wait(timeout=420)
        finally:
            # the README's own `kill %1` stops the server; this only cleans up after a failure
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
    out = log.read_text()
    assert proc.returncode == 0, out[-6000:]
    for expected in ("Published demo 1.0.0", "Published greeter 0.1.0", "rejected, exit 1",
                     "AwaitingApproval", "Published demo 2.0.0", "outcome resume", "Completed bronze ceremony", "OK ",
                     "1 item(s) waiting for approver-1", "audit proofs verified", "Published evi-model 1.0.0",
                     "active scoring model: evi.onnx sha256", "saved ", "state: local-state (restored"):
        assert expected in out, (expected, out[-6000:])
    assert len(re.findall(r"^OK ", out, re.M)) >= 2, out[-6000:]  # the chain verifies before and after the restart
    page = (work / "report.html").read_text()
    assert "Published" in page and 'id="audit-status"' in page
    assert "Traceback" not in out, out[-6000:]
    assert (work / "keys" / "audit.pem").read_bytes().startswith(b"-----BEGIN PUBLIC KEY-----")
    assert "moved 0 message(s)" in out
