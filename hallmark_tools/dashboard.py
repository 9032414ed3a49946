"""The live deployments dashboard (``GET /ui/deployments`` on ``hallmark local serve``): per
function and environment the tier badge, the live version, the canary share and drift, then the
recent deployments with their stages. Server-rendered from the deployments API (read with an
auditor token the local issuer makes), so the page needs no token and no script."""

from __future__ import annotations

import html
from typing import Any

TIER_COLOURS = {"bronze": "#cd7f32", "silver": "#a8a9ad", "gold": "#d4af37"}
STAGE_COLOURS = {"live": "#1a7f37", "canary": "#9a6700", "rolled_back": "#bc4c00", "refused": "#cf222e",
                 "failed": "#cf222e", "drifted": "#8250df"}
PATH = "/ui/deployments"

_STYLE = """
body{font-family:system-ui,sans-serif;margin:24px;background:#f6f8fa;color:#1f2328}
h1{font-size:22px;margin:0 0 16px}
.grid{display:flex;flex-wrap:wrap;gap:12px;margin-bottom:24px}
.card{background:#fff;border:1px solid #d0d7de;border-radius:8px;padding:12px 16px;min-width:300px}
.fn{font-family:monospace;font-size:13px}
.badge{display:inline-block;border-radius:10px;padding:2px 10px;color:#fff;font-weight:600;font-size:12px}
.bar{height:10px;background:#d0d7de;border-radius:5px;overflow:hidden;margin:6px 0}
.bar>span{display:block;height:100%;background:#1a7f37}
table{border-collapse:collapse;background:#fff;width:100%}
td,th{border:1px solid #d0d7de;padding:4px 8px;font-size:13px;text-align:left}
.drift{color:#8250df;font-weight:600}
"""


def _badge(text: str, colour: str, cls: str = "badge") -> str:
    return f'<span class="{cls}" style="background:{colour}">{html.escape(text)}</span>'


def render(deployments: list[dict[str, Any]]) -> bytes:
    """The page for these deployment records (newest first)."""
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    for d in deployments:
        if d["stage"] in ("refused",):
            continue
        latest.setdefault((d["functionName"], d["environment"]), d)
    cards = []
    for (fn, env), d in sorted(latest.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        share = 100 if d["stage"] == "live" else round(100 * float(d.get("canaryWeight") or 0))
        drifted = [s for s in d.get("stages", []) if s["stage"] == "drifted"]
        drift = (f'<div class="drift" data-drift="yes">drift at {html.escape(drifted[-1]["at"])}: '
                 f'{html.escape(str(drifted[-1].get("detail", "")))[:120]}</div>' if drifted
                 else '<div data-drift="no">no drift</div>')
        tier = d.get("tier") or "-"
        cards.append(
            f'<div class="card" data-function="{html.escape(fn)}" data-environment="{html.escape(env)}">'
            f'<div><b>{html.escape(env)}</b> {_badge(tier, TIER_COLOURS.get(tier, "#57606a"))} '
            f'{_badge(d["stage"], STAGE_COLOURS.get(d["stage"], "#57606a"))}</div>'
            f'<div class="fn">{html.escape(fn)}</div>'
            f'<div>{html.escape(d["package"])}@{html.escape(d["packageVersion"])} · version '
            f'{html.escape(str(d.get("functionVersion") or "-"))}</div>'
            f'<div class="bar"><span style="width:{share}%"></span></div>'
            f'<div data-share="{share}">{share} % on this version</div>{drift}</div>')
    rows = "".join(
        f'<tr data-deployment="{html.escape(d["deploymentId"])}"><td class="fn">{html.escape(d["deploymentId"])}</td>'
        f'<td>{html.escape(d["environment"])}</td><td>{html.escape(d["package"])}@{html.escape(d["packageVersion"])}</td>'
        f'<td>{_badge(d.get("tier") or "-", TIER_COLOURS.get(d.get("tier") or "", "#57606a"))}</td>'
        f'<td>{_badge(d["stage"], STAGE_COLOURS.get(d["stage"], "#57606a"))}</td>'
        f'<td>{html.escape(" → ".join(s["stage"] for s in d.get("stages", [])))}</td></tr>'
        for d in deployments)
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>Hallmark deployments</title>"
            f"<style>{_STYLE}</style></head><body><h1>Hallmark deployments</h1>"
            f'<div class="grid">{"".join(cards) or "<p>nothing deployed yet</p>"}</div>'
            f"<table><tr><th>deployment</th><th>environment</th><th>package</th><th>tier</th><th>stage</th>"
            f"<th>stages</th></tr>{rows}</table></body></html>")
    return page.encode()


def deployments_page(cloud: Any) -> tuple[int, bytes]:
    """Read every deployment through the API (auditor) and render the page."""
    token = cloud.token("auditor", "dashboard")
    from urllib.parse import quote

    out: list[dict[str, Any]] = []
    after = ""
    while True:
        resp = cloud.api("GET", f"/deployments?limit=100{after}", token=token)
        if resp.status != 200:
            return resp.status, resp.body
        page = resp.json()
        out += page["items"]
        if not page["nextToken"]:
            return 200, render(out)
        after = f"&nextToken={quote(page['nextToken'], safe='')}"
