"""Builds the EVI ONNX models with ``onnx.helper`` (no downloads, deterministic bytes).

``build_model(path)`` writes the EVI model (the interface is documented in
``hallmark.scoring.model_io``) and returns the file's sha256, which is what the release pipeline
signs in the model's manifest. The same code always yields the same bytes, hence the same digest.

One call scores B queries against one corpus chunk of M rows and merges the chunk's k nearest
neighbours into the running top-k fed back from the previous call, so the working memory is
O(B x M) whatever the corpus size:

    similarity   Gemm(queries, chunk, transB=1)                     [B, M]   (the work; the fp32
                 model ranks raw dot products and divides the candidates by ||q||, the fp16 model
                 normalises the queries first)
    selection    exact top-k through group maxima: the rows of each query are cut into groups of
                 G = 16 columns; a top-k element lies in one of the k groups with the largest
                 maxima, so ReduceMax -> TopK(k groups) -> GatherND(k x G candidates) keeps the
                 exact top-k and touches the [B, M] similarities once, at memory speed (a TopK over
                 all of [B, M] costs ~10% of the Gemm on a CPU). A chunk whose M is not a multiple
                 of G (the corpus tail) takes G = 1, i.e. a plain TopK.
    merge        TopK(k) over [prev_topk | the chunk's k x G candidates]
    finishing    novelty = clamp(1 - mean(valid top-k), 0, 1); 1.0 with no neighbour (empty corpus),
                 0.5 without an embedding; scores = [freshness, novelty, impact, confidence, gap];
                 total_evi = clamp(scores @ weights, 0, 1); band from total_evi and the cut-offs.

Variants (``corpus_dtype``): ``float32`` (CPU), ``float16`` (the GPU job: fp16 corpus and Gemm,
selection in fp16, running top-k in fp32). ``build_candidate_model`` builds the optional int8
candidate generator (MatMulInteger over an int8 corpus, then exact fp32 re-ranking by the runner).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from hallmark.scoring import model_io as io
from hallmark.scoring.features import BAND_EPSILON  # the host's banding rule, same constant

OPSET = 21
IR_VERSION = 10
PRODUCER = "hallmark.gpu_batch.evi_model"
DEFAULT_K = 10
DEFAULT_GROUP = 16
DEFAULT_DIM = 768
DEFAULT_CANDIDATES = 16
NORM_EPS = 1e-12
N_FEATURES = 4
N_SCORES = 5
N_BANDS = 4

_ELEM: dict[str, int] = {"float32": TensorProto.FLOAT, "float16": TensorProto.FLOAT16}


class _GraphBuilder:
    """A few conveniences over onnx.helper: generated names, constants as initializers."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._n = 0
        self._consts: dict[tuple[str, bytes, tuple[int, ...]], str] = {}

    def _name(self, hint: str) -> str:
        self._n += 1
        return f"{hint}_{self._n}"

    def const(self, value: np.ndarray | float | int | Sequence[int], dtype: type | str) -> str:
        arr = np.asarray(value, dtype=dtype)
        key = (arr.dtype.str, arr.tobytes(), arr.shape)
        if key not in self._consts:
            name = self._name("c")
            self.initializers.append(numpy_helper.from_array(arr, name))
            self._consts[key] = name
        return self._consts[key]

    def i64(self, *values: int) -> str:
        return self.const(list(values), np.int64)

    def f32(self, value: float) -> str:
        return self.const(value, np.float32)

    def op(self, op_type: str, inputs: Sequence[str], n_out: int = 1, out: Sequence[str] | None = None,
           **attrs: Any) -> list[str]:
        outputs = list(out) if out is not None else [self._name(op_type.lower()) for _ in range(n_out)]
        self.nodes.append(helper.make_node(op_type, list(inputs), outputs, name=self._name(op_type), **attrs))
        return outputs

    def op1(self, op_type: str, inputs: Sequence[str], out: str | None = None, **attrs: Any) -> str:
        return self.op(op_type, inputs, out=[out] if out else None, **attrs)[0]


