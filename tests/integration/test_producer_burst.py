"""An unpaced producer burst (issue 25, item 5): EnrichedEvents put on the bus as fast as one client
can, 10 % of them duplicates by content_hash, no pacing while the ingest queue fills. Every distinct
event is in the open batch exactly once, more than 99 % of the duplicates are dropped, nothing is
rejected or dead-lettered. (20,000 events: ``benchmarks/producer_burst.py``.)"""

from __future__ import annotations

import contextlib
import io

from hallmark_tools.localcloud.cloud import LocalCloud
from hallmark_tools.scenarios.burst import BURST_ENV, burst_events, run_burst

EVENTS = 1_000


def test_an_unpaced_burst_is_ingested_exactly_once() -> None:
    events, dups = burst_events(EVENTS, duplicate_share=0.1, seed=7)
    assert dups == EVENTS // 10
    assert len({e["metadata"]["content_hash"] for e in events}) == EVENTS - dups
    with contextlib.redirect_stdout(io.StringIO()), LocalCloud(env=BURST_ENV) as cloud:
        result = run_burst(cloud, events, dups, timeout=600)
    assert result.problems(EVENTS - dups) == []
    assert result.accepted == result.distinct_in_batch == EVENTS - dups
    assert result.duplicates_dropped == dups
    assert result.dead_letters == result.rejected == result.rejects_queued == 0
