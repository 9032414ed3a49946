"""The `hallmark` command: the demo, the local cloud, audit verification and operator tools."""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.console import Console

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
def demo(out: Path = typer.Option(Path("hallmark-out"), "--out", help="Where to write keys, manifests, audit, summary.")) -> None:
    """Boot the local cloud and run the full scenario end to end."""
    from hallmark_tools.demo import run_demo

    summary = run_demo(out, console)
    if not summary.get("ok"):
        raise typer.Exit(1)


@local_app.command("serve")
def local_serve(
    port: int = typer.Option(8080, help="Port of the HTTP API on 127.0.0.1."),
    aws_port: int = typer.Option(0, help="Port of the moto server (S3 presigned uploads); 0 picks a free one."),
) -> None:
    """Serve the HTTP API on 127.0.0.1 against the local cloud."""
    from hallmark_tools.localcloud.cloud import LocalCloud
    from hallmark_tools.localcloud.server import free_port, make_server, serve_until_signal

    with LocalCloud(serve_port=aws_port or free_port()) as cloud:
        server = make_server(cloud, port)
        console.print(f"[bold green]Hallmark local API[/] on http://127.0.0.1:{port}  "
                      f"(AWS endpoint http://127.0.0.1:{cloud.serve_port}); Ctrl-C stops.")
        console.print("Get a token: [cyan]hallmark local token --role submitter --sub alice[/]")
        serve_until_signal(server)  # SIGINT/SIGTERM: in-flight requests finish, then the cloud stops


@local_app.command("token")
def local_token(
    role: list[str] = typer.Option(..., "--role", help="Role(s): submitter, approver, auditor, superadmin."),
    sub: str = typer.Option("local-user", "--sub", help="The subject (user or approver id)."),
    ttl: int = typer.Option(3600, help="Lifetime in seconds."),
) -> None:
    """Print a bearer token the local JWT authorizer accepts (the token is the last word)."""
    from hallmark_tools.localcloud.auth import LocalIssuer

    token = LocalIssuer().token(sub, list(role), ttl)
    print(f"Bearer token for {sub} ({', '.join(role)}): {token}")


from hallmark_tools.cli_audit import prove_command, verify_command  # noqa: E402  (third-party verification)

audit_app.command("verify")(verify_command)
audit_app.command("prove")(prove_command)


from hallmark_tools.cli_audit import keys_export_command  # noqa: E402

keys_app.command("export")(keys_export_command)

from hallmark_tools.cli_bundle import bundle_command  # noqa: E402  (the release bundle)

app.command("bundle")(bundle_command)


@ops_app.command("redrive")
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

app.command("fetch")(fetch_command)


def _http(method: str, url: str, token: str, body: object = None) -> tuple[int, object]:
    import json
    import urllib.error
    import urllib.request

    req = urllib.request.Request(url, method=method, data=json.dumps(body).encode() if body is not None else None,
                                 headers={"authorization": f"Bearer {token}", "content-type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"null")


@app.command()
def approve(
    key: Path = typer.Option(..., "--key", exists=True, dir_okay=False, help="your approver private key (PEM); it never leaves this machine"),
    upgrade: str = typer.Option(..., "--upgrade", help="the upgrade id (GET /packages/{id} shows it)"),
    api: str = typer.Option("http://127.0.0.1:8080", "--api", help="the Hallmark API base URL"),
    token: str = typer.Option(..., "--token", envvar="HALLMARK_TOKEN", help="your bearer token (role approver)"),
    decision: str = typer.Option("approve", "--decision", help="approve | reject (approvals), ratify | veto (ratifications)"),
    approver_id: str = typer.Option("", "--approver-id", help="defaults to the token's sub"),
    valid_for: int = typer.Option(900, "--valid-for", help="seconds the signed decision stays valid"),
) -> None:
    """Sign a decision on an upgrade locally and submit it."""
    from datetime import UTC, datetime, timedelta

    import jwt
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from hallmark.governance.messages import sign_approval

    private = serialization.load_pem_private_key(key.read_bytes(), password=None)
    if not isinstance(private, ec.EllipticCurvePrivateKey):
        raise typer.BadParameter("the key must be an ECDSA P-256 private key", param_hint="--key")
    who = approver_id or str(jwt.decode(token, options={"verify_signature": False})["sub"])
    status, upgrade_doc = _http("GET", f"{api}/upgrades/{upgrade}", token)
    if status != 200 or not isinstance(upgrade_doc, dict):
        console.print(f"[red]cannot read upgrade {upgrade}: {status} {upgrade_doc}")
        raise typer.Exit(2)
    form = sign_approval(private, approver_id=who, subject_id=upgrade, digest=upgrade_doc["manifestDigest"],
                         decision=decision,  # type: ignore[arg-type]
                         expires_at=datetime.now(UTC) + timedelta(seconds=valid_for))
    collection = "ratifications" if decision in ("ratify", "veto") else "approvals"
    status, answer = _http("POST", f"{api}/upgrades/{upgrade}/{collection}", token, form)
    if status >= 300:
        console.print(f"[red]refused ({status}):[/] {answer}")
        raise typer.Exit(2)
    console.print(f"[green]recorded[/] {decision} by {who}: outcome {answer['outcome']}")  # type: ignore[index]


@audit_app.command("export")
def audit_export(
    chain: str = typer.Option(..., "--chain", help="release | governance | ceremony | market | scoring"),
    out: Path = typer.Option(Path("audit-export"), "--out", help="directory for <chain>.events.jsonl and .checkpoints.jsonl"),
    api: str = typer.Option("http://127.0.0.1:8080", "--api", help="the Hallmark API base URL"),
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
            console.print(f"[red]cannot read events: {status} {page}")
            raise typer.Exit(2)
        events += page["events"]
        if page["next"] is None:
            break
        after = int(page["next"])
    status, ckpts = _http("GET", f"{api}/audit/{chain}/checkpoints", token)
    if status != 200 or not isinstance(ckpts, dict):
        console.print(f"[red]cannot read checkpoints: {status} {ckpts}")
        raise typer.Exit(2)
    (out / f"{chain}.events.jsonl").write_bytes(b"".join(canonical_bytes(e) + b"\n" for e in events))
    (out / f"{chain}.checkpoints.jsonl").write_bytes(
        b"".join(canonical_bytes(c) + b"\n" for c in ckpts["checkpoints"]))
    console.print(f"wrote {len(events)} events and {len(ckpts['checkpoints'])} checkpoints to {out}")



def main() -> None:  # pragma: no cover - console script entry
    sys.exit(app())


if __name__ == "__main__":  # pragma: no cover
    app()


