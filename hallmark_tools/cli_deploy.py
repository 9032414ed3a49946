"""``hallmark deploy NAME@VERSION --env ENV [--wait]`` (the stages as they pass) and
``hallmark deployments list``, over the deployments API."""

from __future__ import annotations

import time
import uuid
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from hallmark_tools import cli_api

console = Console()
deployments_app = typer.Typer(help="Deployments of lambda packages (the deployment flow).", no_args_is_help=True)
TERMINAL = ("live", "rolled_back", "refused", "failed")
ICON = {"live": "[green]●[/]", "rolled_back": "[yellow]↺[/]", "refused": "[red]✗[/]", "failed": "[red]✗[/]",
        "drifted": "[magenta]≠[/]"}


def _split(ref: str) -> tuple[str, str]:
    name, sep, version = ref.partition("@")
    if not sep or not name or not version:
        raise typer.BadParameter(f"{ref!r} is not NAME@VERSION")
    return name, version


def _stage_line(stage: dict[str, Any]) -> str:
    extra = " ".join(str(stage[k]) for k in ("reason", "detail") if stage.get(k))
    return f"{ICON.get(stage['stage'], '·')} {stage['at']}  {stage['stage']}" + (f"  [dim]{extra}[/]" if extra else "")


def deploy_command(
    ref: str = typer.Argument(..., help="the published lambda package, NAME@VERSION"),
    env: str = typer.Option(..., "--env", help="development | staging | production"),
    wait: bool = typer.Option(False, "--wait", help="follow the stages until the deployment is live, rolled back or refused"),
    timeout: float = typer.Option(1800.0, "--timeout", help="seconds to follow before giving up (exit 3)"),
    idempotency_key: str = typer.Option(None, "--idempotency-key", help="repeat a request safely (default: a new key)"),
    api: str = cli_api.API_OPTION,
    token: str = typer.Option(..., "--token", envvar=cli_api.TOKEN_ENV, help="a bearer token (role submitter)"),
) -> None:
    """Request a deployment (202) and, with --wait, show its stages as they pass (exit 1 unless live)."""
    name, version = _split(ref)
    base = api.rstrip("/")

    def run() -> int:
        key = idempotency_key or uuid.uuid4().hex
        started = cli_api.ok("POST", f"{base}/deployments", token,
                             {"package": name, "version": version, "environment": env},
                             extra_headers={"Idempotency-Key": key})
        console.print(f"deployment {started['deploymentId']} of {ref} to {env} ({started['functionName']}): "
                      f"{base}{started['statusUrl']}")
        if not wait:
            return 0
        shown = 0
        deadline = time.monotonic() + timeout
        while True:
            doc = cli_api.ok("GET", f"{base}{started['statusUrl']}", token)
            for stage in doc["stages"][shown:]:
                console.print(_stage_line(stage))
            shown = len(doc["stages"])
            if doc["stage"] in TERMINAL:
                if doc["stage"] == "live":
                    console.print(f"live: version {doc['functionVersion']}, CodeSha256 {doc['codeSha256']} "
                                  f"(the signed sha256 {doc['signedSha256']})")
                return 0 if doc["stage"] == "live" else 1
            if time.monotonic() > deadline:
                console.print(f"still {doc['stage']} after {timeout:g}s")
                return 3
            time.sleep(0.5)

    code = cli_api.run_cli(run)
    if code:
        raise typer.Exit(code)


@deployments_app.command("list")
def list_command(
    package: str = typer.Option(None, "--package", help="only this package"),
    env: str = typer.Option(None, "--env", help="only this environment"),
    limit: int = typer.Option(50, "--limit", help="at most this many (newest first)"),
    api: str = cli_api.API_OPTION,
    token: str = typer.Option(..., "--token", envvar=cli_api.TOKEN_ENV, help="a bearer token"),
) -> None:
    """The deployments, newest first, page by page."""
    from urllib.parse import urlencode

    def run() -> int:
        table = Table("deployment", "package", "env", "tier", "version", "stage", "canary")
        query = urlencode({k: v for k, v in (("package", package), ("environment", env)) if v})
        for d in cli_api.pages(f"{api.rstrip('/')}/deployments?{query}", token, limit):
            table.add_row(d["deploymentId"], f"{d['package']}@{d['packageVersion']}", d["environment"],
                          d.get("tier") or "-", d.get("functionVersion") or "-", d["stage"],
                          f"{int(100 * float(d.get('canaryWeight') or 0))} %")
        console.print(table)
        return 0

    cli_api.run_cli(run)
