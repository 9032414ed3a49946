"""The `hallmark` command: the demo, the local cloud, audit verification and operator tools."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import typer
from rich.console import Console

app = typer.Typer(help="Hallmark: provenance and release pipeline (local cloud, audit, operator tools).",
                  no_args_is_help=True, pretty_exceptions_enable=False)
local_app = typer.Typer(help="The local cloud (moto in-process).", no_args_is_help=True)
audit_app = typer.Typer(help="The audit log: verify and export.", no_args_is_help=True)
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
    from hallmark_tools.localcloud.server import free_port, make_server

    with LocalCloud(serve_port=aws_port or free_port()) as cloud:
        server = make_server(cloud, port)
        console.print(f"[bold green]Hallmark local API[/] on http://127.0.0.1:{port}  "
                      f"(AWS endpoint http://127.0.0.1:{cloud.serve_port}); Ctrl-C stops.")
        console.print("Get a token: [cyan]hallmark local token --role submitter --sub alice[/]")
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()


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


@audit_app.command("verify")
def audit_verify(
    events: Path = typer.Argument(..., exists=True, dir_okay=False, help="<chain>.events.jsonl"),
    checkpoints: Path = typer.Option(..., "--checkpoints", exists=True, dir_okay=False, help="<chain>.checkpoints.jsonl"),
    key: Path = typer.Option(..., "--key", exists=True, dir_okay=False, help="audit checkpoint public key (PEM)"),
) -> None:
    """Replay an exported chain offline: exit 0 when every hash, link, root and signature holds."""
    from hallmark.audit.replay import verify_export

    started = time.perf_counter()
    with events.open() as ev, checkpoints.open() as ck:
        report = verify_export(ev, ck, key.read_bytes())
    elapsed = time.perf_counter() - started
    if report.ok:
        console.print(f"[bold green]OK[/] {report.events} events, {report.checkpoints} checkpoints verified "
                      f"in {elapsed:.2f}s (chains: {', '.join(sorted(report.chains))})")
        return
    console.print(f"[bold red]FAILED[/] at seq {report.first_bad_seq}: {report.reason}")
    raise typer.Exit(2)


def main() -> None:  # pragma: no cover - console script entry
    sys.exit(app())


if __name__ == "__main__":  # pragma: no cover
    app()


