"""The EVI ONNX model (gpu_batch.evi_model) run by EviRunner on the CPU, against the numpy oracle."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import jsonschema
import numpy as np
import numpy.typing as npt
import onnxruntime as ort
import pytest

from gpu_batch.evi_model import build_candidate_model, build_model
from hallmark.scoring import runner as runner_mod
from hallmark.scoring.features import BandCutoffs, EventFeatures, EviWeights, ScoringConfig
from hallmark.scoring.reference import reference_scores
from hallmark.scoring.runner import (
    RERANK_QUERIES,
    EviRunner,
    ModelDigestMismatch,
    ScoreArrays,
    quantise_corpus,
)

ROOT = Path(__file__).resolve().parents[2]
D = 768


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, str]]:
    out = tmp_path_factory.mktemp("models")
    return {
        "float32": (out / "evi_fp32.onnx", build_model(out / "evi_fp32.onnx")),
        "float16": (out / "evi_fp16.onnx", build_model(out / "evi_fp16.onnx", corpus_dtype="float16")),
        "int8": (out / "cand.onnx", build_candidate_model(out / "cand.onnx")),
    }


@pytest.fixture(scope="module")
def runner(models: dict[str, tuple[Path, str]]) -> EviRunner:
    path, digest = models["float32"]
    return EviRunner(path, digest, ["CPUExecutionProvider"])


def batch(rng: np.random.Generator, b: int, n: int, missing: float = 0.15
          ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.bool_], npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    feats = rng.random((b, 4), dtype=np.float32)
    has = rng.random(b) >= missing
    queries = rng.standard_normal((b, D), dtype=np.float32) * rng.uniform(0.1, 5.0, (b, 1)).astype(np.float32)
    queries[~has] = 0.0
    corpus = rng.standard_normal((n, D), dtype=np.float32) * 2.0  # not normalised: the runner does it
    corpus[: n // 4] += queries[rng.integers(0, b, n // 4)]  # some near neighbours
    return feats, has, queries, corpus


def assert_matches_reference(got: ScoreArrays, ref_args: dict[str, object], atol: float = 1e-5) -> None:
    ref = reference_scores(**ref_args)  # type: ignore[arg-type]
    np.testing.assert_allclose(got.novelty, ref.novelty, rtol=0, atol=atol)
    np.testing.assert_allclose(got.scores, ref.scores, rtol=0, atol=atol)
    np.testing.assert_allclose(got.total_evi, ref.total_evi, rtol=0, atol=atol)
    finite = np.isfinite(ref.topk)
    assert (np.isfinite(got.topk) == finite).all()
    np.testing.assert_allclose(got.topk[finite], ref.topk[finite], rtol=0, atol=atol)
    # bands agree wherever the total is not within float noise of a cut-off
    cut = np.asarray(ScoringConfig().cutoffs.as_tuple() if "cutoffs" not in ref_args
                     else ref_args["cutoffs"].as_tuple())  # type: ignore[attr-defined]
    clear = (np.abs(ref.total_evi[:, None] - cut[None, :]) > 1e-5).all(axis=1)
    assert (got.band[clear] == ref.band[clear]).all()


# --- the model file ----------------------------------------------------------------------------


def test_build_is_deterministic_and_returns_the_file_digest(tmp_path: Path, models: dict[str, tuple[Path, str]]
                                                             ) -> None:
    for dtype in ("float32", "float16"):
        path, digest = models[dtype]
        assert digest == hashlib.sha256(path.read_bytes()).hexdigest()
        again = build_model(tmp_path / f"again_{dtype}.onnx", corpus_dtype=dtype)  # type: ignore[arg-type]
        assert again == digest
    assert build_candidate_model(tmp_path / "c.onnx") == models["int8"][1]
    assert models["float32"][1] != models["float16"][1]


def test_digest_mismatch_is_refused(tmp_path: Path, models: dict[str, tuple[Path, str]]) -> None:
    path, digest = models["float32"]
    with pytest.raises(ModelDigestMismatch):
        EviRunner(path, "0" * 64)
    tampered = tmp_path / "tampered.onnx"
    tampered.write_bytes(path.read_bytes() + b"\x00")
    with pytest.raises(ModelDigestMismatch):
        EviRunner(tampered, digest)
    with pytest.raises(ModelDigestMismatch):
        EviRunner(path, "not-a-digest")
    with pytest.raises(ModelDigestMismatch):  # the candidate model is checked too
        EviRunner(path, digest, candidate_model=(models["int8"][0], digest))
    assert EviRunner(path, "sha256:" + digest.upper()).digest == digest


def test_refusal_happens_before_onnxruntime_sees_the_file(tmp_path: Path, models: dict[str, tuple[Path, str]],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[object] = []
    monkeypatch.setattr(runner_mod.ort, "InferenceSession", lambda *a, **k: seen.append(a))
    with pytest.raises(ModelDigestMismatch):
        EviRunner(models["float32"][0], "f" * 64)
    assert seen == []


def test_providers_cuda_first_when_available(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    assert runner_mod.default_providers() == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CPUExecutionProvider"])
    assert runner_mod.default_providers() == ["CPUExecutionProvider"]


def test_runner_reads_the_model_interface(runner: EviRunner, models: dict[str, tuple[Path, str]]) -> None:
    assert (runner.k, runner.dim, runner.corpus_dtype, runner.device) == (10, D, "float32", "cpu")
    with pytest.raises(ValueError):  # the model finds k = 10 neighbours
        EviRunner(*models["float32"], config=ScoringConfig(k=5))


# --- against the numpy oracle --------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_onnx_matches_numpy_reference_on_random_data(runner: EviRunner, seed: int) -> None:
    rng = np.random.default_rng(seed)
    feats, has, queries, corpus = batch(rng, b=97, n=2500 + 37 * seed)
    got = runner.score_arrays(feats, has, queries, corpus)
    assert_matches_reference(got, {"features": feats, "has_embedding": has, "queries": queries, "corpus": corpus})


@pytest.mark.parametrize("chunk_rows", [16, 100, 256, 1000, 1024, 4096])
def test_chunked_equals_unchunked(models: dict[str, tuple[Path, str]], chunk_rows: int) -> None:
    rng = np.random.default_rng(7)
    feats, has, queries, corpus = batch(rng, b=33, n=3001)
    path, digest = models["float32"]
    whole = EviRunner(path, digest, chunk_rows=10_000).score_arrays(feats, has, queries, corpus)
    chunked = EviRunner(path, digest, chunk_rows=chunk_rows).score_arrays(feats, has, queries, corpus)
    for a, b in zip((whole.topk, whole.novelty, whole.scores, whole.total_evi),
                    (chunked.topk, chunked.novelty, chunked.scores, chunked.total_evi), strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-5)  # fp32 Gemm blocking differs with the shape
    assert (whole.band == chunked.band).all()


@pytest.mark.parametrize("query_block", [1, 7, 32, 1024])
def test_query_blocks_equal_one_block(models: dict[str, tuple[Path, str]], query_block: int) -> None:
    rng = np.random.default_rng(17)
    feats, has, queries, corpus = batch(rng, b=40, n=1100)
    path, digest = models["float32"]
    whole = EviRunner(path, digest, chunk_rows=256).score_arrays(feats, has, queries, corpus)
    blocked = EviRunner(path, digest, chunk_rows=256, query_block=query_block).score_arrays(
        feats, has, queries, corpus)
    np.testing.assert_allclose(blocked.topk, whole.topk, rtol=0, atol=1e-5)
    np.testing.assert_allclose(blocked.total_evi, whole.total_evi, rtol=0, atol=1e-5)
    assert blocked.band.shape == (40,) and blocked.scores.shape == (40, 5)


def test_io_binding_path_matches(models: dict[str, tuple[Path, str]]) -> None:
    rng = np.random.default_rng(8)
    feats, has, queries, corpus = batch(rng, b=20, n=1500)
    path, digest = models["float32"]
    plain = EviRunner(path, digest, chunk_rows=512).score_arrays(feats, has, queries, corpus)
    bound = EviRunner(path, digest, chunk_rows=512, use_io_binding=True).score_arrays(feats, has, queries, corpus)
    np.testing.assert_array_equal(plain.scores, bound.scores)
    np.testing.assert_array_equal(plain.band, bound.band)


def test_fp16_model_runs_on_cpu(models: dict[str, tuple[Path, str]]) -> None:
    rng = np.random.default_rng(9)
    feats, has, queries, corpus = batch(rng, b=16, n=700)
    path, digest = models["float16"]
    r = EviRunner(path, digest, ["CPUExecutionProvider"])
    prepared = r.prepare_corpus(corpus)
    assert prepared.host.dtype == np.float16
    got = r.score_arrays(feats, has, queries, prepared)
    # the oracle on the same fp16-rounded corpus; fp16 similarities are good to ~1e-3
    assert_matches_reference(got, {"features": feats, "has_embedding": has, "queries": queries,
                                   "corpus": prepared.host.astype(np.float64), "normalise_corpus": False}, atol=2e-3)


def test_int8_candidate_mode_matches_exact_novelty(models: dict[str, tuple[Path, str]]) -> None:
    rng = np.random.default_rng(10)
    feats, has, queries, corpus = batch(rng, b=40, n=3000)
    path, digest = models["float32"]
    r = EviRunner(path, digest, candidate_model=models["int8"])
    got = r.score_arrays(feats, has, queries, corpus)
    ref = reference_scores(feats, has, queries, corpus)
    assert np.abs(got.novelty - ref.novelty).max() <= 0.005
    # near-duplicates are always found, and found values are exact
    np.testing.assert_allclose(got.topk[:, 0][has], ref.topk[:, 0][has], rtol=0, atol=1e-5)


@pytest.mark.parametrize(("b", "n"), [(150, 3000), (70, 5)])
def test_int8_rerank_is_exact_across_query_blocks(models: dict[str, tuple[Path, str]], b: int, n: int) -> None:
    """More queries than one re-rank block (and a ragged last block); with n=5 fewer corpus rows
    than candidates, so some candidate slots are empty (-inf)."""
    rng = np.random.default_rng(13)
    feats, has, queries, corpus = batch(rng, b=b, n=n)
    path, digest = models["float32"]
    r = EviRunner(path, digest, candidate_model=models["int8"])
    assert b > RERANK_QUERIES and b % RERANK_QUERIES
    got = r.score_arrays(feats, has, queries, corpus)
    ref = reference_scores(feats, has, queries, corpus)
    assert np.abs(got.novelty - ref.novelty).max() <= 0.005
    np.testing.assert_allclose(got.topk[:, 0][has], ref.topk[:, 0][has], rtol=0, atol=1e-5)
    if n < r.k:
        assert np.isneginf(got.topk[:, n:]).all() and np.isfinite(got.topk[:, :n][has]).all()


@pytest.mark.parametrize("rows", [1000, 64])
def test_quantise_corpus_matches_the_plain_expression(rows: int) -> None:
    rng = np.random.default_rng(14)
    host = rng.standard_normal((1000 + 37, D), dtype=np.float32)  # a ragged last chunk
    host[0, 0] = 127.0  # scale 1.0, so the next row holds exact ties
    host[3, :4] = [0.5, -0.5, 1.5, -2.5]  # ties round half to even, as np.rint does
    chunks = quantise_corpus(host, rows)
    scale = float(np.abs(host).max()) / 127
    plain = np.clip(np.rint(host / scale), -127, 127).astype(np.int8)
    assert [off for off, _ in chunks] == list(range(0, host.shape[0], rows))
    np.testing.assert_array_equal(np.concatenate([c.T for _, c in chunks]), plain)
    assert all(c.flags.c_contiguous and c.shape[0] == D for _, c in chunks)
    zeros = quantise_corpus(np.zeros((5, D), np.float32), rows)  # scale falls back to 1.0
    assert len(zeros) == 1 and not zeros[0][1].any()


# --- the edge cases of novelty -------------------------------------------------------------------


def test_empty_corpus_gives_novelty_one(runner: EviRunner) -> None:
    rng = np.random.default_rng(11)
    feats, has, queries, _ = batch(rng, b=12, n=0, missing=0.0)
    has[0] = False
    got = runner.score_arrays(feats, has, queries, np.zeros((0, D), np.float32))
    assert got.novelty[1:].tolist() == [1.0] * 11
    assert got.novelty[0] == 0.5
    assert np.isneginf(got.topk).all()


def test_no_embedding_gives_novelty_half(runner: EviRunner) -> None:
    rng = np.random.default_rng(12)
    feats, has, queries, corpus = batch(rng, b=8, n=500, missing=0.0)
    has[:] = False
    got = runner.score_arrays(feats, has, queries, corpus)
    assert got.novelty.tolist() == [0.5] * 8
    np.testing.assert_allclose(got.scores[:, 1], 0.5)


def test_hand_computed_novelty(runner: EviRunner) -> None:
    e = np.eye(D, dtype=np.float32)
    corpus = np.stack([e[0], e[1]])  # two rows, fewer than k = 10: the mean is over the two
    queries = np.stack([e[0] * 3.0, (e[0] + e[1]), -e[0], e[2]])
    feats = np.zeros((4, 4), np.float32)
    got = runner.score_arrays(feats, np.ones(4, bool), queries, corpus)
    # sims: (1, 0) -> 0.5; (.7071, .7071) -> 1 - .7071; (0, -1) -> 1.5 clamped to 1; (0, 0) -> 1
    np.testing.assert_allclose(got.novelty, [0.5, 1 - 2 ** -0.5, 1.0, 1.0], atol=1e-6)
    np.testing.assert_allclose(got.total_evi, 0.25 * got.novelty, atol=1e-7)


def test_band_uses_the_configured_weights_and_cutoffs(models: dict[str, tuple[Path, str]]) -> None:
    path, digest = models["float32"]
    feats = np.array([[0.0, 0.9, 0.0, 0.0], [0.0, 0.5, 0.0, 0.0]], np.float32)  # impact 0.9 / 0.5
    queries = np.zeros((2, D), np.float32)
    has = np.zeros(2, bool)  # novelty 0.5
    corpus = np.zeros((0, D), np.float32)
    impact_only = ScoringConfig(weights=EviWeights(freshness=0, novelty=0, impact=1.0, confidence=0, gap=0))
    got = EviRunner(path, digest, config=impact_only).score_arrays(feats, has, queries, corpus)
    np.testing.assert_allclose(got.total_evi, [0.9, 0.5], atol=1e-7)
    assert got.band.tolist() == [0, 2]  # instant, weekly: banded on this total, not a default-weight one
    default = EviRunner(path, digest).score_arrays(feats, has, queries, corpus)
    np.testing.assert_allclose(default.total_evi, [0.125 + 0.27, 0.125 + 0.15], atol=1e-7)
    assert default.band.tolist() == [3, 3]
    strict = ScoringConfig(weights=impact_only.weights, cutoffs=BandCutoffs(instant=0.95, same_day=0.85, weekly=0.5))
    got = EviRunner(path, digest, config=strict).score_arrays(feats, has, queries, corpus)
    assert got.band.tolist() == [1, 2]


def test_band_at_an_exact_cutoff(runner: EviRunner) -> None:
    feats = np.full((3, 4), 0.8, np.float32)
    feats[1] = 0.6
    feats[2] = 0.4
    queries = np.zeros((3, D), np.float32)
    has = np.zeros(3, bool)
    got = runner.score_arrays(feats, has, queries, np.zeros((0, D), np.float32))
    # novelty 0.5 for all: totals .75*x + .125
    np.testing.assert_allclose(got.total_evi, [0.725, 0.575, 0.425], atol=1e-7)
    assert got.band.tolist() == [1, 2, 2]
    e = np.eye(D, dtype=np.float32)
    corpus = e[1:2]
    q = (0.2 * e[1] + np.sqrt(0.96) * e[0])[None, :]  # cosine 0.2 to the only corpus row: novelty 0.8
    got = runner.score_arrays(np.full((1, 4), 0.8, np.float32), np.ones(1, bool), q, corpus)
    np.testing.assert_allclose(got.novelty, [0.8], atol=1e-6)
    np.testing.assert_allclose(got.total_evi, [0.8], atol=1e-6)
    assert got.band.tolist() == [0]  # all scores 0.8: total 0.8 reaches instant whatever the rounding


# --- envelopes -----------------------------------------------------------------------------------


def test_score_returns_valid_envelopes(runner: EviRunner) -> None:
    rng = np.random.default_rng(13)
    feats, has, queries, corpus = batch(rng, b=6, n=300)
    events = [EventFeatures(f"00000000-0000-4000-8000-00000000000{i}", float(x[0]), float(x[1]), float(x[2]),
                            float(x[3]), bool(h)) for i, (x, h) in enumerate(zip(feats, has, strict=True))]
    envelopes = runner.score(events, queries, corpus)
    schema = json.loads((ROOT / "events/schemas/EVIEnvelope.json").read_text())
    ref = reference_scores(feats, has, queries, corpus)
    for i, env in enumerate(envelopes):
        jsonschema.validate(json.loads(env.model_dump_json()), schema)
        assert env.event_id == events[i].event_id
        assert env.scores.novelty == pytest.approx(ref.novelty[i], abs=1e-5)
        assert env.total_evi == pytest.approx(ref.total_evi[i], abs=1e-5)
    assert runner.score([], np.zeros((0, D), np.float32), corpus) == []
