"""The latency path: one batch scored in the Lambda, on the CPU provider.

It does what the Batch job (``gpu_batch.entrypoint.run_job``) does, with the same inputs, outputs
and model, so the two runners are interchangeable for the state machine: read the batch (JSON
Lines of EnrichedEvents) and the corpus from the bucket, refuse a model whose sha256 is not the
signed digest (``EviRunner``), write the envelopes to ``output_key`` and the corpus, updated with
the batch's embeddings, back to ``corpus_key``. (The job is not in the Lambda bundle, which holds
only ``functions/<name>`` and the layer, hence this module.)
"""

from __future__ import annotations

import io
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from pydantic import ValidationError

from hallmark.scoring.features import ScoringConfig, compute_features, embedding_matrix
from hallmark.scoring.ports import BlobStore
from hallmark.scoring.runner import CPU, EviRunner, normalise_corpus
from hallmark.scoring.schema import EMBEDDING_DIM, EnrichedEvent

DEFAULT_CORPUS_KEY = "corpus/current.npy"
DEFAULT_CORPUS_MAX = 1_000_000
NPY_HEADER_BYTES = 4096


@dataclass
class CpuResult:
    output_key: str
    model_digest: str
    provider: str
    events: int
    scored: int
    rejected: int
    bands: dict[str, int] = field(default_factory=dict)
    corpus_rows_before: int = 0
    corpus_rows_after: int = 0
    seconds: float = 0.0

    def summary(self) -> dict[str, Any]:
        return {"runner": "cpu-lambda", "outputKey": self.output_key, "modelDigest": self.model_digest,
                "provider": self.provider, "events": self.events, "scored": self.scored, "rejected": self.rejected,
                "bands": self.bands, "corpusRowsBefore": self.corpus_rows_before,
                "corpusRowsAfter": self.corpus_rows_after, "seconds": round(self.seconds, 3)}


def parse_lines(data: bytes) -> tuple[list[EnrichedEvent], int]:
    events: list[EnrichedEvent] = []
    bad = 0
    for line in data.decode("utf-8").splitlines():
        if not line.strip():
            continue
        try:
            events.append(EnrichedEvent.model_validate_json(line))
        except ValidationError:
            bad += 1
    return events, bad


def load_corpus(store: BlobStore, key: str) -> npt.NDArray[np.float32]:
    try:
        raw = store.get(key)
    except KeyError:
        return np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
    arr = np.load(io.BytesIO(raw), allow_pickle=False)
    if arr.ndim != 2 or arr.shape[1] != EMBEDDING_DIM:
        raise ValueError(f"corpus {key!r} must be [N, {EMBEDDING_DIM}], got {arr.shape}")
    return np.ascontiguousarray(arr, dtype=np.float32)


def dump_npy(arr: npt.NDArray[Any]) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    return buf.getvalue()


def npy_rows(header: bytes) -> int:
    """Rows of a 2-D .npy array from the first bytes of the file (its header)."""
    fp = io.BytesIO(header)
    major, _minor = np.lib.format.read_magic(fp)
    if major == 1:
        shape, _order, _dtype = np.lib.format.read_array_header_1_0(fp)
    else:
        shape, _order, _dtype = np.lib.format.read_array_header_2_0(fp)
    return int(shape[0]) if shape else 0


def score_batch(
    store: BlobStore,
    *,
    batch_key: str,
    model_key: str,
    model_digest: str,
    output_key: str,
    corpus_key: str = DEFAULT_CORPUS_KEY,
    corpus_max: int = DEFAULT_CORPUS_MAX,
    config: ScoringConfig | None = None,
    now_ms: int | None = None,
) -> CpuResult:
    started = time.perf_counter()
    cfg = config or ScoringConfig()
    with tempfile.TemporaryDirectory(prefix="evi-model-") as tmp:
        path = Path(tmp) / "model.onnx"
        path.write_bytes(store.get(model_key))
        runner = EviRunner(path, model_digest, [CPU], config=cfg)  # refuses a file that is not the signed one

    events, bad = parse_lines(store.get(batch_key))
    corpus = load_corpus(store, corpus_key)
    now = int(time.time() * 1000) if now_ms is None else now_ms
    feats = [compute_features(e, now, cfg) for e in events]
    queries = embedding_matrix(events)
    envelopes = runner.score(feats, queries, runner.prepare_corpus(corpus, normalized=True))
    store.put(output_key, "".join(env.model_dump_json() + "\n" for env in envelopes).encode("utf-8"))

    with_embedding = queries[[f.has_embedding for f in feats]] if feats else queries
    merged = np.concatenate([corpus, normalise_corpus(with_embedding)], axis=0) if len(with_embedding) else corpus
    updated = np.ascontiguousarray(merged[max(0, merged.shape[0] - corpus_max):])
    store.put(corpus_key, dump_npy(updated))
    return CpuResult(
        output_key=output_key, model_digest=runner.digest, provider=runner.providers[0], events=len(events) + bad,
        scored=len(envelopes), rejected=bad, bands=dict(Counter(env.band for env in envelopes)),
        corpus_rows_before=int(corpus.shape[0]), corpus_rows_after=int(updated.shape[0]),
        seconds=time.perf_counter() - started,
    )
