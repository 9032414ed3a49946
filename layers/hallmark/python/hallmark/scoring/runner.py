"""Runs the EVI ONNX model over a batch of events and a reference corpus.

``EviRunner`` refuses a model file whose sha256 is not the digest the caller took from the
model's signed manifest (the caller verifies the manifest; this class only compares digests), then
loads the very bytes it hashed. It runs on the CUDA provider when onnxruntime has it, otherwise on
the CPU provider, and streams the corpus through the model in chunks (see ``model_io``):

- CPU: chunks are zero-copy row slices of the prepared corpus (32,768 rows for a block of 1024
  queries); the batch is cut into blocks of at most 1024 queries and every chunk visits every
  block, so one block of similarities is at most 128 MiB; intra-op threads = the cores this
  process may use.
- CUDA: the prepared corpus is uploaded once as device chunks (fp16 for the fp16 model) and the
  calls go through IO binding, the running top-k staying on the device between chunks.
- int8 (optional, CPU): an int8 candidate model proposes ``candidates`` rows per query over an
  int8 copy of the corpus, the runner re-ranks them exactly in fp32, and one last call of the EVI
  model (with an empty chunk) turns the exact top-k into scores.
"""

from __future__ import annotations

import hmac
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
import numpy.typing as npt
import onnxruntime as ort
from pydantic import TypeAdapter

from hallmark.canonical import sha256_hex
from hallmark.scoring import model_io as io
from hallmark.scoring.features import SCORE_NAMES, EventFeatures, ScoringConfig, feature_matrix
from hallmark.scoring.schema import BANDS, EVIEnvelope

F32 = npt.NDArray[np.float32]
CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
SIM_BLOCK_BYTES = 128 * 1024 * 1024
"""The similarity block [query block x chunk rows] the CPU chunk size aims at. Measured on the
benchmark machine (B=1024, N=100k, ``sweep of ``chunk_rows``; time / numpy GEMM):
2048 rows 1.24x, 4096 1.15x, 8192 1.14x, 16384 1.09x, 32768 1.09x. MLAS's Gemm is ~95% of a
call; fewer, larger calls win over keeping the block in cache for the group-max selection.
Not done, measured: binding each chunk as a constant initializer lets MLAS prepack it (Gemm ~7%
faster per call), but the prepacking costs ~170 ms per 32,768-row chunk, paid back only after ~7
blocks of 1024 queries per chunk; a job scores its corpus once, so it would not pay here."""
MIN_CHUNK_ROWS = 1024
MAX_CHUNK_ROWS = 65_536
CUDA_CHUNK_ROWS = 65_536
CPU_QUERY_BLOCK = 1024
"""MLAS's sgemm slows down by a third once the query operand outgrows ~1024 rows (4096 x 768 runs
at 52 GFLOP/s a core on the benchmark machine, 1024 x 768 at 72): larger batches are cut into
blocks of 1024 queries, each chunk of the corpus visiting every block while it is in cache."""
INT8_CHUNK_ROWS = 16_384
RERANK_QUERIES = 64
"""Queries re-ranked together in the int8 mode: their candidate rows (64 x C x D floats, 3 MiB for
C=16) are gathered into one reused buffer that stays in cache. Gathering all B x C rows at once
allocated B x C x D floats (200 MB at B=4096) per batch, and first-touching that much fresh memory
cost 0.8 s of page faults on the benchmark VM where the dot products themselves take ~0.05 s."""
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


class ModelDigestMismatch(RuntimeError):
    """The model file is not the one the signed manifest names; nothing was loaded."""


def _expected(digest: str) -> str:
    d = digest.strip().lower()
    d = d.removeprefix("sha256:")
    if not _HEX64.match(d):
        raise ModelDigestMismatch(f"expected digest is not a sha256 hex string: {digest!r}")
    return d


