"""Chaos without loss (issue 25, item 4): the demo scenario on a local cloud whose asynchronous
paths misbehave (``localcloud.chaos``), then the dead letters redriven and the invariants checked.

:data:`CHAOS_STEPS` is the scenario reduced to what each flow needs (release, governance,
ceremony, market, scoring, audit), for the tests; ``hallmark demo --chaos SEED`` runs the whole
one (:data:`DEMO_STEPS`). :func:`settle` lets the cloud go idle and redrives every dead-letter queue to its source until
none holds anything; :func:`check_invariants` then says, each with its evidence:

- ``packages terminal``: every package is Published, Rejected or RolledBack; every ceremony
  Completed or Lapsed; every scoring batch Routed or Failed;
- ``audit chains``: per chain, seq is 1..n, no event id twice, no event written twice (the same
  type, subject and data), and the exported chain verifies against a fresh signed checkpoint;
- ``ledger balances``: per currency the balances sum to zero, and each account's balance is the
  sum of the postings of the transactions recorded on it;
- ``no order delivered or paid twice``: per order at most one OrderPlaced and one DeliveryIssued,
  per transaction one LedgerPosted, per settlement one PayoutPosted, per webhook one delivery;
- ``dead letters redriven``: every dead-letter queue is empty afterwards.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hallmark_tools.scenarios import STEPS, ceremony, governance, market, release, scoring
from hallmark_tools.scenarios.audit import step_export
from hallmark_tools.scenarios.base import DemoContext, Step
from hallmark_tools.topology import env_name

if TYPE_CHECKING:
    from hallmark_tools.localcloud.cloud import LocalCloud

PACKAGE_TERMINAL = ("Published", "Rejected", "RolledBack")
BATCH_TERMINAL = ("Routed", "Failed")
ONCE_PER_SUBJECT = {"market": ("OrderPlaced", "DeliveryIssued", "LedgerPosted", "PayoutPosted", "SettlementPlanned"),
                    "scoring": ("WebhookDelivered", "BatchScored"),
                    "governance": ("UpgradeApplied", "UpgradeRolledBack"),
                    "release": ("PackagePublished", "PackageRejected", "ManifestSigned")}


def _scoring_events(ctx: DemoContext, count: int, *, batch_max: int) -> tuple[scoring.Synth, list[dict[str, Any]]]:
    """The corpus seeded, batches sealed at ``batch_max`` events; ``count`` events, three instant."""
    synth = scoring.Synth()
    scoring.seed_corpus(ctx.cloud, synth.corpus())
    ctx.driver.ok("PUT", "/scoring/config", "superadmin",
                  {"batchMaxEvents": batch_max, "batchMaxAgeSeconds": 3600, "gpuThreshold": 1_000_000})
    events = synth.mix(count)
    events[:3] = [synth.event("instant") for _ in range(3)]
    return synth, events


def step_small_ingest(ctx: DemoContext) -> dict[str, Any]:
    """The scoring ingest, small: 40 events (three instant), one duplicate, one invalid, one batch."""
    synth, events = _scoring_events(ctx, 40, batch_max=500)
    dup = dict(events[5], event_id="1b0e0c4e-6f1a-4c55-9d39-25c2a5d4e111")
    bad = scoring.invalid_events(synth)["domain"]
    scoring.put_events(ctx.cloud, [*events, dup, bad])
    scoring.wait_ingested(ctx.cloud)
    sealed = scoring.flush(ctx.driver)
    batches = [scoring.wait_batch(ctx.driver, s["batchId"]) for s in sealed]
    assert batches and all(b["status"] == "Routed" for b in batches), batches
    return {"batches": [{"batchId": b["batchId"], "events": b["events"], "status": b["status"]} for b in batches]}


def step_ingest_at_least_once(ctx: DemoContext) -> dict[str, Any]:
    """The bulk ingest (``scoring.step_ingest``) without its exact batch sizes, which hold only
    when every SQS message is delivered once: a redelivered event is accepted again (it claimed
    its own content hash) and may be in a batch twice; the router dedupes on ``event_id``."""
    _, events = _scoring_events(ctx, 500, batch_max=250)
    scoring.put_events(ctx.cloud, events)
    scoring.wait_ingested(ctx.cloud)
    scoring.flush(ctx.driver)
    listed = ctx.driver.ok("GET", "/scoring/batches?limit=50", "auditor")["items"]
    batches = [scoring.wait_batch(ctx.driver, d["batchId"], timeout=300) for d in listed]
    assert batches and all(d["status"] == "Routed" for d in batches), [d["status"] for d in batches]
    total = sum(d["events"] for d in batches)
    assert total >= len(events), (total, len(events))
    ctx.facts["scoring_batches"] = batches
    return {"sent": len(events), "inBatches": total, "batches": len(batches)}


CHAOS_STEPS: list[tuple[str, Step]] = [
    *[s for s in release.STEPS if s[1] is release.step_health or s[1] is release.step_release_clean],
    ("Release: leaked AWS key -> Rejected", release._rejected("secret")),
    *governance.STEPS,
    *[s for s in ceremony.STEPS if s[1] is not ceremony.step_tampered],
    *[s for s in market.STEPS if s[1] is not market.step_refusals],
    *[s for s in scoring.STEPS if s[1] in (scoring.step_model, scoring.step_subscribe)],
    ("Scoring: 40 events on the bus -> one batch scored and routed", step_small_ingest),
    *[s for s in scoring.STEPS if s[1] is scoring.step_webhook],
    ("Audit: checkpoint, export and verify every chain offline", step_export),
]


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


def redrive_all(cloud: LocalCloud) -> int:
    """Every dead-letter queue's messages back to their source queue; how many were moved."""
    from hallmark_tools.ops import redrive

    sqs, moved = cloud.client("sqs"), 0
    for q in cloud.topology.queues:
        moved += redrive(sqs, cloud.resources[env_name("queue", q.dlq_name)], cloud.resources[env_name("queue", q.name)])
    return moved


