"""Ingest throughput: the scoring ingest's domain path against the orjson-parse floor, one core.

The bodies are what the ``scoring_events`` queue delivers: EventBridge events whose ``detail`` is an
EnrichedEvent with a 768-number embedding (``gpu_batch.sample_events``), ``--dup`` of them repeating
an earlier event's ``content_hash`` (another producer's sighting) and ``--bad`` of them invalid (a
rotating set of field errors). The path, per SQS batch of ``--records`` (as the handler runs it):
parse and validate each body against the producers' JSON Schema and the strict model
(``Ingestor.check``), claim the accepted ones' content hashes in one call (``dedupe_all`` on the
in-memory store: the DynamoDB round trip is not CPU), and join the accepted lines into the chunk the
intake writes. The floor: ``orjson.loads`` of the same bodies and nothing else. Both are timed with
``time.process_time`` (this process's CPU), best of ``--repeat`` runs of each, interleaved.

The last line is exactly
``RESULT ingest_eps=<events/s> orjson_parse_eps=<events/s> ratio=<ingest/floor> events=<n> accepted=<n> duplicates=<n> rejected=<n>``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from gpu_batch.sample_events import make_event

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.fakes

from hallmark.scoring.ingest import Accepted, Duplicate, EventValidator, Ingestor
from tests.fakes.scoring import InMemoryDedupe

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = json.loads((ROOT / "events" / "schemas" / "EnrichedEvent.json").read_text())

BAD: list[tuple[str, Any]] = [("domain", "finance"), ("timestamp", "1763800000000"), ("source", "Bad-Source"),
                              ("event_id", "not-a-uuid")]


def bodies(n: int, dup: float, bad: float, seed: int = 7) -> list[str]:
    rng = np.random.default_rng(seed)
    out: list[str] = []
    hashes: list[str] = []
    for i in range(n):
        ev = make_event(rng, domain="crypto" if i % 2 else "ai", source="solana_mempool" if i % 2 else "arxiv")
        u = rng.random()
        if u < bad:
            field, value = BAD[i % len(BAD)]
            ev[field] = value
        elif u < bad + dup and hashes:
            ev["metadata"]["content_hash"] = hashes[int(rng.integers(len(hashes)))]
        hashes.append(ev["metadata"]["content_hash"])
        out.append(json.dumps({"version": "0", "id": f"m-{i}", "detail-type": "EnrichedEvent",
                               "source": "com.example.enricher", "account": "123456789012",
                               "time": "2026-11-22T08:00:00Z", "region": "us-east-1", "resources": [],
                               "detail": ev}))
    return out


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.process_time()
    result = fn()
    return time.process_time() - t0, result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=2000)
    ap.add_argument("--dup", type=float, default=0.10)
    ap.add_argument("--bad", type=float, default=0.01)
    ap.add_argument("--records", type=int, default=10, help="records per SQS batch (the trigger's batch size)")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    raw = bodies(args.events, args.dup, args.bad)
    validator = EventValidator(SCHEMA)

    def floor() -> int:
        return sum(1 for b in raw if orjson.loads(b) is not None)

    def path() -> tuple[int, int, int, int]:
        ingestor = Ingestor(validator, InMemoryDedupe())  # a fresh dedupe table per run
        accepted = duplicates = rejected = size = 0
        for start in range(0, len(raw), args.records):
            valid: list[Accepted] = []
            for b in raw[start:start + args.records]:
                outcome = ingestor.check(b)
                if isinstance(outcome, Accepted):
                    valid.append(outcome)
                else:
                    rejected += 1
            lines = []
            for o in ingestor.dedupe_all(valid, 1_000):
                if isinstance(o, Duplicate):
                    duplicates += 1
                else:
                    lines.append(o.line)
            if lines:
                size += len(("\n".join(lines) + "\n").encode("utf-8"))
                accepted += len(lines)
        return accepted, duplicates, rejected, size

    t_floor = t_path = float("inf")
    for _ in range(args.repeat):  # interleaved, so a busy spell of the machine hits both alike
        t_floor = min(t_floor, timed(floor)[0])
        t, (accepted, duplicates, rejected, size) = timed(path)
        t_path = min(t_path, t)
    n = len(raw)
    floor_eps, path_eps = n / t_floor, n / t_path
    print(f"{n} bodies ({sum(map(len, raw)) / n:.0f} bytes each): {accepted} accepted, {duplicates} duplicates, "
          f"{rejected} rejected; {size} bytes of batch lines")
    print(f"orjson.loads only : {floor_eps:10,.0f} events/s  ({t_floor * 1e6 / n:.1f} us each)")
    print(f"ingest domain path: {path_eps:10,.0f} events/s  ({t_path * 1e6 / n:.1f} us each)")
    print(f"RESULT ingest_eps={path_eps:.0f} orjson_parse_eps={floor_eps:.0f} ratio={path_eps / floor_eps:.3f} "
          f"events={n} accepted={accepted} duplicates={duplicates} rejected={rejected}")


if __name__ == "__main__":
    main()