def _query_norms(g: _GraphBuilder, queries: str) -> str:
    """max(||q||, eps) per row, [B, 1]."""
    sq = g.op1("ReduceSumSquare", [queries, g.i64(1)], keepdims=1)
    return g.op1("Max", [g.op1("Sqrt", [sq]), g.f32(NORM_EPS)])


def _normalised_queries(g: _GraphBuilder, queries: str) -> str:
    return g.op1("Div", [queries, _query_norms(g, queries)])


def _group_candidates(g: _GraphBuilder, sims: str, rows_dim: str, batch_dim: str, k: int, group: int
                      ) -> tuple[str, str, str]:
    """Candidates holding each row's top-k of ``sims`` [B, M], found through group maxima.

    The columns are cut into groups of G; any top-k element lies in one of the k groups with the
    largest maxima (else k larger maxima would beat it), so those k x G values contain the exact
    top-k. ``rows_dim`` is M and ``batch_dim`` is B, as [1] int64 tensors. A chunk whose M is not
    a multiple of G takes G = 1. Returns (values [B, min(k, M/G) * G], group ids [B, min(k, M/G)],
    G as a [1] tensor).
    """
    g_full = g.i64(group)
    divisible = g.op1("Equal", [g.op1("Mod", [rows_dim, g_full]), g.i64(0)])
    gsize = g.op1("Where", [divisible, g_full, g.i64(1)])  # [1]: G, or 1 for a ragged tail chunk
    ngroups = g.op1("Div", [rows_dim, gsize])
    grouped = g.op1("Reshape", [sims, g.op1("Concat", [batch_dim, ngroups, gsize], axis=0)])  # [B, M/G, G]
    gmax = g.op1("ReduceMax", [grouped, g.i64(2)], keepdims=0)  # [B, M/G]
    kg = g.op1("Min", [g.i64(k), ngroups])
    _, gidx = g.op("TopK", [gmax, kg], n_out=2, axis=1, largest=1, sorted=0)  # [B, kg]
    cand = g.op1("GatherND", [grouped, g.op1("Unsqueeze", [gidx, g.i64(2)])], batch_dims=1)  # [B, kg, G]
    ncand = g.op1("Mul", [kg, gsize])
    flat = g.op1("Reshape", [cand, g.op1("Concat", [batch_dim, ncand], axis=0)])  # [B, kg*G]
    return flat, gidx, gsize


def _grouped_topk(g: _GraphBuilder, sims: str, rows_dim: str, batch_dim: str, k: int, group: int) -> tuple[str, str]:
    """Exact top-k values [B, min(k, M)] and their int64 column indices, per row of ``sims``."""
    flat, gidx, gsize = _group_candidates(g, sims, rows_dim, batch_dim, k, group)
    kc = g.op1("Min", [g.i64(k), g.op1("Shape", [flat], start=1, end=2)])
    vals, pos = g.op("TopK", [flat, kc], n_out=2, axis=1, largest=1, sorted=0)  # [B, kc]
    slot = g.op1("Div", [pos, gsize])
    within = g.op1("Mod", [pos, gsize])
    grp = g.op1("GatherElements", [gidx, slot], axis=1)
    cols = g.op1("Add", [g.op1("Mul", [grp, gsize]), within])
    return vals, cols