def load_verified(path: str | os.PathLike[str], expected_digest: str) -> bytes:
    """The file's bytes, if their sha256 is ``expected_digest`` (hex, optionally 'sha256:')."""
    want = _expected(expected_digest)
    data = Path(path).read_bytes()
    got = sha256_hex(data)
    if not hmac.compare_digest(got, want):
        raise ModelDigestMismatch(f"model {os.fspath(path)!r} has sha256 {got}, the manifest says {want}")
    return data


def default_providers() -> list[str]:
    """CUDA first when this onnxruntime build has it, the CPU provider always."""
    return [CUDA, CPU] if CUDA in ort.get_available_providers() else [CPU]


def cpu_count() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def auto_chunk_rows(batch: int) -> int:
    """Rows per chunk on the CPU: a power of two keeping one block of float32 similarities (at most
    CPU_QUERY_BLOCK queries x M) about SIM_BLOCK_BYTES."""
    rows = SIM_BLOCK_BYTES // (4 * max(1, min(batch, CPU_QUERY_BLOCK)))
    rows = 1 << max(0, int(rows).bit_length() - 1)
    return min(MAX_CHUNK_ROWS, max(MIN_CHUNK_ROWS, rows))


_ENVELOPES: TypeAdapter[list[EVIEnvelope]] = TypeAdapter(list[EVIEnvelope])


def envelopes_from(events: Sequence[EventFeatures], res: ScoreArrays) -> list[EVIEnvelope]:
    """EVIEnvelopes for the events, in order, from the model's outputs, validated by the schema.

    One ``validate_python`` over the whole list (pydantic-core's loop) instead of one model per
    event: the same objects and the same checks, ~6x faster for a batch of thousands (building
    envelopes one by one was ~2% of a large batch's scoring time).
    """
    n = len(events)
    if res.scores.shape != (n, len(SCORE_NAMES)) or res.total_evi.shape != (n,) or res.band.shape != (n,):
        raise ValueError(f"model outputs do not match {n} events: "
                         f"{res.scores.shape}, {res.total_evi.shape}, {res.band.shape}")
    return _ENVELOPES.validate_python([
        {"event_id": ev.event_id, "scores": dict(zip(SCORE_NAMES, s, strict=True)), "total_evi": t,
         "band": BANDS[b] if 0 <= b < len(BANDS) else f"band {b}"}
        for ev, s, t, b in zip(events, res.scores.tolist(), res.total_evi.tolist(), res.band.tolist(), strict=True)
    ])


def normalise_corpus(corpus: npt.ArrayLike, *, block_rows: int = 65_536) -> F32:
    """A float32 copy of ``corpus`` with L2-normalised rows (zero rows stay zero)."""
    src = np.asarray(corpus)
    out = np.empty(src.shape, dtype=np.float32)
    for start in range(0, src.shape[0], block_rows):
        block = src[start:start + block_rows].astype(np.float32)
        norms = np.sqrt(np.einsum("ij,ij->i", block, block, dtype=np.float32))
        out[start:start + block_rows] = block / np.maximum(norms, 1e-12)[:, None]
    return out


def quantise_queries(normalised: F32) -> npt.NDArray[np.uint8]:
    """uint8 [B, D] for the int8 candidate model: per row, round(q / (max|q| / 63)) + 64."""
    amax = np.maximum(np.abs(normalised).max(axis=1, keepdims=True), 1e-12)
    levels = np.rint(normalised * (io.INT8_QUERY_LEVELS / amax))
    return (levels + io.INT8_QUERY_ZERO_POINT).astype(np.uint8)


