"""The AWS Batch scoring job (the throughput path of design flow 5).

``run_job`` does the work and is what the tests call; ``main`` only reads the environment:

    BUCKET         the scoring bucket (or BLOB_DIR: a local directory standing in for it)
    BATCH_KEY      JSON Lines of EnrichedEvents written by the ingest Lambda
    MODEL_KEY      the EVI model file (evi_fp16.onnx on GPU instances, evi_fp32.onnx otherwise)
    MODEL_DIGEST   its sha256, taken by the state machine from the model's verified signed manifest
    CORPUS_KEY     reference corpus, .npy float32 [N, 768], unit rows (default corpus/current.npy)
    OUTPUT_KEY     where the envelopes go (default: scored/<batch file name>)
    CORPUS_MAX     rows kept in the corpus after the update (default 1,000,000)
    CHUNK_ROWS     corpus rows per model call (default: the runner's choice)
    SCORING_CONFIG a ScoringConfig as JSON (default: the design defaults)
    NOW_MS         scoring time (default: the clock), for replays

The job refuses a model whose digest differs from MODEL_DIGEST before it reads anything else. The
corpus is scored as it was before the batch; then the batch's embeddings are appended
(normalised) and only the most recent CORPUS_MAX rows are kept.
"""

from __future__ import annotations

import io
import json
import logging
import os
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from pydantic import ValidationError

from hallmark.scoring.features import (
    ScoringConfig,
    compute_features,
    embedding_matrix,
    topic_coverage,
)
from hallmark.scoring.ports import BlobStore
from hallmark.scoring.runner import EviRunner, normalise_corpus
from hallmark.scoring.schema import EMBEDDING_DIM, EnrichedEvent

log = logging.getLogger("hallmark.gpu_batch")

DEFAULT_CORPUS_KEY = "corpus/current.npy"
DEFAULT_CORPUS_MAX = 1_000_000


@dataclass(frozen=True)
class Rejected:
    line: int
    reason: str


@dataclass
class JobResult:
    batch_key: str
    output_key: str
    model_digest: str
    provider: str
    events: int
    scored: int
    rejected: list[Rejected] = field(default_factory=list)
    bands: dict[str, int] = field(default_factory=dict)
    corpus_rows_before: int = 0
    corpus_rows_after: int = 0
    seconds: float = 0.0

    def summary(self) -> dict[str, Any]:
        return {
            "batchKey": self.batch_key, "outputKey": self.output_key, "modelDigest": self.model_digest,
            "provider": self.provider, "events": self.events, "scored": self.scored,
            "rejected": len(self.rejected), "bands": self.bands, "corpusRowsBefore": self.corpus_rows_before,
            "corpusRowsAfter": self.corpus_rows_after, "seconds": round(self.seconds, 3),
        }


