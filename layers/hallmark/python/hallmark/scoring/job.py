"""Score one sealed batch: what both runners of ``statemachines/scoring.asl.json`` do.

The AWS Batch job (``gpu_batch.entrypoint``, CUDA provider on GPU instances) and the CPU Lambda
(``functions/scoring_cpu``, the latency path) both call :func:`run_job`, so the two are
interchangeable for the state machine: read the batch (JSON Lines of EnrichedEvents) and the
corpus from the blob store, refuse a model whose sha256 is not the signed digest (``EviRunner``,
before anything else is read), write the envelopes to ``output_key``, then append the batch's
embeddings (normalised) to the corpus, keep the most recent ``corpus_max`` rows and write it back,
and add the batch's briefs and corpus events to the corpus's topic coverage index (the gap score,
see ``hallmark.scoring.coverage``). The corpus and the index are scored as they were before the batch.

Which signed model a run loads depends on the device it finds: on the CUDA provider the float16
``gpu_model`` when the release carries one (fp16 corpus on the GPU), else the float32 model; on the
CPU the float32 model, plus the int8 ``candidate_model`` for batches of at least ``int8_min_batch``
events (0: never). The run's summary, written next to the envelopes (:func:`summary_key`), names
the digests it loaded, so the state machine audits what actually scored the batch.
"""

from __future__ import annotations

import io
import json
import logging
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from hallmark.scoring.briefs import route
from hallmark.scoring.coverage import CoverageIndex, coverage_key, event_topics
from hallmark.scoring.features import EviWeights, ScoringConfig, compute_features, embedding_matrix
from hallmark.scoring.ports import BlobStore
from hallmark.scoring.schema import EMBEDDING_DIM, EnrichedEvent, EVIEnvelope
from hallmark.scoring.weights import DEFAULT_VERSION, Assignment, reweigh

if TYPE_CHECKING:  # numpy and onnxruntime load when a job runs, not when a handler imports this
    import numpy as np
    import numpy.typing as npt

log = logging.getLogger("hallmark.scoring.job")

DEFAULT_CORPUS_KEY = "corpus/current.npy"
DEFAULT_CORPUS_MAX = 1_000_000


@dataclass(frozen=True)
class Rejected:
    line: int
    reason: str


@dataclass
class JobResult:
    runner: str
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
    mode: str = "exact"  # or "int8": int8 candidates re-ranked exactly in float32
    candidate_model_digest: str = ""
    weights: dict[str, Any] = field(default_factory=dict)  # version, canary, shadow bands

    def summary(self) -> dict[str, Any]:
        return {
            "runner": self.runner, "batchKey": self.batch_key, "outputKey": self.output_key, "modelDigest": self.model_digest,
            "mode": self.mode, "candidateModelDigest": self.candidate_model_digest,
            "provider": self.provider, "events": self.events, "scored": self.scored,
            "rejected": len(self.rejected), "bands": self.bands, "corpusRowsBefore": self.corpus_rows_before,
            "corpusRowsAfter": self.corpus_rows_after, "seconds": round(self.seconds, 3), "weights": self.weights,
        }


def parse_batch(data: bytes) -> tuple[list[EnrichedEvent], list[Rejected]]:
    """EnrichedEvents from JSON Lines; invalid lines are reported, not fatal. Lines end at ``\n``
    only: a JSON string may hold U+2028, U+0085 and the like raw, which ``str.splitlines`` would
    also cut at."""
    events: list[EnrichedEvent] = []
    rejected: list[Rejected] = []
    for n, line in enumerate(data.decode("utf-8").split("\n"), start=1):
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
    import numpy as np
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
    import numpy as np

    from hallmark.scoring.runner import normalise_corpus
    if max_rows < 0:
        raise ValueError("max_rows must be >= 0")
    merged = np.concatenate([corpus, normalise_corpus(new_embeddings)], axis=0) if len(new_embeddings) else corpus
    return np.ascontiguousarray(merged[max(0, merged.shape[0] - max_rows):])


