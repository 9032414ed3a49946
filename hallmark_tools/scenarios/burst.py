"""A producer burst (issue 25, item 5): EnrichedEvents put on the bus as fast as one client can,
a share of them duplicates by ``content_hash`` (another ``event_id``), no pacing.

What must hold afterwards: every distinct event is in the open batch exactly once (its chunks in
S3 read back, by ``event_id``), the duplicates are counted as such (not appended), nothing was
rejected or dead-lettered. The batch thresholds are raised for the burst (``BURST_ENV``) so that
what is measured is ingestion, not the scoring of the sealed batches.
"""

from __future__ import annotations

import json
import random
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hallmark_tools.scenarios.scoring import Synth, put_events
from hallmark_tools.topology import env_name

if TYPE_CHECKING:
    from hallmark_tools.localcloud.cloud import LocalCloud

BURST_ENV = {"SCORING_BATCH_MAX_EVENTS": "1000000", "SCORING_BATCH_MAX_AGE_S": "86400"}


def burst_events(total: int, duplicate_share: float = 0.1, seed: int = 25) -> tuple[list[dict[str, Any]], int]:
    """``total`` events of which ``round(total * duplicate_share)`` repeat an earlier event's
    content hash under a new event id, shuffled; returns (events, number of duplicates)."""
    dups = round(total * duplicate_share)
    synth = Synth(seed=seed)
    unique = synth.mix(total - dups)
    rng = random.Random(seed)
    copies = [dict(rng.choice(unique), event_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)))
              for _ in range(dups)]
    events = unique + copies
    rng.shuffle(events)
    return events, dups


@dataclass
class BurstResult:
    sent: int
    duplicates_sent: int
    put_s: float  # the producer's time to put everything on the bus
    ingest_s: float  # from the first put until every event was ingested or dropped
    accepted: int  # events in the open batch
    distinct_in_batch: int  # distinct event ids among them
    duplicates_dropped: int
    rejected: int
    dead_letters: int
    rejects_queued: int

    @property
    def put_rate(self) -> float:
        return self.sent / self.put_s

    @property
    def ingest_rate(self) -> float:
        return self.sent / self.ingest_s

    def problems(self, unique: int) -> list[str]:
        """What breaks "all ingested exactly once, > 99 % of the duplicates dropped, nothing
        dead-lettered without a reason"; empty when the burst held."""
        out = []
        if self.accepted != unique or self.distinct_in_batch != unique:
            out.append(f"{self.accepted} events in the batch ({self.distinct_in_batch} distinct), expected {unique}")
        if self.duplicates_dropped < 0.99 * self.duplicates_sent:
            out.append(f"only {self.duplicates_dropped} of {self.duplicates_sent} duplicates dropped")
        if self.dead_letters or self.rejected or self.rejects_queued:
            out.append(f"{self.dead_letters} dead letters, {self.rejected} rejected, {self.rejects_queued} queued rejects")
        return out


def _depth(cloud: LocalCloud, queue: str) -> int:
    attrs = cloud.client("sqs").get_queue_attributes(
        QueueUrl=cloud.resources[env_name("queue", queue)],
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])


def run_burst(cloud: LocalCloud, events: list[dict[str, Any]], duplicates: int, timeout: float = 1800.0) -> BurstResult:
    """Put ``events`` unpaced (one client, ten per PutEvents call), wait until all are ingested."""
    from hallmark.adapters import runtime

    started = time.perf_counter()
    put_events(cloud, events, wave=None)
    put_s = time.perf_counter() - started
    intake = runtime.scoring_intake()
    deadline = time.monotonic() + timeout
    while True:
        batch = intake.open_batch()
        seen = batch.get("count", 0) + batch.get("duplicates", 0) + batch.get("rejected", 0)
        if seen >= len(events) and _depth(cloud, "scoring_events") == 0:
            break
        if time.monotonic() > deadline:
            raise TimeoutError(f"{seen} of {len(events)} events ingested after {timeout:.0f}s")
        time.sleep(0.05)
    ingest_s = time.perf_counter() - started
    cloud.wait_idle(timeout=120)
    batch = intake.open_batch()
    s3, bucket = cloud.client("s3"), cloud.resources[env_name("bucket", "scoring")]
    ids: Counter[str] = Counter()
    for chunk in batch.get("chunks", []):
        body = s3.get_object(Bucket=bucket, Key=chunk["key"])["Body"].read().decode()
        ids.update(json.loads(line)["event_id"] for line in body.splitlines() if line)
    return BurstResult(
        sent=len(events), duplicates_sent=duplicates, put_s=put_s, ingest_s=ingest_s,
        accepted=sum(ids.values()), distinct_in_batch=len(ids), duplicates_dropped=int(batch.get("duplicates", 0)),
        rejected=int(batch.get("rejected", 0)), dead_letters=_depth(cloud, "scoring_events_dlq"),
        rejects_queued=_depth(cloud, "scoring_rejects"))