def dead_letters(cloud: LocalCloud) -> dict[str, int]:
    return {q.dlq_name: n for q in cloud.topology.queues if (n := cloud.queue_depth(q.dlq_name))}


def settle(cloud: LocalCloud, rounds: int = 5, timeout: float = 120.0) -> int:
    """Idle, then redrive what was dead-lettered, until nothing is; how many messages were redriven."""
    cloud.wait_idle(timeout=timeout)
    total = 0
    for _ in range(rounds):
        moved = redrive_all(cloud)
        if not moved:
            break
        total += moved
        cloud.wait_idle(timeout=timeout)
    return total


def _docs(cloud: LocalCloud, kind: str) -> list[dict[str, Any]]:
    """The documents of ``kind`` in the state table (their status where the item keeps it)."""
    from boto3.dynamodb.conditions import Attr

    out = []
    for item in _scan_all(_table(cloud, "state"), FilterExpression=Attr("kind").eq(kind)):
        doc = json.loads(item["doc"])
        doc.setdefault("status", item.get("status"))
        out.append(doc)
    return out


def _table(cloud: LocalCloud, name: str) -> Any:
    import boto3

    return boto3.resource("dynamodb", region_name="us-east-1").Table(cloud.resources[env_name("table", name)])


def _scan_all(table: Any, **kwargs: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    page: dict[str, Any] = {"LastEvaluatedKey": None}
    while "LastEvaluatedKey" in page:
        start = {"ExclusiveStartKey": page["LastEvaluatedKey"]} if page["LastEvaluatedKey"] else {}
        page = table.scan(**kwargs, **start)
        items += page["Items"]
    return items


def _terminal(cloud: LocalCloud) -> Check:
    bad = [f"package {d.get('packageId')} {d.get('status')}" for d in _docs(cloud, "package")
           if d.get("status") not in PACKAGE_TERMINAL]
    bad += [f"ceremony {d.get('ceremonyId')} {d.get('status')}" for d in _docs(cloud, "ceremony")
            if d.get("status") not in ceremony.TERMINAL]
    bad += [f"batch {d.get('batchId')} {d.get('status')}" for d in _docs(cloud, "scoring-batch")
            if d.get("status") not in BATCH_TERMINAL]
    counts = Counter(d.get("status") for d in _docs(cloud, "package"))
    return Check("every package, ceremony and batch terminal", not bad, "; ".join(bad[:5]) or str(dict(counts)))


def _audit(cloud: LocalCloud, audit_pem: bytes) -> tuple[Check, Check]:
    from hallmark.adapters.runtime import audit_chains as chains
    from hallmark.adapters.runtime import audit_log
    from hallmark.audit.replay import verify_export

    log = audit_log()
    bad: list[str] = []
    twice: list[str] = []
    sizes: dict[str, int] = {}
    for chain in chains():
        log.checkpoint_now(chain)
        lines, checkpoints = log.export(chain)
        events = [json.loads(line) for line in lines]
        sizes[chain] = len(events)
        report = verify_export(lines, checkpoints, audit_pem)
        if not report.ok:
            bad.append(f"{chain}: {report.reason} at {report.first_bad_seq}")
        if [e["seq"] for e in events] != list(range(1, len(events) + 1)):
            bad.append(f"{chain}: seq not 1..{len(events)}")
        if len({e["id"] for e in events}) != len(events):
            bad.append(f"{chain}: an event id appears twice")
        same = Counter((e["type"], e["subject"], json.dumps(e["data"], sort_keys=True)) for e in events)
        twice += [f"{chain}: {t} {s} x{n}" for (t, s, _), n in same.items() if n > 1]
        once = Counter((e["type"], e["subject"]) for e in events if e["type"] in ONCE_PER_SUBJECT.get(chain, ()))
        twice += [f"{chain}: {t} {s} x{n}" for (t, s), n in once.items() if n > 1]
    return (Check("every audit chain verifies (seq 1..n, ids unique, checkpoint signed)", not bad,
                  "; ".join(bad) or json.dumps(sizes)),
            Check("no audit entry written twice; no order, delivery, payout or webhook twice", not twice,
                  "; ".join(twice[:5]) or "none twice"))


def _ledger(cloud: LocalCloud) -> Check:
    from hallmark.market.ledger import Transaction

    items = _scan_all(_table(cloud, "ledger"))
    balances = {i["accountId"]: (i["currency"], int(i["balance"])) for i in items if str(i["pk"]).startswith("ACCOUNT#")}
    replayed: Counter[str] = Counter()
    for i in items:
        if str(i["pk"]).startswith("TX#"):
            for p in Transaction.model_validate_json(i["tx"]).postings:
                replayed[p.account] += p.amount_minor
    totals: Counter[str] = Counter()
    for currency, balance in balances.values():
        totals[currency] += balance
    bad = [f"{c} sums to {t}" for c, t in totals.items() if t]
    bad += [f"{a}: balance {b} != postings {replayed[a]}" for a, (_, b) in balances.items() if b != replayed[a]]
    txs = sum(1 for i in items if str(i["pk"]).startswith("TX#"))
    return Check("the ledger balances (sum zero per currency, balances = postings)", not bad,
                 "; ".join(bad) or f"{len(balances)} accounts, {txs} transactions")


def check_invariants(cloud: LocalCloud) -> list[Check]:
    import tempfile
    from pathlib import Path

    from hallmark_tools.export import export_keys

    with tempfile.TemporaryDirectory() as tmp:
        pem = export_keys(Path(tmp), cloud.client("kms"))["audit"].read_bytes()
    left = dead_letters(cloud)
    return [_terminal(cloud), *_audit(cloud, pem), _ledger(cloud),
            Check("every dead letter redriven (dead-letter queues empty)", not left, json.dumps(left) or "{}")]


def fingerprint(cloud: LocalCloud) -> dict[str, Any]:
    """What a fault-free run and a chaos run of the same scenario must share: per chain the count
    of each audit event type, and the statuses of the packages (by name and version)."""
    from hallmark.adapters.runtime import audit_chains as chains
    from hallmark.adapters.runtime import audit_log

    log = audit_log()
    types = {c: dict(Counter(json.loads(line)["type"] for line in log.export(c)[0])) for c in chains()}
    packages = sorted(f"{d.get('name')}@{d.get('version')}={d.get('status')}" for d in _docs(cloud, "package"))
    return {"audit": types, "packages": packages}


def step_settle(ctx: DemoContext) -> dict[str, Any]:
    """Redrive the dead letters while every consumer is still up (the next step stops the
    webhook receiver: a delivery redriven after that would fail again, for that reason)."""
    return {"redriven": settle(ctx.cloud)}


DEMO_STEPS: list[tuple[str, Step]] = []
"""The whole demo scenario as ``hallmark demo --chaos`` runs it: the bulk ingest without its
exact batch sizes (:func:`step_ingest_at_least_once`), the dead letters redriven before the
webhook receiver stops (:func:`step_settle`)."""
for _title, _step in STEPS:
    if _step is scoring.step_tampered:
        DEMO_STEPS.append(("Chaos: redrive the dead letters while every consumer is up", step_settle))
    DEMO_STEPS.append(("Scoring: 500 events on the bus -> batches scored and routed (at least once)",
                       step_ingest_at_least_once) if _step is scoring.step_ingest else (_title, _step))