def quantise_corpus(host: F32, chunk_rows: int) -> list[tuple[int, npt.NDArray[np.int8]]]:
    """int8 chunks (offset, [D, M] transposed) of a float32 corpus with one symmetric scale:
    round(x / (max|x| / 127)). Works through reused chunk buffers and casts before transposing: the
    plain expression's corpus-sized temporaries (|x|, x / scale, rint, clip, each first-touched)
    and float transposes took 13-14 s for a 1M x 768 corpus on the benchmark VM, this 4.5 s."""
    peak = max(float(host.max()), -float(host.min()))
    scale = peak / io.INT8_CORPUS_LEVELS or 1.0
    buf = np.empty((min(chunk_rows, host.shape[0]), host.shape[1]), dtype=np.float32)
    buf8 = np.empty(buf.shape, dtype=np.int8)
    chunks: list[tuple[int, npt.NDArray[np.int8]]] = []
    for start in range(0, host.shape[0], chunk_rows):
        block = host[start:start + chunk_rows]
        work, work8 = buf[:block.shape[0]], buf8[:block.shape[0]]
        np.divide(block, scale, out=work)
        np.rint(work, out=work)
        np.clip(work, -io.INT8_CORPUS_LEVELS, io.INT8_CORPUS_LEVELS, out=work)
        work8[...] = work  # cast, then transpose the 4x smaller int8 block (~40% faster)
        chunks.append((start, np.ascontiguousarray(work8.T)))
    return chunks


@dataclass
class PreparedCorpus:
    """A corpus laid out for one runner: normalised, in the model's dtype, on the model's device."""

    host: npt.NDArray[Any]  # [N, D] normalised rows, float32 or float16
    device_chunks: list[Any] | None = None  # OrtValues on the GPU, CUDA only
    device_chunk_rows: int = 0
    int8_chunks: list[tuple[int, npt.NDArray[np.int8]]] = field(default_factory=list)  # (offset, [D, M])

    @property
    def rows(self) -> int:
        return int(self.host.shape[0])


@dataclass(frozen=True)
class ScoreArrays:
    topk: F32  # [B, k] cosine similarities of the nearest corpus rows, descending (-inf: none)
    novelty: F32  # [B]
    scores: F32  # [B, 5] freshness, novelty, impact, confidence, gap
    total_evi: F32  # [B]
    band: npt.NDArray[np.int64]  # [B] index into hallmark.scoring.schema.BANDS


