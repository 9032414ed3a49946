"""Chaos without loss (issue 25, item 4, the release part): the release flow on a local cloud
whose asynchronous paths fail, time out late, deliver twice, throttle tasks and throttle DynamoDB
and KMS (``localcloud.chaos``), at rate 0.1 with three seeds. Every package ends in the state it
ends in without faults, its audit events are exactly those of a fault-free run (none lost, none
twice), the chain verifies, and whatever was dead-lettered is redriven to the same end state."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from hallmark.audit.replay import verify_export
from hallmark_tools import samples
from hallmark_tools.driver import Driver
from hallmark_tools.export import export_keys
from hallmark_tools.localcloud.chaos import Chaos
from hallmark_tools.localcloud.cloud import LocalCloud
from hallmark_tools.ops import redrive
from hallmark_tools.topology import TOPOLOGY, env_name

RATE = 0.1
BASELINE: dict[str, Counter[str]] = {}
CASES = (("clean", "Published"), ("secret", "Rejected"))


def _events(subject: str) -> list[dict[str, Any]]:
    from hallmark.adapters.runtime import audit_log

    lines, _ = audit_log().export("release")
    return [e for e in map(json.loads, lines) if e["subject"] == subject]


def _redrive_all(cloud: LocalCloud) -> int:
    sqs, moved = cloud.client("sqs"), 0
    for q in TOPOLOGY.queues:
        moved += redrive(sqs, cloud.resources[env_name("queue", q.dlq_name)], cloud.resources[env_name("queue", q.name)])
    return moved


@pytest.mark.parametrize("seed", [None, 1, 2, 3], ids=["no-faults", "seed1", "seed2", "seed3"])
def test_the_release_flow_under_chaos_loses_nothing_and_doubles_nothing(seed: int | None, tmp_path: Path) -> None:
    chaos = Chaos(seed, RATE) if seed is not None else None
    with LocalCloud(chaos=chaos) as cloud:
        driver = Driver(cloud)
        ids = {kind: driver.submit(samples.variant(kind, f"chaos-{kind}"), name=f"chaos-{kind}")
               for kind, _ in CASES}
        for kind, status in CASES:
            assert driver.wait_package(ids[kind], timeout=180)["status"] == status, kind
        cloud.wait_idle(timeout=60)
        for _ in range(3):  # a dead letter goes back to its queue and ends where it would have
            if not _redrive_all(cloud):
                break
            cloud.wait_idle(timeout=60)
        for kind, status in CASES:
            assert driver.package(ids[kind])["status"] == status
        from hallmark.adapters.runtime import audit_log

        log = audit_log()
        log.checkpoint_now("release")
        lines, checkpoints = log.export("release")
        pem = export_keys(tmp_path / "keys", cloud.client("kms"))["audit"].read_bytes()
        report = verify_export(lines, checkpoints, pem)
        assert report.ok, report
        events = [json.loads(e) for e in lines]
        assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
        assert len({e["id"] for e in events}) == len(events), "an audit event id appears twice"
        for kind, _ in CASES:
            counts = Counter(e["type"] for e in _events(ids[kind]))
            if chaos is None:
                BASELINE[kind] = counts
            else:
                assert counts == BASELINE[kind], (kind, dict(chaos.counts))
    if chaos is not None:
        print(f"chaos seed {seed} rate {RATE}: injected {dict(sorted(chaos.counts.items()))}")
        assert sum(chaos.counts.values()) > 0, "the chaos run injected nothing"