def parse_batch(data: bytes) -> tuple[list[EnrichedEvent], list[Rejected]]:
    """EnrichedEvents from JSON Lines; invalid lines are reported, not fatal."""
    events: list[EnrichedEvent] = []
    rejected: list[Rejected] = []
    for n, line in enumerate(data.decode("utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            events.append(EnrichedEvent.model_validate_json(line))
        except ValidationError as exc:
            rejected.append(Rejected(n, "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}"
                                                  for e in exc.errors()[:3])))
    return events, rejected


def load_corpus(store: BlobStore, key: str) -> npt.NDArray[np.float32]:
    """The stored corpus, or an empty one when there is none yet."""
    try:
        raw = store.get(key)
    except KeyError:
        return np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
    arr = np.load(io.BytesIO(raw), allow_pickle=False)
    if arr.ndim != 2 or arr.shape[1] != EMBEDDING_DIM:
        raise ValueError(f"corpus {key!r} must be [N, {EMBEDDING_DIM}], got {arr.shape}")
    return np.ascontiguousarray(arr, dtype=np.float32)


def update_corpus(corpus: npt.NDArray[np.float32], new_embeddings: npt.NDArray[np.float32],
                  max_rows: int) -> npt.NDArray[np.float32]:
    """Append the (normalised) new rows, keep the most recent ``max_rows``."""
    if max_rows < 0:
        raise ValueError("max_rows must be >= 0")
    merged = np.concatenate([corpus, normalise_corpus(new_embeddings)], axis=0) if len(new_embeddings) else corpus
    return np.ascontiguousarray(merged[max(0, merged.shape[0] - max_rows):])


def dump_npy(arr: npt.NDArray[Any]) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    return buf.getvalue()


def default_output_key(batch_key: str) -> str:
    name = batch_key.rsplit("/", 1)[-1]
    stem = name[: -len(".jsonl")] if name.endswith(".jsonl") else name
    return f"scored/{stem}.jsonl"


def run_job(
    *,
    store: BlobStore,
    batch_key: str,
    model_key: str,
    model_digest: str,
    corpus_key: str = DEFAULT_CORPUS_KEY,
    output_key: str | None = None,
    corpus_max: int = DEFAULT_CORPUS_MAX,
    config: ScoringConfig | None = None,
    coverage_by_topic: Mapping[str, float] | None = None,
    now_ms: int | None = None,
    providers: Sequence[str] | None = None,
    chunk_rows: int | None = None,
    update: bool = True,
) -> JobResult:
    """Score one batch: envelopes JSONL to ``output_key``, the updated corpus back to ``corpus_key``."""
    started = time.perf_counter()
    cfg = config or ScoringConfig()
    with tempfile.TemporaryDirectory(prefix="evi-model-") as tmp:
        model_path = Path(tmp) / "model.onnx"
        model_path.write_bytes(store.get(model_key))
        runner = EviRunner(model_path, model_digest, providers, config=cfg, chunk_rows=chunk_rows)

    events, rejected = parse_batch(store.get(batch_key))
    corpus = load_corpus(store, corpus_key)
    now = int(time.time() * 1000) if now_ms is None else now_ms
    coverage = coverage_by_topic or {}
    feats = [compute_features(e, now, cfg, topic_coverage(e.topic_hints, coverage)) for e in events]
    queries = embedding_matrix(events)
    prepared = runner.prepare_corpus(corpus, normalized=True)
    envelopes = runner.score(feats, queries, prepared)

    out_key = output_key or default_output_key(batch_key)
    store.put(out_key, "".join(env.model_dump_json() + "\n" for env in envelopes).encode("utf-8"))
    rows_after = corpus.shape[0]
    if update:
        with_embedding = queries[[f.has_embedding for f in feats]] if feats else queries
        new_corpus = update_corpus(corpus, with_embedding, corpus_max)
        store.put(corpus_key, dump_npy(new_corpus))
        rows_after = new_corpus.shape[0]
    result = JobResult(
        batch_key=batch_key, output_key=out_key, model_digest=runner.digest, provider=runner.providers[0],
        events=len(events) + len(rejected), scored=len(envelopes), rejected=rejected,
        bands=dict(Counter(env.band for env in envelopes)), corpus_rows_before=corpus.shape[0],
        corpus_rows_after=rows_after, seconds=time.perf_counter() - started,
    )
    log.info("batch scored %s", json.dumps(result.summary()))
    return result


class DirectoryBlobStore:
    """A local directory as a BlobStore (local runs of the job, and the local cloud)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).resolve()

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if self.root != path and self.root not in path.parents:
            raise KeyError(key)
        return path

    def get(self, key: str) -> bytes:
        path = self._path(key)
        if not path.is_file():
            raise KeyError(key)
        return path.read_bytes()

    def put(self, key: str, data: bytes) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(data)
        tmp.replace(path)


def _s3_store(bucket: str) -> BlobStore:
    # The S3 adapter lives in the layer's adapters (boto3 stays out of hallmark.scoring).
    from hallmark.adapters.s3 import S3BlobStore  # type: ignore[import-not-found,unused-ignore]

    store: BlobStore = S3BlobStore(bucket)
    return store


def main(env: Mapping[str, str] | None = None,
         store_factory: Callable[[Mapping[str, str]], BlobStore] | None = None) -> int:
    e = os.environ if env is None else env
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    if store_factory is not None:
        store = store_factory(e)
    elif e.get("BLOB_DIR"):
        store = DirectoryBlobStore(e["BLOB_DIR"])
    else:
        store = _s3_store(e["BUCKET"])
    config = ScoringConfig.model_validate_json(e["SCORING_CONFIG"]) if e.get("SCORING_CONFIG") else None
    result = run_job(
        store=store,
        batch_key=e["BATCH_KEY"],
        model_key=e["MODEL_KEY"],
        model_digest=e["MODEL_DIGEST"],
        corpus_key=e.get("CORPUS_KEY", DEFAULT_CORPUS_KEY),
        output_key=e.get("OUTPUT_KEY") or None,
        corpus_max=int(e.get("CORPUS_MAX", DEFAULT_CORPUS_MAX)),
        config=config,
        now_ms=int(e["NOW_MS"]) if e.get("NOW_MS") else None,
        chunk_rows=int(e["CHUNK_ROWS"]) if e.get("CHUNK_ROWS") else None,
    )
    print(json.dumps(result.summary()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
