"""The `hallmark` command: the demo, the local cloud, audit verification and operator tools."""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.console import Console

from hallmark_tools import cli_api

app = typer.Typer(help="Hallmark: provenance and release pipeline (local cloud, audit, operator tools).",
                  no_args_is_help=True, pretty_exceptions_enable=False)
local_app = typer.Typer(help="The local cloud (moto in-process).", no_args_is_help=True)
audit_app = typer.Typer(help="The audit log: verify, prove and export.", no_args_is_help=True)
keys_app = typer.Typer(help="Public keys of the KMS signing keys.", no_args_is_help=True)
ops_app = typer.Typer(help="Operator tools.", no_args_is_help=True)
app.add_typer(local_app, name="local")
app.add_typer(audit_app, name="audit")
app.add_typer(keys_app, name="keys")
app.add_typer(ops_app, name="ops")
console = Console()


@app.command()
def demo(
    out: Path = typer.Option(Path("hallmark-out"), "--out", help="Where to write keys, manifests, audit, summary."),
    chaos: int | None = typer.Option(None, "--chaos", metavar="SEED",
                                     help="inject faults driven by this seed; then redrive and check the invariants"),
    fault_rate: float = typer.Option(0.1, "--fault-rate", min=0.0, max=0.5, help="with --chaos: each fault's rate"),
) -> None:
    """Boot the local cloud and run the full scenario end to end (with --chaos: under faults)."""
    from hallmark_tools.demo import run_demo
    from hallmark_tools.localcloud.chaos import Chaos

    summary = run_demo(out, console, chaos=Chaos(chaos, fault_rate) if chaos is not None else None)
    if not summary.get("ok"):
        raise typer.Exit(1)


@local_app.command("serve")
def local_serve(
    port: int = typer.Option(8080, envvar="HALLMARK_PORT", help="Port of the HTTP API on 127.0.0.1."),
    aws_port: int = typer.Option(0, help="Port of the moto server (S3 presigned uploads); 0 picks a free one."),
    ratification_window: str = typer.Option("48h", "--ratification-window",
                                            help="how long an emergency upgrade waits for ratification (60s, 5m, 48h)"),
    verbose: bool = typer.Option(False, "-v", "--verbose", help="print every request and the handlers' logs"),
    state: Path = typer.Option(None, "--state", file_okay=False,
                               help="keep state and KMS keys in DIR across restarts (saved at a clean stop)"),
) -> None:
    """Serve the HTTP API on 127.0.0.1 against the local cloud (in memory, or kept in --state DIR)."""
    from hallmark_tools.cli_local import serve

    cli_api.run_cli(lambda: serve(port, aws_port, cli_api.parse_duration(ratification_window), verbose, state))


@local_app.command("token")
def local_token(
    role: list[str] = typer.Option(..., "--role", help="Role(s): submitter, approver, auditor, superadmin, buyer."),
    sub: str = typer.Option("local-user", "--sub", help="The subject (user or approver id: an approver's token sub is its approverId)."),
    ttl: int = typer.Option(3600, help="Lifetime in seconds."),
) -> None:
    """Print a bearer token the local JWT authorizer accepts (the token alone: TOKEN=$(hallmark local token ...))."""
    from hallmark_tools.localcloud.auth import LocalIssuer

    print(LocalIssuer().token(sub, list(role), ttl))


from hallmark_tools.cli_audit import prove_command, verify_command  # noqa: E402  (third-party verification)

audit_app.command("verify")(verify_command)
audit_app.command("prove")(prove_command)


from hallmark_tools.cli_audit import keys_export_command  # noqa: E402

keys_app.command("export")(cli_api.guarded(keys_export_command))

from hallmark_tools.cli_bundle import bundle_command  # noqa: E402  (the release bundle)

app.command("bundle")(bundle_command)


