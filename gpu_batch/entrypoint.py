"""The AWS Batch scoring job (the throughput path of design flow 5).

``hallmark.scoring.job.run_job`` does the work (the CPU Lambda runs the same function);
``main`` only reads the environment:

    BUCKET         the scoring bucket (or BLOB_DIR: a local directory standing in for it)
    BATCH_KEY      JSON Lines of EnrichedEvents written by the ingest Lambda
    MODEL_KEY      the float32 EVI model file (run on the CPU, and on the GPU without GPU_MODEL_KEY)
    MODEL_DIGEST   its sha256, taken by the state machine from the model's verified signed manifest
    GPU_MODEL_KEY, GPU_MODEL_DIGEST
                   the release's float16 variant, run on the CUDA provider (empty: none)
    CANDIDATE_MODEL_KEY, CANDIDATE_MODEL_DIGEST
                   the release's int8 candidate model for the int8 corpus mode on the CPU (empty: none)
    INT8_MIN_BATCH batches of at least this many events use the int8 mode on the CPU (0, default: never)
    CORPUS_KEY     reference corpus, .npy float32 [N, 768], unit rows (default corpus/current.npy);
                   its topic coverage index (the gap score) is <corpus>.coverage.json beside it
    OUTPUT_KEY     where the envelopes go (default: scored/<batch file name>)
    CORPUS_MAX     rows kept in the corpus after the update (default 1,000,000)
    CHUNK_ROWS     corpus rows per model call (default: the runner's choice)
    SCORING_CONFIG a ScoringConfig as JSON (default: the design defaults)
    NOW_MS         scoring time (default: the clock), for replays

The job refuses a model whose digest differs from the signed one (MODEL_DIGEST, GPU_MODEL_DIGEST,
CANDIDATE_MODEL_DIGEST, whichever it loads) before it reads anything else. The
corpus is scored as it was before the batch; then the batch's embeddings are appended
(normalised) and only the most recent CORPUS_MAX rows are kept.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Mapping
from pathlib import Path

from hallmark.scoring.features import ScoringConfig
from hallmark.scoring.job import (
    DEFAULT_CORPUS_KEY,
    DEFAULT_CORPUS_MAX,
    JobResult,
    Rejected,
    default_output_key,
    dump_npy,
    run_job,
    update_corpus,
)
from hallmark.scoring.ports import BlobStore

__all__ = ["DirectoryBlobStore", "JobResult", "Rejected", "default_output_key", "dump_npy", "main", "run_job",
           "update_corpus"]


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


def _model_ref(env: Mapping[str, str], prefix: str) -> tuple[str, str] | None:
    """(key, digest) from ``<prefix>_KEY`` / ``<prefix>_DIGEST``; None when the release has no such variant."""
    key, digest = env.get(f"{prefix}_KEY", ""), env.get(f"{prefix}_DIGEST", "")
    if bool(key) != bool(digest):
        raise ValueError(f"{prefix}_KEY and {prefix}_DIGEST go together (got key {key!r}, digest {digest!r})")
    return (key, digest) if key else None


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
        gpu_model=_model_ref(e, "GPU_MODEL"),
        candidate_model=_model_ref(e, "CANDIDATE_MODEL"),
        int8_min_batch=int(e.get("INT8_MIN_BATCH") or 0),
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
