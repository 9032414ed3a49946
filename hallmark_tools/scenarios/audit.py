"""Audit scenario: cover every chain with a signed checkpoint, export, verify offline."""

from __future__ import annotations

from typing import Any

from hallmark_tools.export import export_audit, export_keys, export_manifests
from hallmark_tools.scenarios.base import DemoContext, Step


def step_export(ctx: DemoContext) -> dict[str, Any]:
    ctx.cloud.wait_idle()
    keys = export_keys(ctx.out / "keys", ctx.cloud.client("kms"))
    manifests = export_manifests(ctx.out / "manifests", ctx.cloud.client("s3"))
    chains = export_audit(ctx.out / "audit")
    from hallmark.audit.replay import verify_export_files

    verified = {}
    for chain, (events_path, ckpt_path) in chains.items():
        report = verify_export_files(events_path, ckpt_path, (ctx.out / "keys" / "audit.pem").read_bytes())
        assert report.ok, f"{chain}: {report.reason} at {report.first_bad_seq}"
        verified[chain] = {"events": report.events, "checkpoints": report.checkpoints}
    return {"keys": sorted(keys), "manifests": len(manifests), "chains": verified}


STEPS: list[tuple[str, Step]] = [
    ("Audit: checkpoint, export and verify every chain offline", step_export),
]