@ops_app.command("redrive")
@cli_api.guarded
def ops_redrive(
    queue: str = typer.Argument(..., help="a queue of the topology, e.g. audit (its DLQ is audit-dlq)"),
    limit: int = typer.Option(0, help="move at most this many messages (0: all)"),
) -> None:
    """Move dead-lettered messages back to their queue (FIFO group kept, dedup id `<id>.r`), so the
    handlers process them again; idempotent consumers make this safe to repeat."""
    import boto3

    from hallmark_tools.ops import redrive
    from hallmark_tools.topology import TOPOLOGY

    spec = next((q for q in TOPOLOGY.queues if q.name == queue), None)
    if spec is None:
        raise typer.BadParameter(f"unknown queue {queue!r}; one of {[q.name for q in TOPOLOGY.queues]}")
    sqs = boto3.client("sqs")
    suffix = ".fifo" if spec.fifo else ""
    source = sqs.get_queue_url(QueueName=f"hallmark-{spec.name}{suffix}")["QueueUrl"]
    dlq = sqs.get_queue_url(QueueName=f"hallmark-{spec.dlq_name}{suffix}")["QueueUrl"]
    moved = redrive(sqs, dlq, source, limit=limit or None)
    console.print(f"moved {moved} message(s) from hallmark-{spec.dlq_name}{suffix} back to hallmark-{spec.name}{suffix}")


from hallmark_tools.fetch import fetch_command  # noqa: E402  (the buyer's download-decrypt-verify)

app.command("fetch")(cli_api.guarded(fetch_command))


def _http(method: str, url: str, token: str, body: object = None) -> tuple[int, object]:
    """One API call; an unreachable API is one readable line and exit 2 (cli_api)."""
    try:
        return cli_api.call(method, url, token, body)
    except cli_api.CliError as exc:
        cli_api.fail(exc.code, exc.message, exc.hint)


@audit_app.command("export")
def audit_export(
    chain: str = typer.Option(..., "--chain", help="release | governance | ceremony | market | scoring"),
    out: Path = typer.Option(Path("audit-export"), "--out", help="directory for <chain>.events.jsonl and .checkpoints.jsonl"),
    api: str = typer.Option("http://127.0.0.1:8080", "--api", envvar="HALLMARK_API", help="the Hallmark API base URL"),
    token: str = typer.Option(..., "--token", envvar="HALLMARK_TOKEN", help="a bearer token (role auditor)"),
) -> None:
    """Export a chain as JSON Lines through the auditor API (then verify it offline)."""
    from typing import Any

    from hallmark.canonical import canonical_bytes

    out.mkdir(parents=True, exist_ok=True)
    events: list[Any] = []
    after = 0
    while True:
        status, page = _http("GET", f"{api}/audit/{chain}/events?after={after}&limit=1000", token)
        if status != 200 or not isinstance(page, dict):
            err = cli_api.api_error(status, page)
            cli_api.fail(err.code, f"cannot read events: {err.message}", err.hint)
        events += page["events"]
        if page["next"] is None:
            break
        after = int(page["next"])
    status, ckpts = _http("GET", f"{api}/audit/{chain}/checkpoints", token)
    if status != 200 or not isinstance(ckpts, dict):
        err = cli_api.api_error(status, ckpts)
        cli_api.fail(err.code, f"cannot read checkpoints: {err.message}", err.hint)
    (out / f"{chain}.events.jsonl").write_bytes(b"".join(canonical_bytes(e) + b"\n" for e in events))
    (out / f"{chain}.checkpoints.jsonl").write_bytes(
        b"".join(canonical_bytes(c) + b"\n" for c in ckpts["checkpoints"]))
    console.print(f"wrote {len(events)} events and {len(ckpts['checkpoints'])} checkpoints to {out}")



from hallmark_tools.cli_submit import sample_app, submit_command  # noqa: E402  (newcomer: submit, samples)

app.command("submit")(submit_command)
app.add_typer(sample_app, name="sample")

from hallmark_tools.cli_roles import (  # noqa: E402
    approve_command,
    approver_app,
    model_app,
    status_command,
    wait_command,
)

app.command("approve")(approve_command)
app.command("status")(status_command)
app.add_typer(approver_app, name="approver")
app.add_typer(model_app, name="model")
local_app.command("wait")(wait_command)

from hallmark_tools.cli_witness import ceremony_app, witness_app  # noqa: E402

app.add_typer(witness_app, name="witness")
app.add_typer(ceremony_app, name="ceremony")

from hallmark_tools.cli_lists import inbox_command, packages_command, report_command  # noqa: E402

app.command("inbox")(inbox_command)
app.command("packages")(packages_command)
app.command("report")(report_command)

from hallmark_tools.cli_deploy import deploy_command, deployments_app  # noqa: E402  (deployments, issue 24)

app.command("deploy")(deploy_command)
app.add_typer(deployments_app, name="deployments")


def main() -> None:  # pragma: no cover - console script entry
    sys.exit(app())


if __name__ == "__main__":  # pragma: no cover
    app()