def _finishing(g: _GraphBuilder, topk: str, k: int) -> None:
    """novelty, scores, total_evi and band from the running top-k and the host features."""
    missing = g.op1("IsInf", [topk], detect_negative=1, detect_positive=0)
    valid = g.op1("Not", [missing])
    zero, one = g.f32(0.0), g.f32(1.0)
    total_sim = g.op1("ReduceSum", [g.op1("Where", [valid, topk, zero]), g.i64(1)], keepdims=0)
    count = g.op1("ReduceSum", [g.op1("Cast", [valid], to=TensorProto.FLOAT), g.i64(1)], keepdims=0)
    mean_sim = g.op1("Div", [total_sim, g.op1("Max", [count, one])])
    novelty_nn = g.op1("Where", [g.op1("Greater", [count, zero]), g.op1("Sub", [one, mean_sim]), one])
    novelty_raw = g.op1("Where", [io.IN_HAS_EMBEDDING, novelty_nn, g.f32(0.5)])
    novelty = g.op1("Clip", [novelty_raw, zero, one], out=io.OUT_NOVELTY)

    feats = g.op1("Clip", [io.IN_FEATURES, zero, one])
    fresh, rest = g.op("Split", [feats, g.i64(1, N_FEATURES - 1)], n_out=2, axis=1)
    scores = g.op1("Concat", [fresh, g.op1("Unsqueeze", [novelty, g.i64(1)]), rest], out=io.OUT_SCORES, axis=1)
    total = g.op1("Clip", [g.op1("MatMul", [scores, io.IN_WEIGHTS]), zero, one], out=io.OUT_TOTAL)

    reached = g.op1("GreaterOrEqual", [
        g.op1("Add", [g.op1("Unsqueeze", [total, g.i64(1)]), g.f32(BAND_EPSILON)]), io.IN_CUTOFFS,
    ])  # [B, 3]
    n_reached = g.op1("ReduceSum", [g.op1("Cast", [reached], to=TensorProto.INT64), g.i64(1)], keepdims=0)
    g.op1("Sub", [g.i64(N_BANDS - 1), n_reached], out=io.OUT_BAND)


def _model(g: _GraphBuilder, name: str, inputs: list[onnx.ValueInfoProto], outputs: list[onnx.ValueInfoProto],
           meta: dict[str, str]) -> onnx.ModelProto:
    graph = helper.make_graph(g.nodes, name, inputs, outputs, g.initializers)
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name=PRODUCER, producer_version="1",
        ir_version=IR_VERSION,
    )
    helper.set_model_props(model, dict(sorted(meta.items())))
    onnx.checker.check_model(model, full_check=True)
    return model


def build_graph(corpus_dtype: io.CorpusDType = "float32", *, k: int = DEFAULT_K, group: int = DEFAULT_GROUP,
                dim: int = DEFAULT_DIM) -> onnx.ModelProto:
    """The EVI model for a float32 or float16 corpus (see the module docstring)."""
    if corpus_dtype not in _ELEM:
        raise ValueError(f"corpus_dtype must be float32 or float16 (int8: build_candidate_model), got {corpus_dtype!r}")
    if k < 1 or group < 1 or dim < 1:
        raise ValueError("k, group and dim must be positive")
    elem = _ELEM[corpus_dtype]
    g = _GraphBuilder()
    batch_dim = g.op1("Shape", [io.IN_QUERIES], start=0, end=1)
    rows_dim = g.op1("Shape", [io.IN_CORPUS], start=0, end=1)
    if elem == TensorProto.FLOAT:
        # rank on the raw dot products (a positive per-row scale keeps the order) and divide only
        # the k x G candidates by ||q||: cheaper than normalising [B, D] queries on every call
        sims = g.op1("Gemm", [io.IN_QUERIES, io.IN_CORPUS], transB=1)  # [B, M] = ||q|| * cosine
        cand, _, _ = _group_candidates(g, sims, rows_dim, batch_dim, k, group)  # [B, <= k*G] holding the top-k
        cand = g.op1("Div", [cand, _query_norms(g, io.IN_QUERIES)])
    else:
        # fp16: normalise first, so the Gemm's operands and results stay in fp16's range
        qn = g.op1("Cast", [_normalised_queries(g, io.IN_QUERIES)], to=elem)
        sims = g.op1("Gemm", [qn, io.IN_CORPUS], transB=1)  # [B, M] cosine similarities
        cand, _, _ = _group_candidates(g, sims, rows_dim, batch_dim, k, group)
        cand = g.op1("Cast", [cand], to=TensorProto.FLOAT)
    merged = g.op1("Concat", [io.IN_PREV_TOPK, cand], axis=1)  # one TopK merges the chunk in
    topk = g.op("TopK", [merged, g.i64(k)], out=[io.OUT_TOPK, "topk_pos"], axis=1, largest=1, sorted=1)[0]
    _finishing(g, topk, k)

    f32 = TensorProto.FLOAT
    inputs = [
        helper.make_tensor_value_info(io.IN_QUERIES, f32, ["batch", dim]),
        helper.make_tensor_value_info(io.IN_CORPUS, elem, ["rows", dim]),
        helper.make_tensor_value_info(io.IN_PREV_TOPK, f32, ["batch", k]),
        helper.make_tensor_value_info(io.IN_FEATURES, f32, ["batch", N_FEATURES]),
        helper.make_tensor_value_info(io.IN_HAS_EMBEDDING, TensorProto.BOOL, ["batch"]),
        helper.make_tensor_value_info(io.IN_WEIGHTS, f32, [N_SCORES]),
        helper.make_tensor_value_info(io.IN_CUTOFFS, f32, [N_BANDS - 1]),
    ]
    outputs = [
        helper.make_tensor_value_info(io.OUT_TOPK, f32, ["batch", k]),
        helper.make_tensor_value_info(io.OUT_NOVELTY, f32, ["batch"]),
        helper.make_tensor_value_info(io.OUT_SCORES, f32, ["batch", N_SCORES]),
        helper.make_tensor_value_info(io.OUT_TOTAL, f32, ["batch"]),
        helper.make_tensor_value_info(io.OUT_BAND, TensorProto.INT64, ["batch"]),
    ]
    meta = {io.META_FORMAT: io.FORMAT_VERSION, io.META_CORPUS_DTYPE: corpus_dtype, io.META_K: str(k),
            io.META_DIM: str(dim), io.META_GROUP: str(group)}
    return _model(g, f"hallmark_evi_{corpus_dtype}", inputs, outputs, meta)


