"""Plain numpy EVI scoring: the correctness oracle for the ONNX model (not a speed baseline).

Everything is float64 and written the obvious way; only the similarity is chunked over the corpus
so the oracle itself fits in memory for large corpora.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from hallmark.scoring.features import BAND_EPSILON, BandCutoffs, EviWeights

F64 = npt.NDArray[np.float64]


@dataclass(frozen=True)
class ReferenceScores:
    topk: F64  # [B, k] cosine similarities, descending, -inf where the corpus has fewer than k rows
    novelty: F64  # [B]
    scores: F64  # [B, 5] freshness, novelty, impact, confidence, gap
    total_evi: F64  # [B]
    band: npt.NDArray[np.int64]  # [B] 0 instant, 1 same_day, 2 weekly, 3 archive


def normalise_rows(x: npt.ArrayLike) -> F64:
    a = np.asarray(x, dtype=np.float64)
    norms = np.linalg.norm(a, axis=1, keepdims=True)
    return np.divide(a, np.maximum(norms, 1e-12))


def topk_cosine(queries: npt.ArrayLike, corpus: npt.ArrayLike, k: int, *, normalise_corpus: bool = True,
                chunk_rows: int = 65_536) -> F64:
    """The k largest cosine similarities of each query to the corpus rows, descending."""
    q = normalise_rows(queries)
    c_all = np.asarray(corpus)
    best = np.full((q.shape[0], k), -np.inf)
    for start in range(0, c_all.shape[0], chunk_rows):
        c = c_all[start:start + chunk_rows].astype(np.float64)
        if normalise_corpus:
            c = normalise_rows(c)
        sims = q @ c.T
        both = np.concatenate([best, sims], axis=1)
        if both.shape[1] > k:
            both = -np.partition(-both, k - 1, axis=1)[:, :k]
        best = -np.sort(-both, axis=1)
    return best


def novelty_from_topk(topk: F64, has_embedding: npt.ArrayLike) -> F64:
    """1 - mean similarity of the neighbours found; 1.0 with none; 0.5 without an embedding."""
    valid = np.isfinite(topk)
    count = valid.sum(axis=1)
    mean = np.where(valid, topk, 0.0).sum(axis=1) / np.maximum(count, 1)
    novelty = np.where(count > 0, 1.0 - mean, 1.0)
    novelty = np.where(np.asarray(has_embedding, dtype=bool), novelty, 0.5)
    return np.clip(novelty, 0.0, 1.0)


def bands(total: F64, cutoffs: BandCutoffs) -> npt.NDArray[np.int64]:
    reached = (total[:, None] + BAND_EPSILON) >= np.asarray(cutoffs.as_tuple())[None, :]
    return (3 - reached.sum(axis=1)).astype(np.int64)


def reference_scores(
    features: npt.ArrayLike,
    has_embedding: npt.ArrayLike,
    queries: npt.ArrayLike,
    corpus: npt.ArrayLike,
    *,
    weights: EviWeights | None = None,
    cutoffs: BandCutoffs | None = None,
    k: int = 10,
    normalise_corpus: bool = True,
) -> ReferenceScores:
    """Score a batch: ``features`` [B, 4] (freshness, impact, confidence, gap), ``queries`` [B, D]."""
    w = weights or EviWeights()
    c = cutoffs or BandCutoffs()
    feats = np.clip(np.asarray(features, dtype=np.float64), 0.0, 1.0)
    topk = topk_cosine(queries, corpus, k, normalise_corpus=normalise_corpus)
    novelty = novelty_from_topk(topk, has_embedding)
    scores = np.column_stack([feats[:, 0], novelty, feats[:, 1], feats[:, 2], feats[:, 3]])
    total = np.clip(scores @ np.asarray(w.as_tuple()), 0.0, 1.0)
    return ReferenceScores(topk=topk, novelty=novelty, scores=scores, total_evi=total, band=bands(total, c))
