"""Chaos without loss over the whole demo scenario (issue 25, item 4): every flow (release,
governance, ceremony, market, scoring, audit; ``chaos_run.CHAOS_STEPS``) on a local cloud that
fails handlers, reports them timed out after they ran, delivers SQS messages and EventBridge events
twice, sends poison copies of SQS messages that end in a dead-letter queue, throttles Step Functions
tasks and DynamoDB/KMS calls, at rate 0.1, with three seeds.

Each run must pass every step, inject something of every kind it can, redrive whatever was
dead-lettered, and hold every invariant (``chaos_run.check_invariants``: everything terminal, every
chain verifies, nothing written twice, the ledger balances, nothing delivered or paid twice, the
dead-letter queues empty). The three runs must also agree with each other on the end state: the
same packages in the same states, the same count of each audit event type per chain (a lost or a
doubled entry in one run would differ; ``test_chaos.py`` compares the release flow with a fault-free
run)."""

from __future__ import annotations

import contextlib
import io
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from hallmark_tools.chaos_run import CHAOS_STEPS, fingerprint
from hallmark_tools.demo import run_demo
from hallmark_tools.localcloud.chaos import Chaos

RATE = 0.1
SEEDS = (11, 12, 13)
FINGERPRINTS: dict[int, dict[str, Any]] = {}
INJECTED: Counter[str] = Counter()


@pytest.mark.parametrize("seed", SEEDS)
def test_the_whole_scenario_under_chaos_loses_nothing(seed: int, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    import hallmark_tools.demo as demo

    chaos = Chaos(seed, RATE)
    captured: dict[str, Any] = {}
    original = demo._chaos_report

    def report(cloud: Any, c: Chaos, console: Console) -> dict[str, Any]:
        out = original(cloud, c, console)
        captured["fingerprint"] = fingerprint(cloud)
        return out

    monkeypatch.setattr(demo, "_chaos_report", report)
    with contextlib.redirect_stdout(io.StringIO()):
        summary = run_demo(tmp_path / "out", Console(file=io.StringIO()), steps=CHAOS_STEPS, chaos=chaos)
    failed = [s for s in summary["steps"] if not s["ok"]]
    assert not failed, failed
    assert len(summary["steps"]) == len(CHAOS_STEPS)
    report_ = summary["chaos"]
    assert report_["ok"], report_["invariants"]
    assert {c["name"] for c in report_["invariants"]} >= {
        "every package, ceremony and batch terminal", "the ledger balances (sum zero per currency, balances = postings)"}
    assert sum(chaos.counts.values()) >= 10, chaos.counts
    assert {"queue_error", "queue_duplicate", "aws_throttle"} <= set(chaos.counts), chaos.counts
    if chaos.counts["queue_dead_letter"]:  # poisoned copies went to a dead-letter queue, and back
        assert report_["redriven"] > 0, report_
    INJECTED.update(chaos.counts)
    if seed == SEEDS[-1]:
        assert INJECTED["queue_dead_letter"] > 0, INJECTED  # the redrive path ran in at least one seed
    FINGERPRINTS[seed] = captured["fingerprint"]
    for other, print_ in FINGERPRINTS.items():
        assert print_ == FINGERPRINTS[seed], (other, seed)