def build_candidate_graph(*, candidates: int = DEFAULT_CANDIDATES, group: int = DEFAULT_GROUP,
                          dim: int = DEFAULT_DIM) -> onnx.ModelProto:
    """The int8 candidate generator: approximate top-``candidates`` corpus rows per query.

    Inputs: queries_u8 uint8 [B, D] (each normalised query row quantised by the runner to [1, 127]
    around 64 with its own scale: 7 bits keep AVX2's u8*s8 pair sums clear of int16 saturation);
    corpus int8 [D, M] (a chunk of the normalised corpus, quantised symmetrically with one scale for
    the whole corpus, transposed); chunk_offset int64 [1] (the chunk's first row); prev_cand int32
    [B, C] and prev_idx int64 [B, C] (running candidates: INT32_MIN / -1 before the first chunk).
    Outputs: cand int32 [B, C], cand_idx int64 [B, C]. One scale per query row and one for the
    corpus keep a query's integer dot products comparable across chunks; the runner re-ranks the
    final candidates exactly in fp32.
    """
    g = _GraphBuilder()
    batch_dim = g.op1("Shape", [io.IN_QUERIES_U8], start=0, end=1)
    rows_dim = g.op1("Shape", [io.IN_CORPUS], start=1, end=2)
    sims = g.op1("MatMulInteger", [io.IN_QUERIES_U8, io.IN_CORPUS, g.const(io.INT8_QUERY_ZERO_POINT, np.uint8)])
    vals, cols = _grouped_topk(g, sims, rows_dim, batch_dim, candidates, group)
    global_idx = g.op1("Add", [cols, "chunk_offset"])
    merged_vals = g.op1("Concat", ["prev_cand", vals], axis=1)
    merged_idx = g.op1("Concat", ["prev_idx", global_idx], axis=1)
    top_vals, pos = g.op("TopK", [merged_vals, g.i64(candidates)], out=["cand", "cand_pos"], axis=1, largest=1,
                         sorted=1)
    del top_vals
    g.op1("GatherElements", [merged_idx, pos], out="cand_idx", axis=1)
    inputs = [
        helper.make_tensor_value_info(io.IN_QUERIES_U8, TensorProto.UINT8, ["batch", dim]),
        helper.make_tensor_value_info(io.IN_CORPUS, TensorProto.INT8, [dim, "rows"]),
        helper.make_tensor_value_info("chunk_offset", TensorProto.INT64, [1]),
        helper.make_tensor_value_info("prev_cand", TensorProto.INT32, ["batch", candidates]),
        helper.make_tensor_value_info("prev_idx", TensorProto.INT64, ["batch", candidates]),
    ]
    outputs = [
        helper.make_tensor_value_info("cand", TensorProto.INT32, ["batch", candidates]),
        helper.make_tensor_value_info("cand_idx", TensorProto.INT64, ["batch", candidates]),
    ]
    meta = {io.META_FORMAT: io.FORMAT_VERSION, io.META_CORPUS_DTYPE: "int8", io.META_CANDIDATES: str(candidates),
            io.META_DIM: str(dim), io.META_GROUP: str(group)}
    return _model(g, "hallmark_evi_int8_candidates", inputs, outputs, meta)


