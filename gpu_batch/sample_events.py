"""Synthetic EnrichedEvents for samples, local runs and tests (embeddings rounded to 4 decimals).

    python -m gpu_batch.sample_events events/samples     # rewrites the two sample files
"""

from __future__ import annotations

import json
import re
import sys
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from hallmark.scoring.schema import EMBEDDING_DIM

BASE_TS_MS = 1_763_800_000_000  # 2025-11-22T08:26:40Z


def embedding(rng: np.random.Generator, dim: int = EMBEDDING_DIM) -> list[float]:
    v = rng.standard_normal(dim)
    v /= np.linalg.norm(v)
    return [round(float(x), 4) for x in v]


def make_event(rng: np.random.Generator, *, domain: str = "crypto", source: str = "solana_mempool",
               timestamp_ms: int = BASE_TS_MS, with_embedding: bool = True,
               metrics: dict[str, float] | None = None) -> dict[str, Any]:
    """One valid EnrichedEvent as a JSON-ready dict, deterministic for a given generator state."""
    event_id = str(uuid.UUID(bytes=rng.bytes(16), version=4))
    content_hash = "sha256:" + rng.bytes(32).hex()
    payload: dict[str, Any] = {
        "raw": {"signature": rng.bytes(8).hex()},
        "extracted": {
            "entities": [{"type": "token", "id": "So1" + rng.bytes(4).hex()}],
            "metrics": metrics if metrics is not None else {"initial_liquidity_usd": 250_000.0, "holder_count": 120.0},
            "sentiment": 0.2,
        },
    }
    if with_embedding:
        payload["embeddings"] = embedding(rng)
    return {
        "event_id": event_id,
        "mission_id": None,
        "timestamp": timestamp_ms,
        "domain": domain,
        "source": source,
        "topic_hints": ["token_launch"] if domain == "crypto" else ["llm", "benchmark"],
        "payload": payload,
        "metadata": {"content_hash": content_hash, "language": "en", "processing_time_ms": 12},
    }


def to_json(event: dict[str, Any]) -> str:
    """Indented JSON with the embedding kept on one line."""
    text = json.dumps(event, indent=2)
    return re.sub(r"\[\s+(-?[0-9][^\[\]{}]*?)\s+\]", lambda m: "[" + re.sub(r",\s+", ", ", m.group(1)) + "]", text)


def write_samples(out_dir: Path) -> list[Path]:
    rng = np.random.default_rng(3)
    crypto = make_event(rng)
    ai = make_event(rng, domain="ai", source="arxiv", timestamp_ms=BASE_TS_MS - 3_600_000,
                    metrics={"has_code": 1.0, "reference_count": 64.0, "is_benchmark": 0.0, "cross_verified": 1.0})
    ai["payload"]["raw"] = {"arxiv_id": "2511.01234"}
    ai["payload"]["extracted"]["entities"] = [{"type": "paper", "id": "arXiv:2511.01234"}]
    paths = []
    for name, event in (("enriched_event.json", crypto), ("enriched_event_ai.json", ai)):
        path = out_dir / name
        path.write_text(to_json(event) + "\n")
        paths.append(path)
    return paths


if __name__ == "__main__":
    for p in write_samples(Path(sys.argv[1] if len(sys.argv) > 1 else "events/samples")):
        print(p)
