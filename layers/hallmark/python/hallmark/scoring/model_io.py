"""The EVI model's interface: input/output names, shapes and metadata keys.

Shared by the builder (``gpu_batch.evi_model``) and the runner, so the two cannot drift.

One call of the model scores a batch of B events against one chunk of M corpus rows::

    queries        float32   [B, D]     raw embeddings (a zero row where an event has none)
    corpus         T         [M, D]     float32 / float16: L2-normalised rows of one chunk
    prev_topk      float32   [B, k]     running top-k cosine similarities (-inf = none yet)
    features       float32   [B, 4]     freshness, impact, confidence, gap (host-computed)
    has_embedding  bool      [B]
    weights        float32   [5]        freshness, novelty, impact, confidence, gap
    cutoffs        float32   [3]        instant, same_day, weekly (descending)

    -> topk [B, k] (feed back as prev_topk for the next chunk), novelty [B], scores [B, 5],
       total_evi [B], band [B] int64 (0 instant, 1 same_day, 2 weekly, 3 archive)

The runner streams the corpus through the model chunk by chunk, feeding ``topk`` back; the
outputs of the last call are the answer (an empty corpus is one call with M = 0).

The optional int8 candidate model (see ``gpu_batch.evi_model.build_candidate_graph``) takes
``queries_u8`` uint8 [B, D], ``corpus`` int8 [D, M], ``chunk_offset``, ``prev_cand``/``prev_idx``
and returns the running candidates ``cand``/``cand_idx``.
"""

from __future__ import annotations

from typing import Final, Literal

MODEL_FILE: Final = "evi.onnx"
"""The float32 model's file name in a model package (the registry requires it; the builder writes it)."""

CorpusDType = Literal["float32", "float16", "int8"]
CORPUS_DTYPES: Final[tuple[CorpusDType, ...]] = ("float32", "float16", "int8")

IN_QUERIES: Final = "queries"
IN_QUERIES_U8: Final = "queries_u8"
IN_CORPUS: Final = "corpus"
IN_PREV_TOPK: Final = "prev_topk"
IN_FEATURES: Final = "features"
IN_HAS_EMBEDDING: Final = "has_embedding"
IN_WEIGHTS: Final = "weights"
IN_CUTOFFS: Final = "cutoffs"

OUT_TOPK: Final = "topk"
OUT_NOVELTY: Final = "novelty"
OUT_SCORES: Final = "scores"
OUT_TOTAL: Final = "total_evi"
OUT_BAND: Final = "band"
OUTPUTS: Final[tuple[str, ...]] = (OUT_TOPK, OUT_NOVELTY, OUT_SCORES, OUT_TOTAL, OUT_BAND)

META_FORMAT: Final = "hallmark.evi.format"
META_CORPUS_DTYPE: Final = "hallmark.evi.corpus_dtype"
META_K: Final = "hallmark.evi.k"
META_DIM: Final = "hallmark.evi.dim"
META_GROUP: Final = "hallmark.evi.group"
META_CANDIDATES: Final = "hallmark.evi.candidates"
FORMAT_VERSION: Final = "1"

INT8_QUERY_LEVELS: Final = 63
INT8_QUERY_ZERO_POINT: Final = 64
"""The int8 candidate model takes each normalised query row quantised to uint8 in [1, 127] (zero
point 64, its own scale): 7-bit activations keep AVX2's u8*s8 pair sums below int16 saturation."""
INT8_CORPUS_LEVELS: Final = 127