class EviRunner:
    """Loads a digest-checked EVI model and scores batches with it."""

    def __init__(
        self,
        model_path: str | os.PathLike[str],
        expected_digest: str,
        providers: Sequence[str | tuple[str, dict[str, Any]]] | None = None,
        *,
        config: ScoringConfig | None = None,
        chunk_rows: int | None = None,
        intra_op_threads: int | None = None,
        query_block: int | None = None,
        candidate_model: tuple[str | os.PathLike[str], str] | None = None,
        int8_chunk_rows: int = INT8_CHUNK_ROWS,
        use_io_binding: bool | None = None,
    ) -> None:
        model_bytes = load_verified(model_path, expected_digest)  # raises before anything is loaded
        cand_bytes = load_verified(*candidate_model) if candidate_model is not None else None
        self.digest = sha256_hex(model_bytes)
        self.config = config or ScoringConfig()
        self.chunk_rows = chunk_rows
        self.int8_chunk_rows = int8_chunk_rows
        self.query_block = query_block
        if (chunk_rows is not None and chunk_rows < 1) or int8_chunk_rows < 1 or (query_block or 1) < 1:
            raise ValueError("chunk rows and query blocks must be positive")

        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.intra_op_num_threads = intra_op_threads or cpu_count()
        so.inter_op_num_threads = 1
        so.log_severity_level = 3
        wanted = list(providers) if providers is not None else default_providers()
        self.session = ort.InferenceSession(model_bytes, sess_options=so, providers=wanted)
        self.providers: list[str] = self.session.get_providers()
        self.device = "cuda" if self.providers and self.providers[0] == CUDA else "cpu"
        self.use_io_binding = self.device == "cuda" if use_io_binding is None else use_io_binding

        meta = self.session.get_modelmeta().custom_metadata_map
        if meta.get(io.META_FORMAT) != io.FORMAT_VERSION:
            raise ValueError(f"not an EVI model of format {io.FORMAT_VERSION}: {meta}")
        self.corpus_dtype = cast(io.CorpusDType, meta[io.META_CORPUS_DTYPE])
        self.k = int(meta[io.META_K])
        self.dim = int(meta[io.META_DIM])
        if self.k != self.config.k:
            raise ValueError(f"the model finds k={self.k} neighbours, the config asks for k={self.config.k}")
        self._np_dtype = np.float16 if self.corpus_dtype == "float16" else np.float32

        self.candidate_session: ort.InferenceSession | None = None
        self.candidate_digest = ""
        self.candidates = 0
        if cand_bytes is not None:
            if self.corpus_dtype != "float32":
                raise ValueError("the int8 candidate mode re-ranks against the float32 EVI model's corpus")
            cso = ort.SessionOptions()
            cso.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            cso.intra_op_num_threads = so.intra_op_num_threads
            cso.log_severity_level = 3
            self.candidate_session = ort.InferenceSession(cand_bytes, sess_options=cso, providers=[CPU])
            cmeta = self.candidate_session.get_modelmeta().custom_metadata_map
            if cmeta.get(io.META_CORPUS_DTYPE) != "int8" or int(cmeta[io.META_DIM]) != self.dim:
                raise ValueError("candidate_model is not an int8 EVI candidate model of the same dimension")
            self.candidates = int(cmeta[io.META_CANDIDATES])
            if self.candidates < self.k:
                raise ValueError("the candidate model must propose at least k rows")
            self.candidate_digest = sha256_hex(cand_bytes)

    # --- corpus ---------------------------------------------------------------------------------

    def prepare_corpus(self, corpus: npt.ArrayLike, *, normalized: bool = False, int8: bool = True) -> PreparedCorpus:
        """Lay a corpus [N, D] out for this runner. ``normalized=True`` promises unit rows (as the
        corpus store keeps them) and then a C-contiguous float32 array is used without a copy.
        With a candidate model, ``int8=False`` skips the int8 copy: batches scored against that
        preparation take the exact path (quantising costs ~4.5 s per 1M rows, more than a small
        batch's whole exact scoring)."""
        arr = np.asarray(corpus)
        if arr.ndim != 2 or (arr.shape[0] and arr.shape[1] != self.dim):
            raise ValueError(f"corpus must be [N, {self.dim}], got {arr.shape}")
        arr = arr.reshape(arr.shape[0], self.dim)
        if not normalized:
            host: npt.NDArray[Any] = normalise_corpus(arr)
        else:
            host = np.ascontiguousarray(arr, dtype=np.float32)
        if self._np_dtype is np.float16:
            host = host.astype(np.float16)
        prepared = PreparedCorpus(host=host)
        if self.device == "cuda" and self.use_io_binding:
            rows = self.chunk_rows or CUDA_CHUNK_ROWS
            prepared.device_chunk_rows = rows
            prepared.device_chunks = [
                ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(host[s:s + rows]), "cuda", 0)
                for s in range(0, host.shape[0], rows)
            ]
        if self.candidate_session is not None and int8 and host.shape[0]:
            prepared.int8_chunks = quantise_corpus(host, self.int8_chunk_rows)
        return prepared

    def _host_chunks(self, prepared: PreparedCorpus, batch: int) -> Iterator[npt.NDArray[Any]]:
        rows = self.chunk_rows or auto_chunk_rows(batch)
        host = prepared.host
        if host.shape[0] == 0:
            yield host.reshape(0, self.dim)
            return
        for start in range(0, host.shape[0], rows):
            yield host[start:start + rows]

    # --- scoring --------------------------------------------------------------------------------

    def score_arrays(
        self,
        features: npt.ArrayLike,
        has_embedding: npt.ArrayLike,
        queries: npt.ArrayLike,
        corpus: npt.ArrayLike | PreparedCorpus,
    ) -> ScoreArrays:
        """Score B events: ``features`` [B, 4] (freshness, impact, confidence, gap), ``has_embedding``
        [B], ``queries`` [B, D] (zero rows where there is no embedding), a corpus [N, D]."""
        q = np.ascontiguousarray(queries, dtype=np.float32)
        if q.ndim != 2 or q.shape[1] != self.dim:
            raise ValueError(f"queries must be [B, {self.dim}], got {q.shape}")
        batch = q.shape[0]
        feats = np.ascontiguousarray(features, dtype=np.float32).reshape(batch, 4)
        has = np.ascontiguousarray(has_embedding, dtype=np.bool_).reshape(batch)
        if batch == 0:
            e = np.zeros(0, np.float32)
            return ScoreArrays(np.zeros((0, self.k), np.float32), e, np.zeros((0, 5), np.float32), e,
                               np.zeros(0, np.int64))
        prepared = corpus if isinstance(corpus, PreparedCorpus) else self.prepare_corpus(corpus)
        if prepared.host.dtype != self._np_dtype:
            raise ValueError(f"corpus prepared as {prepared.host.dtype}, this model takes {self.corpus_dtype}")
        feeds: dict[str, npt.NDArray[Any]] = {
            io.IN_QUERIES: q,
            io.IN_FEATURES: feats,
            io.IN_HAS_EMBEDDING: has,
            io.IN_WEIGHTS: self.config.weights.as_array(),
            io.IN_CUTOFFS: self.config.cutoffs.as_array(),
        }
        prev = np.full((batch, self.k), -np.inf, dtype=np.float32)
        if self.candidate_session is not None and prepared.int8_chunks:
            prev = self._int8_topk(q, prepared)
            chunks: Iterator[npt.NDArray[Any]] = iter([prepared.host[:0]])
            return self._run_host(feeds, prev, chunks)
        if self.use_io_binding:
            return self._run_bound(feeds, prev, prepared)
        return self._run_host(feeds, prev, self._host_chunks(prepared, batch))

    def _run_host(self, feeds: dict[str, npt.NDArray[Any]], prev: F32,
                  chunks: Iterator[npt.NDArray[Any]]) -> ScoreArrays:
        """Chunks in the outer loop, blocks of queries in the inner one (each block keeps its own
        running top-k), so a chunk is read from memory once for the whole batch."""
        batch = prev.shape[0]
        step = self.query_block or CPU_QUERY_BLOCK
        blocks = [(a, min(a + step, batch)) for a in range(0, batch, step)]
        per_event = (io.IN_QUERIES, io.IN_FEATURES, io.IN_HAS_EMBEDDING)
        block_feeds = [{**feeds, **{n: feeds[n][a:b] for n in per_event}} for a, b in blocks]
        running = [prev[a:b] for a, b in blocks]
        outs: list[list[Any]] = [[] for _ in blocks]
        for chunk in chunks:
            for j, bf in enumerate(block_feeds):
                bf[io.IN_CORPUS] = chunk
                bf[io.IN_PREV_TOPK] = running[j]
                outs[j] = self.session.run(list(io.OUTPUTS), bf)
                running[j] = outs[j][0]
        if len(outs) == 1:
            return ScoreArrays(*outs[0])
        return ScoreArrays(*(np.concatenate([o[i] for o in outs]) for i in range(len(io.OUTPUTS))))

    def _run_bound(self, feeds: dict[str, npt.NDArray[Any]], prev: F32, prepared: PreparedCorpus) -> ScoreArrays:
        device = self.device
        binding = self.session.io_binding()
        keep: list[Any] = []  # host arrays / OrtValues that must outlive the runs
        for name, arr in feeds.items():
            value = ort.OrtValue.ortvalue_from_numpy(arr, device, 0)
            keep.append(value)
            binding.bind_ortvalue_input(name, value)
        if prepared.device_chunks is not None and device == "cuda":
            chunks: list[Any] = list(prepared.device_chunks) or [
                ort.OrtValue.ortvalue_from_numpy(np.zeros((0, self.dim), self._np_dtype))]
        else:
            batch = feeds[io.IN_QUERIES].shape[0]
            chunks = [ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(c), device, 0)
                      for c in self._host_chunks(prepared, batch)]
        prev_value = ort.OrtValue.ortvalue_from_numpy(prev, device, 0)
        outputs: list[Any] = []
        for chunk in chunks:
            binding.bind_ortvalue_input(io.IN_CORPUS, chunk)
            binding.bind_ortvalue_input(io.IN_PREV_TOPK, prev_value)
            for name in io.OUTPUTS:
                binding.bind_output(name, device, 0)
            self.session.run_with_iobinding(binding)
            outputs = binding.get_outputs()
            prev_value = outputs[0]
        arrays = [o.numpy() for o in outputs]
        del keep
        return ScoreArrays(*arrays)

    def _int8_topk(self, q: F32, prepared: PreparedCorpus) -> F32:
        """Exact top-k over the int8 candidates: candidate model per chunk, fp32 re-rank on the host."""
        assert self.candidate_session is not None
        batch = q.shape[0]
        step = self.query_block or CPU_QUERY_BLOCK
        blocks = [(a, min(a + step, batch)) for a in range(0, batch, step)]
        cands = [np.full((b - a, self.candidates), np.iinfo(np.int32).min, dtype=np.int32) for a, b in blocks]
        idxs = [np.full((b - a, self.candidates), -1, dtype=np.int64) for a, b in blocks]
        qn = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
        q_u8 = quantise_queries(qn)
        for offset, chunk in prepared.int8_chunks:
            off = np.asarray([offset], np.int64)
            for j, (a, b) in enumerate(blocks):
                cands[j], idxs[j] = self.candidate_session.run(None, {
                    io.IN_QUERIES_U8: q_u8[a:b], io.IN_CORPUS: chunk, "chunk_offset": off,
                    "prev_cand": cands[j], "prev_idx": idxs[j],
                })
        idx = np.concatenate(idxs)
        exact = self._rerank(prepared.host, idx, qn)
        top = -np.sort(-exact, axis=1)[:, :self.k]
        if top.shape[1] < self.k:
            top = np.pad(top, ((0, 0), (0, self.k - top.shape[1])), constant_values=-np.inf)
        return np.ascontiguousarray(top, dtype=np.float32)

    def _rerank(self, host: F32, idx: npt.NDArray[np.int64], qn: F32) -> F32:
        """Exact fp32 cosine of each query with its candidate rows [B, C]; -inf where idx < 0."""
        batch, n_cand = idx.shape
        safe = np.maximum(idx, 0)
        exact = np.empty((batch, n_cand), dtype=np.float32)
        rows = np.empty((min(batch, RERANK_QUERIES) * n_cand, self.dim), dtype=np.float32)
        for a in range(0, batch, RERANK_QUERIES):
            b = min(a + RERANK_QUERIES, batch)
            block = rows[:(b - a) * n_cand]
            np.take(host, safe[a:b].ravel(), axis=0, out=block)
            np.matmul(block.reshape(b - a, n_cand, self.dim), qn[a:b, :, None], out=exact[a:b, :, None])
        exact[idx < 0] = -np.inf
        return exact

    def score(
        self,
        events_features: Sequence[EventFeatures],
        query_embeddings: npt.ArrayLike,
        corpus: npt.ArrayLike | PreparedCorpus,
    ) -> list[EVIEnvelope]:
        """Envelopes for the events, in order. ``query_embeddings`` [B, D] holds each event's
        embedding (a zero row for an event without one, which gets novelty 0.5)."""
        feats, has = feature_matrix(events_features)
        return envelopes_from(events_features, self.score_arrays(feats, has, query_embeddings, corpus))
