"""EVI scoring benchmark: ours (onnxruntime, chunked) vs FAISS IndexFlatIP vs the bare GEMM.

    python benchmarks/scoring.py --quick          # N=100k, B=1024 (under 2 minutes)
    python benchmarks/scoring.py                  # B=4096 at N=100k and N=1M
    python benchmarks/scoring.py --provider cuda  # the fp16 model on the CUDA provider

Timed in the same run, interleaved, best of ``--repeats``:

- ours:  ``EviRunner.score`` -> EVIEnvelopes for the whole batch (the runners' path: normalised
         queries, chunked Gemm + exact top-k, novelty, total_evi, band), corpus prepared once;
- faiss: ``IndexFlatIP.search(queries, k)`` on the same normalised corpus, default threading;
- gemm:  the bare fp32 ``Q @ C.T`` in numpy (into a reused buffer, 65,536 corpus rows at a time
         so a 4096 x 1M product fits in memory): the floor, since similarity is the work;
- int8:  the int8 candidate mode (MatMulInteger candidates, exact fp32 re-rank, EVI finishing).

Accuracy: the numpy float64 oracle (``hallmark.scoring.reference``) on the first ``--check``
queries. Peak RSS is the process high-water mark while ours runs (it includes the corpus and the
FAISS index, which are resident the whole time); ``ours_extra_mb`` is what scoring adds on top.
The last line is ``RESULT vs_faiss=.. vs_gemm=.. events_per_s=.. peak_rss_mb=.. max_abs_err=..
int8_vs_faiss=..`` (for the largest N of the run).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


def _threads_from_argv(argv: list[str]) -> int | None:
    """``--threads N`` must act before numpy/FAISS start their thread pools."""
    for i, a in enumerate(argv):
        if a == "--threads" and i + 1 < len(argv):
            return int(argv[i + 1])
        if a.startswith("--threads="):
            return int(a.split("=", 1)[1])
    return None


THREADS = _threads_from_argv(sys.argv)
if THREADS:
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(THREADS)

import numpy as np  # noqa: E402
import numpy.typing as npt  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gpu_batch.evi_model import build_candidate_model, build_model  # noqa: E402
from hallmark.scoring.features import EventFeatures  # noqa: E402
from hallmark.scoring.model_io import CorpusDType  # noqa: E402
from hallmark.scoring.reference import reference_scores  # noqa: E402
from hallmark.scoring.runner import CUDA, EviRunner, cpu_count  # noqa: E402

D = 768
K = 10
GEMM_CHUNK = 65_536


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def reset_peak_rss() -> None:
    # not Linux, or not allowed: the peak then covers the whole process
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


def rss_mb() -> float:
    return _status_kb("VmRSS") / 1024


def peak_rss_mb() -> float:
    return _status_kb("VmHWM") / 1024


def random_unit_rows(rng: np.random.Generator, n: int, block: int = 131_072) -> npt.NDArray[np.float32]:
    out = np.empty((n, D), dtype=np.float32)
    for s in range(0, n, block):
        b = rng.standard_normal((min(block, n - s), D), dtype=np.float32)
        b /= np.linalg.norm(b, axis=1, keepdims=True)
        out[s:s + b.shape[0]] = b
    return out


@dataclass
class Case:
    n: int
    b: int
    t: dict[str, float]
    extra: dict[str, float]


def clock() -> float:
    """Wall time; with ``--threads 1`` the calling thread's CPU time, which other processes on a
    shared machine cannot inflate (every method then computes in the calling thread)."""
    return time.thread_time() if THREADS == 1 else time.perf_counter()


SETTLE_S = 0.5
"""Pause before each timed call, outside the timing: the previous method's worker threads keep
spinning for a while after their parallel region (OpenMP's blocktime in FAISS and OpenBLAS,
onnxruntime's spin-wait) and would otherwise steal the 2 cores from whichever method runs next."""


def best_of(repeats: int, fns: dict[str, Callable[[], object]]) -> dict[str, float]:
    best = {name: float("inf") for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            gc.collect()
            time.sleep(SETTLE_S)
            t0 = clock()
            fn()
            best[name] = min(best[name], clock() - t0)
    return best


def run_case(n: int, b: int, args: argparse.Namespace, workdir: Path) -> Case:
    import faiss

    rng = np.random.default_rng(20261122 + n + b)
    t0 = time.perf_counter()
    corpus = random_unit_rows(rng, n)
    queries = rng.standard_normal((b, D), dtype=np.float32)
    feats = rng.random((b, 4), dtype=np.float32)
    has = np.ones(b, dtype=np.bool_)
    events = [EventFeatures(event_id=f"{i:08x}-0000-4000-8000-000000000000", freshness=float(f[0]),
                            impact=float(f[1]), confidence=float(f[2]), gap=float(f[3]), has_embedding=True)
              for i, f in enumerate(feats)]
    print(f"\n== N={n:,} B={b:,} k={K} D={D}  (data {time.perf_counter() - t0:.1f} s)", flush=True)

    cuda = args.provider == "cuda"
    dtype: CorpusDType = "float16" if cuda else "float32"
    model = workdir / f"evi_{dtype}.onnx"
    digest = build_model(model, corpus_dtype=dtype)
    providers = [CUDA] if cuda else ["CPUExecutionProvider"]
    runner = EviRunner(model, digest, providers, chunk_rows=args.chunk_rows, intra_op_threads=THREADS)
    t0 = time.perf_counter()
    prepared = runner.prepare_corpus(corpus, normalized=True)
    t_prep = time.perf_counter() - t0

    qn = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    index = faiss.IndexFlatIP(D)
    index.add(corpus)
    gemm_buf = np.empty((b, min(GEMM_CHUNK, n)), dtype=np.float32)

    def gemm() -> None:
        for s in range(0, n, GEMM_CHUNK):
            c = corpus[s:s + GEMM_CHUNK]
            np.matmul(qn, c.T, out=gemm_buf[:, :c.shape[0]])

    fns: dict[str, Callable[[], object]] = {
        "gemm": gemm,
        "faiss": lambda: index.search(qn, K),
        "ours": lambda: runner.score(events, queries, prepared),
    }
    int8_runner: EviRunner | None = None
    int8_prepared = None
    t_prep8 = 0.0
    if args.int8 and not cuda:
        cand = workdir / "evi_int8_candidates.onnx"
        cdigest = build_candidate_model(cand, candidates=args.candidates)
        int8_runner = EviRunner(model, digest, providers, candidate_model=(cand, cdigest), intra_op_threads=THREADS,
                                int8_chunk_rows=args.int8_chunk_rows)
        t0 = time.perf_counter()
        int8_prepared = int8_runner.prepare_corpus(corpus, normalized=True)
        t_prep8 = time.perf_counter() - t0
        fns["int8"] = lambda: int8_runner.score(events, queries, int8_prepared)

    gc.collect()
    reset_peak_rss()
    rss_before = rss_mb()
    fns["ours"]()  # first run: its arena and buffers are what scoring adds to the process
    peak = peak_rss_mb()
    for fn in fns.values():  # warm-up: first-touch of buffers, thread pools, arenas
        fn()
    times = best_of(args.repeats, fns)  # interleaved: every method sees the same machine state

    # accuracy against the float64 oracle on a subset of the queries
    m = min(args.check, b)
    ref = reference_scores(feats[:m], has[:m], queries[:m], corpus, k=K, normalise_corpus=False)
    got = runner.score_arrays(feats[:m], has[:m], queries[:m], prepared)
    err_nov = float(np.abs(got.novelty - ref.novelty).max())
    err_total = float(np.abs(got.total_evi - ref.total_evi).max())
    err_scores = float(np.abs(got.scores - ref.scores).max())
    err_topk = float(np.abs(got.topk - ref.topk).max())
    extra: dict[str, float] = {
        "prep_s": t_prep, "peak_rss_mb": peak, "ours_extra_mb": peak - rss_before,
        "max_abs_err": max(err_nov, err_total, err_scores), "err_topk": err_topk,
    }
    flops = 2.0 * b * n * D
    print(f"   gemm   {times['gemm']:8.3f} s  {flops / times['gemm'] / 1e9:7.1f} GFLOP/s  (numpy fp32 Q @ C.T)")
    print(f"   faiss  {times['faiss']:8.3f} s  {times['faiss'] / times['gemm']:6.3f}x gemm  (IndexFlatIP, "
          f"{faiss.omp_get_max_threads()} threads)")
    print(f"   ours   {times['ours']:8.3f} s  {times['ours'] / times['gemm']:6.3f}x gemm  "
          f"{times['ours'] / times['faiss']:6.3f}x faiss  {b / times['ours']:,.0f} events/s  "
          f"({flops / times['ours'] / 1e9:.1f} GFLOP/s effective; {runner.providers[0]}, chunk "
          f"{args.chunk_rows or 'auto'}; prepare {t_prep:.3f} s)")
    print(f"   ours   peak RSS {peak:,.0f} MB (+{peak - rss_before:,.0f} MB over the resident corpus/index); "
          f"max |err| vs oracle on {m} queries: novelty {err_nov:.2e} total {err_total:.2e} "
          f"scores {err_scores:.2e} topk {err_topk:.2e}")
    if int8_runner is not None and int8_prepared is not None:
        got8 = int8_runner.score_arrays(feats[:m], has[:m], queries[:m], int8_prepared)
        err8 = float(np.abs(got8.novelty - ref.novelty).max())
        found = np.isclose(got8.topk[:, :, None], ref.topk[:, None, :], rtol=0, atol=1e-6).any(axis=1)
        recall = float(found.mean())
        extra.update(int8_err=err8, int8_recall=recall, int8_prep_s=t_prep8)
        print(f"   int8   {times['int8']:8.3f} s  {times['faiss'] / times['int8']:6.3f}x faster than faiss  "
              f"{times['gemm'] / times['int8']:6.3f}x faster than gemm  max |novelty err| {err8:.2e}  "
              f"recall@{K} {recall:.4f}  ({args.candidates} candidates/query, quantise {t_prep8:.2f} s)")
    if cuda:
        extra.update(sim_tflops=similarity_tflops(corpus, queries, args))
    return Case(n, b, times, extra)


def similarity_tflops(corpus: npt.NDArray[np.float32], queries: npt.NDArray[np.float32],
                      args: argparse.Namespace) -> float:
    """The similarity stage alone on the GPU: fp16 Gemm over device-resident chunks, TFLOP/s."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Gemm", ["q", "c"], ["s"], transB=1),
         helper.make_node("ReduceMax", ["s"], ["o"], keepdims=0)], "sim",
        [helper.make_tensor_value_info("q", TensorProto.FLOAT16, ["B", D]),
         helper.make_tensor_value_info("c", TensorProto.FLOAT16, ["M", D])],
        [helper.make_tensor_value_info("o", TensorProto.FLOAT16, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)], ir_version=10)
    onnx.checker.check_model(model)
    sess = ort.InferenceSession(model.SerializeToString(), providers=[CUDA])
    rows = args.chunk_rows or 65_536
    q = ort.OrtValue.ortvalue_from_numpy(
        (queries / np.linalg.norm(queries, axis=1, keepdims=True)).astype(np.float16), "cuda", 0)
    chunks = [ort.OrtValue.ortvalue_from_numpy(corpus[s:s + rows].astype(np.float16), "cuda", 0)
              for s in range(0, corpus.shape[0], rows)]
    binding = sess.io_binding()
    binding.bind_ortvalue_input("q", q)

    def run() -> None:
        for c in chunks:
            binding.bind_ortvalue_input("c", c)
            binding.bind_output("o", "cuda", 0)
            sess.run_with_iobinding(binding)
        binding.get_outputs()[0].numpy()  # synchronise

    run()
    t = best_of(args.repeats, {"sim": run})["sim"]
    tflops = 2.0 * queries.shape[0] * corpus.shape[0] * D / t / 1e12
    print(f"   sim    {t:8.3f} s  {tflops:7.1f} TFLOP/s fp16 (similarity stage alone, {len(chunks)} chunks)")
    return tflops


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="EVI scoring benchmark")
    p.add_argument("--quick", action="store_true", help="N=100k, B=1024 only")
    p.add_argument("--n", type=int, action="append", help="corpus sizes (repeatable)")
    p.add_argument("--b", type=int, help="batch size")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--chunk-rows", type=int, default=None, help="corpus rows per model call (default: auto)")
    p.add_argument("--check", type=int, default=256, help="queries checked against the float64 oracle")
    p.add_argument("--candidates", type=int, default=16, help="int8 mode: candidates per query")
    p.add_argument("--no-int8", dest="int8", action="store_false")
    p.add_argument("--int8-chunk-rows", type=int, default=16_384)
    p.add_argument("--provider", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--threads", type=int, default=None,
                   help="threads for every method (default: all cores); 1 switches to thread CPU time")
    args = p.parse_args(argv)
    sizes = args.n or ([100_000] if args.quick else [100_000, 1_000_000])
    batch = args.b or (1024 if args.quick else 4096)
    import onnxruntime as ort

    print(f"EVI scoring benchmark: {platform.processor() or platform.machine()}, {cpu_count()} cores, "
          f"onnxruntime {ort.__version__}, numpy {np.__version__}, provider {args.provider}, "
          f"load average {loadavg()}"
          + (f"; {THREADS} thread(s), timed by {'thread CPU time' if THREADS == 1 else 'wall clock'}"
             if THREADS else ""))
    cases = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            cases.append(run_case(n, batch, args, Path(tmp)))
    print(f"load average at the end: {loadavg()}")
    for c in cases:
        t = c.t
        int8 = f"{t['faiss'] / t['int8']:.3f}" if "int8" in t else "nan"
        print(f"RESULT vs_faiss={t['ours'] / t['faiss']:.3f} vs_gemm={t['ours'] / t['gemm']:.3f} "
              f"events_per_s={c.b / t['ours']:.0f} peak_rss_mb={c.extra['peak_rss_mb']:.0f} "
              f"max_abs_err={c.extra['max_abs_err']:.2e} int8_vs_faiss={int8}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
