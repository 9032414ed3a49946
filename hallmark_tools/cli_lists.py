"""Reading lists through the API (every list route pages with ``nextToken``; ``cli_api.pages``
follows it):

* ``hallmark inbox``: what waits for the calling approver: pending upgrades and settlements it
  has not decided yet, and emergency upgrades waiting for its ratification, each with the
  command that decides it;
* ``hallmark packages [--name --status --submitter]``: the packages the caller may read;
* ``hallmark report PACKAGE_ID --html FILE``: the one-page release report (hallmark_tools.report).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from hallmark_tools import cli_api

API = cli_api.API_OPTION


def _mine(records: list[dict[str, Any]], who: str) -> bool:
    return any(r.get("approverId") == who for r in records)


def inbox_items(api: str, token: str, who: str) -> list[str]:
    """One line per subject waiting for ``who`` (oldest first)."""
    base = api.rstrip("/")
    lines: list[str] = []
    for status, collection, verbs in (("Pending", "approvals", "approve | reject"),
                                      ("Ratifying", "ratifications", "ratify | veto")):
        for u in cli_api.pages(f"{base}/upgrades?status={status}", token):
            if _mine(u.get(collection) or [], who):
                continue
            count = u["approvalCount"] if collection == "approvals" else u["ratificationCount"]
            due = u.get("ratificationDeadline") if collection == "ratifications" else u.get("deadline")
            lines.append(f"upgrade {u['upgradeId']}  package {u['packageId']}  impact {u['impact']}"
                         f"{'  EMERGENCY' if u.get('emergency') else ''}  {status}: {count}/{u['threshold']}"
                         f"{f'  due {due}' if due else ''}\n    decide ({verbs}): hallmark approve --key KEY.pem "
                         f"--upgrade {u['upgradeId']} --decision {verbs.split(' | ')[0]}")
    for s in cli_api.pages(f"{base}/settlements?status=Pending", token):
        approval = s["approval"]
        if who in approval.get("approvers", []):
            continue
        shares = ", ".join(f"{p['party']} {p['bps'] / 100:g}%" for p in s["plan"].get("shares", []))
        lines.append(f"settlement {s['settlementId']}  {shares}  Pending: {approval['approvals']}/"
                     f"{approval['threshold']}\n    decide (approve | reject): hallmark approve --key KEY.pem "
                     f"--settlement {s['settlementId']}")
    return lines


def inbox_command(
    api: str = API,
    token: str = typer.Option(..., "--token", envvar=cli_api.TOKEN_ENV, help="your bearer token (role approver; sub = your approver id)"),
    approver_id: str = typer.Option("", "--approver-id", help="defaults to the token's sub"),
) -> None:
    """What waits for your decision: pending upgrades and settlements, emergency upgrades to ratify."""
    def run() -> None:
        who = approver_id or cli_api.token_sub(token)
        lines = inbox_items(api, token, who)
        print(f"{len(lines)} item(s) waiting for {who}" + (":" if lines else ""))
        for line in lines:
            print(line)

    cli_api.run_cli(run)


def packages_command(
    name: str = typer.Option(None, "--name", help="only this package name"),
    status: str = typer.Option(None, "--status", help="only this status (Published, Rejected, AwaitingApproval, ...)"),
    submitter: str = typer.Option(None, "--submitter", help="only packages this subject submitted"),
    limit: int = typer.Option(50, "--limit", help="at most this many (newest first)"),
    api: str = API,
    token: str = typer.Option(..., "--token", envvar=cli_api.TOKEN_ENV, help="a bearer token"),
) -> None:
    """The packages you may read, newest first (GET /packages)."""
    from urllib.parse import urlencode

    def run() -> None:
        query = urlencode({k: v for k, v in (("name", name), ("status", status), ("submitter", submitter)) if v})
        url = f"{api.rstrip('/')}/packages" + (f"?{query}" if query else "")
        for p in cli_api.pages(url, token, limit):
            reasons = f"  ({'; '.join(map(str, p['reasons']))})" if p.get("reasons") else ""
            print(f"{p['packageId']}  {p['name']}@{p['version']}  {p['status']}  {p['impact']}  "
                  f"{p['submittedBy']}  {p['submittedAt']}{reasons}")

    cli_api.run_cli(run)


def report_command(
    package_id: str = typer.Argument(..., metavar="PACKAGE_ID"),
    html_out: Path = typer.Option(..., "--html", dir_okay=False, help="where to write the one-page HTML report"),
    api: str = API,
    token: str = typer.Option(..., "--token", envvar=cli_api.TOKEN_ENV, help="a bearer token (a reader of the package)"),
    wait: float = typer.Option(0.0, "--wait", help="seconds to wait for the release's audit events to be checkpointed"),
) -> None:
    """A one-page release report: validations with reasons, manifest digest, approvals, ceremony
    tier and the audit proof status (the release bundle checked offline with GET /keys)."""
    import time

    from hallmark_tools.report import gather, render_html

    def run() -> None:
        deadline = time.monotonic() + wait
        report = gather(api, token, package_id)
        while report.get("auditPending") and time.monotonic() < deadline:
            time.sleep(1.0)
            report = gather(api, token, package_id)
        html_out.write_text(render_html(report), encoding="utf-8")
        checks = report["auditChecks"]
        failed = "; ".join(f"{c['name']}: {c['detail']}" for c in checks if not c["ok"])
        audit = (f"audit proofs {f'FAILED ({failed})' if failed else 'verified'}" if checks
                 else f"audit proofs not checked: {report['auditError']}")
        print(f"wrote {html_out}: {report['package']['status']}; {audit}")
        if report.get("auditPending"):
            print(f"note: {report['auditPending']}")

    cli_api.run_cli(run)
