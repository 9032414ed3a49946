"""`hallmark demo`: boots the local cloud and runs the main scenario end to end, then writes
keys/, manifests/, audit/ and summary.json to the output directory."""

from __future__ import annotations

import contextlib
import json
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from hallmark_tools.driver import Driver
from hallmark_tools.localcloud.chaos import Chaos
from hallmark_tools.localcloud.cloud import LocalCloud
from hallmark_tools.scenarios import STEPS, DemoContext, Step

DEMO_ENV = {"RATIFICATION_WINDOW_SECONDS": "5", "APPROVAL_TIMEOUT_SECONDS": "600",
            # the canary's bake (10 minutes on AWS) and how soon a deployment's manifest entry is
            # checkpointed (admission waits for its inclusion proof)
            "DEPLOY_BAKE_SECONDS": "3", "AUDIT_CHECKPOINT_EVERY_SECONDS": "2"}


def run_demo(out: Path, console: Console, steps: list[tuple[str, Step]] | None = None,
             chaos: Chaos | None = None) -> dict[str, Any]:
    """Run ``steps`` (the whole scenario by default); with ``chaos``, on a local cloud that injects
    faults (``localcloud.chaos``), then redrive what was dead-lettered and check the invariants of
    ``hallmark_tools.chaos_run`` (reported in the summary; one that fails fails the demo)."""
    if chaos is not None and steps is None:
        from hallmark_tools.chaos_run import DEMO_STEPS

        steps = DEMO_STEPS
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
        # Windows shortened for the demo (48 h ratification / 7 d approval in AWS).
        with LocalCloud(env=DEMO_ENV, chaos=chaos) as cloud:
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
            if chaos is not None:
                summary["chaos"] = _chaos_report(cloud, chaos, console)
                summary["ok"] = summary["ok"] and summary["chaos"]["ok"]
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
                       ("deployments/*.json", "deployments: live CodeSha256 and the signed sha256"),
                       ("summary.json", "what ran, ids, statuses, timings")):
        table.add_row(str(out / path), what)
    console.print(table)
    verdict = "[bold green]scenario finished" if summary["ok"] else "[bold red]scenario failed"
    console.print(f"{verdict}[/] in {summary['seconds']:.1f}s. Verify offline: "
                  f"hallmark audit verify {out}/audit/release.events.jsonl --checkpoints "
                  f"{out}/audit/release.checkpoints.jsonl --key {out}/keys/audit.pem")
    return summary


def _chaos_report(cloud: LocalCloud, chaos: Chaos, console: Console) -> dict[str, Any]:
    from hallmark_tools.chaos_run import check_invariants, settle

    redriven = settle(cloud)
    checks = check_invariants(cloud)
    table = Table(title=f"Chaos: seed {chaos.seed}, fault rate {chaos.rate}")
    table.add_column("invariant")
    table.add_column("holds")
    table.add_column("evidence")
    for c in checks:
        table.add_row(c.name, "[green]yes" if c.ok else "[red]NO", c.detail)
    console.print(f"injected: {dict(sorted(chaos.counts.items()))}; dead letters redriven: {redriven}")
    console.print(table)
    return {"seed": chaos.seed, "rate": chaos.rate, "injected": dict(sorted(chaos.counts.items())),
            "redriven": redriven, "ok": all(c.ok for c in checks),
            "invariants": [{"name": c.name, "ok": c.ok, "detail": c.detail} for c in checks]}