def load_coverage(store: BlobStore, corpus_key: str, config: ScoringConfig) -> CoverageIndex:
    """The corpus's coverage index (``coverage_key``), or an empty one when there is none yet."""
    try:
        raw = store.get(coverage_key(corpus_key))
    except KeyError:
        return CoverageIndex(config=config.coverage)
    return CoverageIndex.loads(raw, config.coverage)


def update_coverage(index: CoverageIndex, batch_key: str, events: Sequence[EnrichedEvent],
                    envelopes: Sequence[EVIEnvelope], now_ms: int, in_corpus: Sequence[bool]) -> None:
    """Add the batch to the index: the briefs the band router makes of it (each covering its
    events' topics) and the events entering the corpus (those with an embedding)."""
    topics = {e.event_id: event_topics(e) for e in events}
    briefs = route(batch_key, envelopes, events, now_ms).briefs
    index.add(now_ms,
              briefs=[(b.domain, [t for eid in b.brief.event_ids for t in topics.get(eid, ())]) for b in briefs],
              corpus=[(e.domain, topics[e.event_id]) for e, kept in zip(events, in_corpus, strict=True) if kept])


def dump_npy(arr: npt.NDArray[Any]) -> bytes:
    import numpy as np
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    return buf.getvalue()


def npy_rows(header: bytes) -> int:
    """Rows of a 2-D .npy array from the first bytes of the file (its header)."""
    import numpy as np
    fp = io.BytesIO(header)
    major, _minor = np.lib.format.read_magic(fp)
    if major == 1:
        shape, _order, _dtype = np.lib.format.read_array_header_1_0(fp)
    else:
        shape, _order, _dtype = np.lib.format.read_array_header_2_0(fp)
    return int(shape[0]) if shape else 0


def default_output_key(batch_key: str) -> str:
    name = batch_key.rsplit("/", 1)[-1]
    stem = name[: -len(".jsonl")] if name.endswith(".jsonl") else name
    return f"scored/{stem}.jsonl"


def summary_key(output_key: str) -> str:
    """Where a run writes its summary (JSON): next to its envelopes."""
    return f"{output_key}.summary.json"


def weights_key(output_key: str) -> str:
    """Where the plan step puts the batch's weights assignment (JSON): next to its envelopes."""
    return f"{output_key}.weights.json"


def load_assignment(store: BlobStore, output_key: str) -> Assignment | None:
    try:
        raw = store.get(weights_key(output_key))
    except KeyError:
        return None
    return Assignment.from_dict(json.loads(raw))


def apply_weights(envelopes: Sequence[EVIEnvelope], events: Sequence[EnrichedEvent], assignment: Assignment | None,
                  config: ScoringConfig) -> tuple[list[EVIEnvelope], dict[str, Any]]:
    """Envelopes re-weighed with the assignment's per-domain weights, each naming its weights
    version; the shadow weights' bands of the same events for the summary. Without an assignment
    the model's weights stand (``w-0`` when they are the defaults, ``config`` otherwise)."""
    if assignment is None:
        version = DEFAULT_VERSION if config.weights == EviWeights() else "config"
        return [e.model_copy(update={"weights_version": version}) for e in envelopes], {"weightsVersion": version}
    domains = [e.domain for e in events]
    scores = [e.scores for e in envelopes]
    matrix = [[s.freshness, s.novelty, s.impact, s.confidence, s.gap] for s in scores]
    totals, bands = reweigh(matrix, domains, assignment.scoring, config.cutoffs)
    out = [e.model_copy(update={"total_evi": float(t), "band": b, "weights_version": assignment.scoring.version})
           for e, t, b in zip(envelopes, totals.tolist(), bands, strict=True)]
    info: dict[str, Any] = {"weightsVersion": assignment.scoring.version, "canary": assignment.canary}
    if assignment.shadow is not None:
        _, shadow = reweigh(matrix, domains, assignment.shadow, config.cutoffs)
        info.update(shadowWeightsVersion=assignment.shadow.version, shadowBands=dict(Counter(shadow)),
                    shadowChanged=sum(1 for a, b in zip(bands, shadow, strict=True) if a != b))
    return out, info


