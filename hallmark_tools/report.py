"""``hallmark report PACKAGE_ID --html FILE``: a one-page release report, readable by anyone.

It gathers, through the API (no AWS credentials): the package (``GET /packages/{id}``: status,
reasons, history, validator results, manifest reference), its upgrade's approvals
(``GET /upgrades/{id}``, for a governed release), its ceremony tier (``GET /artifacts/{id}``),
and the audit proof status: the release bundle (``GET /packages/{id}/bundle``) checked offline
with the public keys of ``GET /keys``, exactly as ``hallmark bundle verify`` checks it. A part
that cannot be read is shown as such, with the reason (never as a pass).

The page is one self-contained HTML file: inline CSS, no script, nothing fetched. Every value
from the API is HTML-escaped.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from hallmark_tools import cli_api
from hallmark_tools.cli_api import CliError


def _get(url: str, token: str) -> tuple[Any, str | None]:
    """(answer, None) or (None, why it could not be read)."""
    try:
        return cli_api.ok("GET", url, token), None
    except CliError as exc:
        return None, f"{exc.code}: {exc.message}"


def gather(api: str, token: str, package_id: str) -> dict[str, Any]:
    from hallmark.bundle import verify_bundle
    from hallmark_tools.cli_audit import fetch_public_keys

    base = api.rstrip("/")
    package = cli_api.ok("GET", f"{base}/packages/{package_id}", token)  # no package: no report (exit 2)
    report: dict[str, Any] = {"package": package, "generatedAt": datetime.now(UTC).isoformat(timespec="seconds"),
                              "api": base}
    upgrade_id = package.get("upgradeId")
    report["upgrade"], report["upgradeError"] = _get(f"{base}/upgrades/{upgrade_id}", token) if upgrade_id \
        else (None, None)
    bundle: Any = None
    artifact, why = _get(f"{base}/artifacts/{package_id}", token)
    report["ceremony"] = artifact
    report["ceremonyError"] = None if artifact or (why or "").startswith("not_found") else why
    checks: list[dict[str, Any]] = []
    audit_error = None
    if package.get("status") == "Published":
        bundle, audit_error = _get(f"{base}/packages/{package_id}/bundle", token)
        if isinstance(bundle, dict) and report["upgrade"] is None and isinstance(bundle.get("approvals"), dict):
            # a submitter may not read GET /upgrades; the bundle carries the same signed decisions
            a = bundle["approvals"]
            records = a.get("records") or []
            report["upgrade"] = {"upgradeId": a.get("upgradeId"), "status": "approved (from the release bundle)",
                                 "threshold": a.get("threshold"), "approvals": records,
                                 "approvalCount": sum(r.get("decision") == "approve" for r in records)}
            report["upgradeError"] = None
        if bundle is not None:
            try:
                keys = {e["purpose"]: e["pem"].encode() for e in fetch_public_keys(base)}
                checks = [{"name": c.name, "ok": c.ok, "detail": c.detail} for c in verify_bundle(bundle, keys)]
            except ValueError as exc:
                audit_error = str(exc)
            uncovered = ((bundle.get("audit") or {}).get("uncoveredEvents") or 0) if isinstance(bundle, dict) else 0
            if uncovered:
                report["auditPending"] = (f"{uncovered} audit event(s) of this release are not covered by a signed "
                                          "checkpoint yet (the checkpointer signs one every few minutes): they cannot "
                                          "be proved now; make the report again later")
    else:
        audit_error = f"not published ({package.get('status')}): no release bundle to check"
    report["auditChecks"], report["auditError"] = checks, audit_error
    return report


# ----------------------------------------------------------------------------- HTML
CSS = """
body{font:15px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;background:#f4f5f7;color:#1d2330}
main{max-width:980px;margin:24px auto;background:#fff;padding:28px 36px;border-radius:10px;box-shadow:0 1px 4px #0002}
h1{margin:0 0 4px;font-size:26px}h2{font-size:18px;margin:26px 0 8px;border-bottom:1px solid #e3e6ea;padding-bottom:4px}
.sub{color:#5b6475;margin:0 0 14px}.badge{display:inline-block;padding:2px 10px;border-radius:12px;font-weight:600;
font-size:13px;vertical-align:middle}.ok{background:#dff3e4;color:#17692f}.bad{background:#fbe1e1;color:#a11d1d}
.wait{background:#fff3d6;color:#7a5600}.none{background:#eceef1;color:#4a5160}
table{border-collapse:collapse;width:100%;font-size:14px}td,th{text-align:left;padding:6px 8px;border-bottom:1px solid
#eef0f3;vertical-align:top}th{color:#5b6475;font-weight:600;width:210px}code{font:12.5px ui-monospace,Menlo,monospace;
word-break:break-all}ul{margin:4px 0;padding-left:20px}footer{color:#8a91a0;font-size:12px;margin-top:26px}
"""


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _badge(text: str, kind: str, ident: str = "") -> str:
    attr = f' id="{ident}"' if ident else ""
    return f'<span class="badge {kind}"{attr}>{_e(text)}</span>'


def _status_kind(status: str) -> str:
    if status == "Published":
        return "ok"
    if status in ("Rejected", "Failed", "RolledBack"):
        return "bad"
    return "wait"


def _rows(pairs: Iterable[tuple[str, str]]) -> str:
    return "".join(f"<tr><th>{_e(k)}</th><td>{v}</td></tr>" for k, v in pairs)


def _validators(package: dict[str, Any]) -> str:
    results = package.get("validators") or {}
    if not results:
        return '<p class="sub">No validator has reported yet.</p>'
    rows = []
    for name in sorted(results):
        r = results[name] or {}
        passed = bool(r.get("passed"))
        reasons = r.get("reasons") or []
        detail = "<ul>" + "".join(f"<li>{_e(x)}</li>" for x in reasons) + "</ul>" if reasons else "no findings"
        rows.append(f'<tr data-validator="{_e(name)}"><th>{_e(name)}</th><td>'
                    f'{_badge("passed" if passed else "failed", "ok" if passed else "bad")} {detail}</td></tr>')
    return f'<table id="validators">{"".join(rows)}</table>'


def _absent(ident: str, error: str | None, badge: str, text: str) -> str:
    """A section without its record: unreadable (with why), or the record does not exist."""
    if error:
        return f'<p id="{ident}">{_badge("unreadable", "bad")} {_e(error)}</p>'
    return f'<p id="{ident}">{badge} {_e(text)}</p>'


def _approvals(report: dict[str, Any]) -> str:
    upgrade = report.get("upgrade")
    if upgrade is None:
        return _absent("approvals", report.get("upgradeError"), _badge("not required", "none"),
                       f"impact {report['package'].get('impact')}: no multisig approval needed")
    records = list(upgrade.get("approvals") or []) + list(upgrade.get("ratifications") or [])
    rows = "".join(f"<tr><td>{_e(r.get('approverId'))}</td><td>{_e(r.get('decision'))}</td>"
                   f"<td>{_e(r.get('recordedAt'))}</td><td><code>{_e(r.get('keyFingerprint'))}</code></td></tr>"
                   for r in records)
    state = str(upgrade.get("status"))
    kind = "ok" if state in ("Applied", "Ratified") or state.startswith("approved") else _status_kind(state)
    head = (f"<p>{_badge(state, kind)} "
            f"upgrade <code>{_e(upgrade.get('upgradeId'))}</code>: {_e(upgrade.get('approvalCount'))} of "
            f"{_e(upgrade.get('threshold'))} approvals{' (emergency)' if upgrade.get('emergency') else ''}</p>")
    table = ("<table><tr><th>approver</th><th>decision</th><th>recorded</th><th>key fingerprint</th></tr>"
             f"{rows}</table>") if rows else ""
    return f'<div id="approvals">{head}{table}</div>'


def _ceremony(report: dict[str, Any]) -> str:
    held = report.get("ceremony")
    if held is None:
        return _absent("ceremony", report.get("ceremonyError"), _badge("none", "none", "tier"),
                       "no witness ceremony has awarded a tier yet")
    verified = (held.get("verification") or {}).get("verified")
    reason = (held.get("verification") or {}).get("reason")
    return (f'<p id="ceremony">{_badge(str(held.get("tier")), "ok" if verified else "bad", "tier")} '
            f'provenance <code>{_e(held.get("signatureId"))}</code>: '
            f'{"verifies" if verified else "does NOT verify: " + _e(reason)}</p>')


def _audit(report: dict[str, Any]) -> str:
    checks = report.get("auditChecks") or []
    if not checks:
        return (f'<p id="audit">{_badge("not checked", "wait" if report["package"].get("status") != "Published" else "bad", "audit-status")} '
                f'{_e(report.get("auditError"))}</p>')
    ok = all(c["ok"] for c in checks)
    rows = "".join(f'<tr><th>{_e(c["name"])}</th><td>{_badge("pass" if c["ok"] else "FAIL", "ok" if c["ok"] else "bad")}'
                   f' {_e(c["detail"])}</td></tr>' for c in checks)
    summary = f"all {len(checks)} checks pass" if ok else f"{sum(not c['ok'] for c in checks)} of {len(checks)} checks FAIL"
    pending = f'<p id="audit-pending">{_badge("pending", "wait")} {_e(report["auditPending"])}</p>' \
        if report.get("auditPending") else ""
    return (f'<div id="audit"><p>{_badge("verified" if ok else "FAILED", "ok" if ok else "bad", "audit-status")} '
            f"the release bundle, checked offline with the public keys of GET /keys: {summary}</p>{pending}"
            f"<table>{rows}</table></div>")


def render_html(report: dict[str, Any]) -> str:
    p = report["package"]
    meta = p.get("meta") or {}
    manifest = p.get("manifest") or {}
    status = str(p.get("status"))
    reasons = p.get("reasons") or []
    history = p.get("history") or []
    summary = _rows([
        ("package id", f"<code>{_e(p.get('packageId'))}</code>"),
        ("submitted", f"{_e(p.get('submittedBy'))} at {_e(p.get('submittedAt'))}"),
        ("impact", f"{_e(p.get('impact'))} (declared {_e(p.get('declaredImpact') or meta.get('impact'))})"),
        ("artifact sha256", f"<code>{_e(meta.get('sha256'))}</code>"),
        ("manifest digest", f'<code id="manifest-digest">{_e(manifest.get("digest") or "none (not signed)")}</code>'),
        ("manifest signature", f"<code>{_e(manifest.get('signatureId'))}</code>"),
        ("listing", f"<code>{_e(p.get('listingId'))}</code>"),
    ])
    reason_html = ("<h2>Reasons</h2><ul id=\"reasons\">" + "".join(f"<li>{_e(r)}</li>" for r in reasons) + "</ul>"
                   if reasons else "")
    steps = "".join(f"<li>{_e(h.get('status'))} <span class=\"sub\">{_e(h.get('at'))}</span></li>"
                    for h in history if isinstance(h, dict))
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Release report: {_e(meta.get('name'))} {_e(meta.get('version'))}</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>{CSS}</style></head>
<body><main>
<h1 id="title">{_e(meta.get('name'))} {_e(meta.get('version'))} {_badge(status, _status_kind(status), 'status')}</h1>
<p class="sub">Hallmark release report, generated {_e(report.get('generatedAt'))} from {_e(report.get('api'))}</p>
<table id="summary">{summary}</table>
{reason_html}
<h2>Validations</h2>{_validators(p)}
<h2>Approvals</h2>{_approvals(report)}
<h2>Ceremony tier</h2>{_ceremony(report)}
<h2>Audit proof status</h2>{_audit(report)}
<h2>History</h2><ol id="history">{steps}</ol>
<footer>Every value above comes from the Hallmark API; the audit checks ran on this machine with the published
public keys (hallmark bundle verify checks the same bundle).</footer>
</main></body></html>
"""
