"""A producer burst on the local cloud (issue 25, item 5): ``--events`` EnrichedEvents (default
20,000), ``--duplicates`` of them (default 10 %) repeating an earlier event's ``content_hash``, put
on the hallmark bus by one client as fast as it can (PutEvents, ten a call, no pacing), through the
``enriched-events`` rule, the ``scoring_events`` queue and ``scoring_ingest``.

Checked: every distinct event is in the open batch exactly once (read back from S3 by event id),
> 99 % of the duplicates dropped, nothing rejected or dead-lettered. Reported: the producer's put
rate, the sustained end-to-end rate (first put to last event ingested), and the floor measured in
the same run: the ingest handler alone, invoked in-process on the same number of ready-made SQS
batches (``--floor-events``, fresh content hashes), without the bus or the queue. The ratio
end-to-end / floor says what the bus and the queue cost on top of the handler's own work.

    python benchmarks/producer_burst.py [--events 20000] [--duplicates 0.1] [--floor-events 2000]

The last line is ``RESULT events=.. duplicates=.. put_rps=.. sustained_rps=.. floor_rps=.. ratio=..
ingested_once=.. duplicates_dropped=.. dead_letters=.. problems=..``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hallmark_tools.localcloud import shapes
from hallmark_tools.localcloud.cloud import REGION, LocalCloud
from hallmark_tools.scenarios.burst import BURST_ENV, burst_events, run_burst
from hallmark_tools.scenarios.scoring import PRODUCER


def ingest_floor(cloud: LocalCloud, count: int) -> float:
    """Events per second through ``scoring_ingest`` alone, ten a batch, as the pump would call it."""
    events, _ = burst_events(count, duplicate_share=0.0, seed=2525)
    arn = cloud.arns[("queue", "scoring_events")]
    batches = []
    for start in range(0, len(events), 10):
        records = []
        for d in events[start:start + 10]:
            body = json.dumps({"version": "0", "id": str(uuid.uuid4()), "detail-type": "EnrichedEvent",
                               "source": PRODUCER, "account": shapes.ACCOUNT, "time": "2026-12-03T00:00:00Z",
                               "region": REGION, "resources": [], "detail": d})
            records.append(shapes.sqs_record({"MessageId": str(uuid.uuid4()), "ReceiptHandle": "r", "Body": body},
                                             arn, REGION))
        batches.append({"Records": records})
    started = time.perf_counter()
    for event in batches:
        result = cloud.invoke("scoring_ingest", event)
        assert not result["batchItemFailures"], result
    return len(events) / (time.perf_counter() - started)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=20_000)
    ap.add_argument("--duplicates", type=float, default=0.1)
    ap.add_argument("--floor-events", type=int, default=2_000)
    args = ap.parse_args()
    events, dups = burst_events(args.events, args.duplicates)
    with contextlib.redirect_stdout(io.StringIO()), LocalCloud(env=BURST_ENV) as cloud:  # handler logs
        result = run_burst(cloud, events, dups)
        floor = ingest_floor(cloud, args.floor_events)
    problems = result.problems(args.events - dups)
    print(f"{args.events} events ({dups} duplicates) put in {result.put_s:.1f}s ({result.put_rate:.0f}/s), "
          f"all ingested after {result.ingest_s:.1f}s ({result.ingest_rate:.0f}/s sustained); "
          f"the ingest handler alone: {floor:.0f}/s")
    for p in problems:
        print("PROBLEM", p)
    print(f"RESULT events={args.events} duplicates={dups} put_rps={result.put_rate:.1f} "
          f"sustained_rps={result.ingest_rate:.1f} floor_rps={floor:.1f} ratio={result.ingest_rate / floor:.3f} "
          f"ingested_once={int(result.accepted == result.distinct_in_batch == args.events - dups)} "
          f"duplicates_dropped={result.duplicates_dropped} dead_letters={result.dead_letters} problems={len(problems)}")
    if problems:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