def run_job(
    *,
    store: BlobStore,
    batch_key: str,
    model_key: str,
    model_digest: str,
    gpu_model: tuple[str, str] | None = None,
    candidate_model: tuple[str, str] | None = None,
    int8_min_batch: int = 0,
    corpus_key: str = DEFAULT_CORPUS_KEY,
    output_key: str | None = None,
    corpus_max: int = DEFAULT_CORPUS_MAX,
    config: ScoringConfig | None = None,
    now_ms: int | None = None,
    providers: Sequence[str] | None = None,
    chunk_rows: int | None = None,
    update: bool = True,
    runner_name: str = "gpu-batch",
) -> JobResult:
    """Score one batch: envelopes JSONL to ``output_key``, the updated corpus back to ``corpus_key``.
    ``gpu_model`` and ``candidate_model`` are (key, sha256) of the release's variants, if any."""

    from hallmark.scoring.runner import CUDA, EviRunner, default_providers
    started = time.perf_counter()
    cfg = config or ScoringConfig()
    wanted = list(providers) if providers is not None else default_providers()
    on_gpu = bool(wanted) and wanted[0] == CUDA
    key, digest = gpu_model if on_gpu and gpu_model else (model_key, model_digest)
    cand = candidate_model if not on_gpu and int8_min_batch > 0 else None
    with tempfile.TemporaryDirectory(prefix="evi-model-") as tmp:
        model_path = Path(tmp) / "model.onnx"
        model_path.write_bytes(store.get(key))
        cand_arg = None
        if cand is not None:
            cand_path = Path(tmp) / "candidates.onnx"
            cand_path.write_bytes(store.get(cand[0]))
            cand_arg = (cand_path, cand[1])
        # both digests are checked here, before the batch or the corpus is read
        runner = EviRunner(model_path, digest, wanted, config=cfg, chunk_rows=chunk_rows, candidate_model=cand_arg)

    events, rejected = parse_batch(store.get(batch_key))
    corpus = load_corpus(store, corpus_key)
    now = int(time.time() * 1000) if now_ms is None else now_ms
    coverage = load_coverage(store, corpus_key, cfg)
    feats = [compute_features(e, now, cfg, coverage.event_coverage(e, now)) for e in events]
    queries = embedding_matrix(events)
    int8 = runner.candidate_session is not None and len(events) >= int8_min_batch and corpus.shape[0] > 0
    prepared = runner.prepare_corpus(corpus, normalized=True, int8=int8)
    envelopes, weights_info = apply_weights(runner.score(feats, queries, prepared), events,
                                            load_assignment(store, output_key or default_output_key(batch_key)), cfg)

    out_key = output_key or default_output_key(batch_key)
    store.put(out_key, "".join(env.model_dump_json() + "\n" for env in envelopes).encode("utf-8"))
    rows_after = corpus.shape[0]
    if update:
        with_embedding = queries[[f.has_embedding for f in feats]] if feats else queries
        new_corpus = update_corpus(corpus, with_embedding, corpus_max)
        store.put(corpus_key, dump_npy(new_corpus))
        rows_after = new_corpus.shape[0]
        update_coverage(coverage, batch_key, events, envelopes, now, [f.has_embedding for f in feats])
        store.put(coverage_key(corpus_key), coverage.dumps())
    result = JobResult(
        runner=runner_name, batch_key=batch_key, output_key=out_key, model_digest=runner.digest, provider=runner.providers[0],
        events=len(events) + len(rejected), scored=len(envelopes), rejected=rejected,
        bands=dict(Counter(env.band for env in envelopes)), corpus_rows_before=corpus.shape[0],
        corpus_rows_after=rows_after, seconds=time.perf_counter() - started, mode="int8" if int8 else "exact",
        candidate_model_digest=runner.candidate_digest if int8 else "", weights=weights_info,
    )
    summary = json.dumps(result.summary(), sort_keys=True)
    store.put(summary_key(out_key), summary.encode("utf-8"))
    log.info("batch scored %s", summary)
    return result
