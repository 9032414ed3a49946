"""`hallmark demo`: boots the local cloud and runs the main scenario end to end, then writes
keys/, manifests/, audit/ and summary.json to the output directory."""

from __future__ import annotations

import contextlib
import json
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from hallmark_tools import samples
from hallmark_tools.driver import Driver
from hallmark_tools.export import export_audit, export_keys, export_manifests
from hallmark_tools.localcloud.cloud import LocalCloud


@dataclass
class DemoContext:
    cloud: LocalCloud
    driver: Driver
    out: Path
    console: Console
    facts: dict[str, Any] = field(default_factory=dict)


Step = Callable[[DemoContext], dict[str, Any]]


def step_health(ctx: DemoContext) -> dict[str, Any]:
    resp = ctx.driver.call("GET", "/health")
    assert resp.status == 200, resp.body
    return {"status": resp.json()["status"]}


def step_release_clean(ctx: DemoContext) -> dict[str, Any]:
    body = samples.clean_package("greeter")
    pid = ctx.driver.submit(body, name="greeter", version="1.0.0")
    doc = ctx.driver.wait_package(pid)
    assert doc["status"] == "Published", doc
    ctx.facts["published"] = doc
    return {"packageId": pid, "status": doc["status"], "manifestSignatureId": doc["manifest"]["signatureId"],
            "listingId": doc["listingId"], "validators": {k: v["passed"] for k, v in doc["validators"].items()}}


def _rejected(kind: str) -> Step:
    def step(ctx: DemoContext) -> dict[str, Any]:
        pid = ctx.driver.submit(samples.variant(kind), name=f"greeter-{kind.replace('_', '-')}", version="1.0.0")
        doc = ctx.driver.wait_package(pid)
        assert doc["status"] == "Rejected", doc
        assert doc["listingId"] is None
        return {"packageId": pid, "status": doc["status"], "reasons": doc["reasons"][:3]}

    return step


def step_refusals(ctx: DemoContext) -> dict[str, Any]:
    out = {}
    r = ctx.driver.call("POST", "/packages", "submitter", {"name": "x"})
    out["schema_violation"] = r.status
    r = ctx.driver.cloud.api("POST", "/packages", token=ctx.driver.tokens["submitter"], body=b"{not json",
                             headers={"content-type": "application/json"})
    out["malformed_json"] = r.status
    r = ctx.driver.call("POST", "/packages", "auditor", samples.submission("x", "1.0.0", b"x"))
    out["wrong_role"] = r.status
    r = ctx.driver.call("POST", "/packages", None, samples.submission("x", "1.0.0", b"x"))
    out["no_token"] = r.status
    assert out == {"schema_violation": 400, "malformed_json": 400, "wrong_role": 403, "no_token": 401}, out
    return out


def step_export(ctx: DemoContext) -> dict[str, Any]:
    ctx.cloud.wait_idle()
    keys = export_keys(ctx.out / "keys", ctx.cloud.client("kms"))
    manifests = export_manifests(ctx.out / "manifests", ctx.cloud.client("s3"))
    chains = export_audit(ctx.out / "audit")
    from hallmark.audit.replay import verify_export

    verified = {}
    for chain, (events_path, ckpt_path) in chains.items():
        with events_path.open() as ev, ckpt_path.open() as ck:
            report = verify_export(ev, ck, (ctx.out / "keys" / "audit.pem").read_bytes())
        assert report.ok, f"{chain}: {report.reason} at {report.first_bad_seq}"
        verified[chain] = {"events": report.events, "checkpoints": report.checkpoints}
    return {"keys": sorted(keys), "manifests": len(manifests), "chains": verified}


STEPS: list[tuple[str, Step]] = [
    ("API answers /health", step_health),
    ("Release: clean package -> validated, signed, published, listed", step_release_clean),
    ("Release: zip-slip archive -> Rejected", _rejected("zip_slip")),
    ("Release: leaked AWS key -> Rejected", _rejected("secret")),
    ("API: malformed / invalid / wrong role / no token -> JSON 4xx", step_refusals),
    ("Audit: checkpoint, export and verify every chain offline", step_export),
]


def run_demo(out: Path, console: Console, steps: list[tuple[str, Step]] | None = None) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    (out / "logs").mkdir(exist_ok=True)
    # The console keeps the real stdout: handler output is redirected to logs/functions.log below.
    console = Console(file=sys.stdout, force_terminal=console.is_terminal, width=console.width)
    summary: dict[str, Any] = {"ok": True, "steps": [], "startedAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    started = time.perf_counter()
    log = (out / "logs" / "functions.log").open("w")
    console.rule("[bold]Hallmark demo on the local cloud")
    # Handlers log JSON to stdout as in Lambda: keep those lines in logs/functions.log.
    with contextlib.redirect_stdout(log):
        boot = time.perf_counter()
        with LocalCloud() as cloud:
            console.print(f"local cloud up in {time.perf_counter() - boot:.1f}s: "
                          f"{len(cloud.topology.functions)} functions, {len(cloud.topology.state_machines)} state machines")
            ctx = DemoContext(cloud, Driver(cloud), out, console)
            for title, step in steps or STEPS:
                t0 = time.perf_counter()
                try:
                    with console.status(title):
                        result = step(ctx)
                    ok = True
                except Exception as exc:  # a failed step is reported, and the demo fails
                    result = {"error": f"{type(exc).__name__}: {exc}"}
                    traceback.print_exc(file=sys.stderr)
                    ok = False
                    summary["ok"] = False
                elapsed = time.perf_counter() - t0
                console.print(f"{'[green]✓' if ok else '[red]✗'}[/] {title} [dim]({elapsed:.1f}s)[/]")
                summary["steps"].append({"step": title, "ok": ok, "seconds": round(elapsed, 3), "result": result})
                if not ok:
                    break
    log.close()
    summary["seconds"] = round(time.perf_counter() - started, 3)
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    table = Table(title="Outputs")
    table.add_column("file")
    table.add_column("what")
    for path, what in (("keys/*.pem", "public keys of the KMS signing keys"),
                       ("manifests/*.dsse.json", "signed manifests (DSSE over in-toto)"),
                       ("audit/<chain>.events.jsonl", "audit events"),
                       ("audit/<chain>.checkpoints.jsonl", "signed Merkle checkpoints"),
                       ("summary.json", "what ran, ids, statuses, timings")):
        table.add_row(str(out / path), what)
    console.print(table)
    verdict = "[bold green]scenario finished" if summary["ok"] else "[bold red]scenario failed"
    console.print(f"{verdict}[/] in {summary['seconds']:.1f}s. Verify offline: "
                  f"hallmark audit verify {out}/audit/release.events.jsonl --checkpoints "
                  f"{out}/audit/release.checkpoints.jsonl --key {out}/keys/audit.pem")
    return summary