def _write(model: onnx.ModelProto, path: str | os.PathLike[str]) -> str:
    data = model.SerializeToString(deterministic=True)
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(target)
    return hashlib.sha256(data).hexdigest()


def build_model(path: str | os.PathLike[str], *, corpus_dtype: io.CorpusDType = "float32", k: int = DEFAULT_K,
                group: int = DEFAULT_GROUP, dim: int = DEFAULT_DIM) -> str:
    """Write the EVI model to ``path``; return the sha256 hex digest of the file (deterministic)."""
    return _write(build_graph(corpus_dtype, k=k, group=group, dim=dim), path)


def build_candidate_model(path: str | os.PathLike[str], *, candidates: int = DEFAULT_CANDIDATES,
                          group: int = DEFAULT_GROUP, dim: int = DEFAULT_DIM) -> str:
    """Write the int8 candidate model to ``path``; return its sha256 hex digest."""
    return _write(build_candidate_graph(candidates=candidates, group=group, dim=dim), path)


MODEL_FILE = io.MODEL_FILE  # the name the model registry expects
GPU_FILE = "evi_fp16.onnx"
CANDIDATES_FILE = "evi_int8_candidates.onnx"


def write_package(out_dir: str | os.PathLike[str], *, variants: bool = True) -> dict[str, str]:
    """Write a model package's files to ``out_dir``: ``evi.onnx`` (float32), with ``variants``
    ``evi_fp16.onnx`` and ``evi_int8_candidates.onnx``, and the ``hallmark.toml`` that declares
    each file's sha256 (``[model]``, ``[model.gpu]``, ``[model.candidates]``) plus a ``[smoke]``
    check of ``evi.onnx``'s digest. Archive the folder and release it as any package; then
    ``POST /scoring/model {packageId}`` registers it. Returns file name -> sha256."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    digests = {MODEL_FILE: build_model(out / MODEL_FILE)}
    if variants:
        digests[GPU_FILE] = build_model(out / GPU_FILE, corpus_dtype="float16")
        digests[CANDIDATES_FILE] = build_candidate_model(out / CANDIDATES_FILE)
    digest = digests[MODEL_FILE]
    check = (f"import hashlib; d = hashlib.sha256(open('{MODEL_FILE}', 'rb').read()).hexdigest(); "
             f"assert d == '{digest}', d; print('{MODEL_FILE} sha256', d)")
    toml = f'[model]\nfile = "{MODEL_FILE}"\nsha256 = "{digest}"\nformat = "hallmark.evi/1"\n\n'
    if variants:
        toml += (f'[model.gpu]\nfile = "{GPU_FILE}"\nsha256 = "{digests[GPU_FILE]}"\n\n'
                 f'[model.candidates]\nfile = "{CANDIDATES_FILE}"\nsha256 = "{digests[CANDIDATES_FILE]}"\n\n')
    toml += f'[smoke]\ncommand = ["python3", "-c", "{check}"]\ntimeout_s = 20\nmemory_mb = 256\n'
    (out / "hallmark.toml").write_text(toml)
    return digests


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m gpu_batch.evi_model OUT_DIR [--no-variants]``: write a releasable model package
    folder (:func:`write_package`), print ``<digest>  <file>`` per model file."""
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--no-variants", action="store_true", help="only evi.onnx (no fp16 / int8 variants)")
    args = parser.parse_args(argv)
    for name, digest in write_package(args.out_dir, variants=not args.no_variants).items():
        print(f"{digest}  {name}")
    print(f"wrote {args.out_dir / 'hallmark.toml'}; archive the folder (tar -czf evi-model-1.0.0.tar.gz -C "
          f"{args.out_dir} .) and release it")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
