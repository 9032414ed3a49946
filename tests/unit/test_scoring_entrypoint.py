"""The Batch job (gpu_batch.entrypoint) against an in-memory BlobStore."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest

from gpu_batch import entrypoint
from gpu_batch.evi_model import build_candidate_model, build_model
from gpu_batch.sample_events import BASE_TS_MS, make_event
from hallmark.scoring.reference import reference_scores
from hallmark.scoring.runner import CPU, CUDA, ModelDigestMismatch, default_providers
from hallmark.scoring.schema import EVIEnvelope
from tests.fakes.scoring import InMemoryBlobStore

D = 768


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, str]:
    path = tmp_path_factory.mktemp("m") / "evi.onnx"
    digest = build_model(path)
    return path.read_bytes(), digest


def setup_store(model: tuple[bytes, str], n_events: int = 5, corpus_rows: int = 40) -> InMemoryBlobStore:
    rng = np.random.default_rng(1)
    store = InMemoryBlobStore()
    store.put("models/evi.onnx", model[0])
    events = [make_event(rng, timestamp_ms=BASE_TS_MS - i * 60_000) for i in range(n_events)]
    events[1]["payload"].pop("embeddings")
    lines = [json.dumps(e) for e in events]
    lines.insert(2, json.dumps({**events[0], "domain": "finance"}))  # an invalid line
    store.put("batches/b1.jsonl", ("\n".join(lines) + "\n").encode())
    corpus = rng.standard_normal((corpus_rows, D)).astype(np.float32)
    corpus /= np.linalg.norm(corpus, axis=1, keepdims=True)
    store.put("corpus/current.npy", entrypoint.dump_npy(corpus))
    return store


def load_npy(data: bytes) -> np.ndarray:
    return np.load(io.BytesIO(data), allow_pickle=False)


def test_run_job_scores_the_batch_and_updates_the_corpus(model: tuple[bytes, str]) -> None:
    store = setup_store(model)
    corpus_before = load_npy(store.get("corpus/current.npy"))
    result = entrypoint.run_job(store=store, batch_key="batches/b1.jsonl", model_key="models/evi.onnx",
                                model_digest=model[1], now_ms=BASE_TS_MS, corpus_max=42)
    assert (result.events, result.scored, len(result.rejected)) == (6, 5, 1)
    assert result.rejected[0].line == 3 and "domain" in result.rejected[0].reason
    assert result.output_key == "scored/b1.jsonl"
    lines = store.get("scored/b1.jsonl").decode().splitlines()
    envelopes = [EVIEnvelope.model_validate_json(line) for line in lines]
    assert len(envelopes) == 5 and sum(result.bands.values()) == 5
    # novelty against the corpus as it was before the batch
    batch = [json.loads(x) for x in store.get("batches/b1.jsonl").decode().splitlines()]
    valid = [b for b in batch if b["domain"] != "finance"]
    queries = np.array([b["payload"].get("embeddings", [0.0] * D) for b in valid], np.float32)
    has = np.array(["embeddings" in b["payload"] for b in valid])
    feats = np.array([[e.scores.freshness, e.scores.impact, e.scores.confidence, e.scores.gap] for e in envelopes])
    ref = reference_scores(feats, has, queries, corpus_before)
    np.testing.assert_allclose([e.scores.novelty for e in envelopes], ref.novelty, atol=1e-5)
    assert envelopes[1].scores.novelty == 0.5  # no embedding
    assert envelopes[0].scores.freshness == 1.0  # scored at its own timestamp
    assert envelopes[1].scores.freshness == pytest.approx(0.5 ** 0.1)  # 1 min old, 10 min half-life
    # corpus: 40 + 4 new embeddings, the most recent 42 kept, new rows normalised
    after = load_npy(store.get("corpus/current.npy"))
    assert after.shape == (42, D) and result.corpus_rows_after == 42
    np.testing.assert_allclose(after[:38], corpus_before[2:])
    np.testing.assert_allclose(np.linalg.norm(after[-4:], axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(after[-1], queries[-1] / np.linalg.norm(queries[-1]), atol=1e-6)


def test_first_batch_against_an_empty_corpus(model: tuple[bytes, str]) -> None:
    store = setup_store(model)
    del store.objects["corpus/current.npy"]
    entrypoint.run_job(store=store, batch_key="batches/b1.jsonl", model_key="models/evi.onnx",
                       model_digest=model[1], now_ms=BASE_TS_MS, output_key="out/x.jsonl")
    envelopes = [EVIEnvelope.model_validate_json(x) for x in store.get("out/x.jsonl").decode().splitlines()]
    assert [e.scores.novelty for e in envelopes] == [1.0, 0.5, 1.0, 1.0, 1.0]
    assert load_npy(store.get("corpus/current.npy")).shape == (4, D)


def test_a_model_with_the_wrong_digest_is_refused_and_nothing_is_written(model: tuple[bytes, str]) -> None:
    store = setup_store(model)
    before = dict(store.objects)
    with pytest.raises(ModelDigestMismatch):
        entrypoint.run_job(store=store, batch_key="batches/b1.jsonl", model_key="models/evi.onnx",
                           model_digest="ab" * 32)
    store.put("models/evi.onnx", model[0] + b" ")
    with pytest.raises(ModelDigestMismatch):
        entrypoint.run_job(store=store, batch_key="batches/b1.jsonl", model_key="models/evi.onnx",
                           model_digest=model[1])
    assert {k: v for k, v in store.objects.items() if k != "models/evi.onnx"} == {
        k: v for k, v in before.items() if k != "models/evi.onnx"}


def test_main_reads_the_environment(model: tuple[bytes, str], tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    mem = setup_store(model)
    store = entrypoint.DirectoryBlobStore(tmp_path)
    for key, data in mem.objects.items():
        store.put(key, data)
    env = {"BLOB_DIR": str(tmp_path), "BATCH_KEY": "batches/b1.jsonl", "MODEL_KEY": "models/evi.onnx",
           "MODEL_DIGEST": model[1], "NOW_MS": str(BASE_TS_MS), "CORPUS_MAX": "100",
           "SCORING_CONFIG": json.dumps({"cutoffs": {"instant": 0.9, "same_day": 0.7, "weekly": 0.5}})}
    assert entrypoint.main(env) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["scored"] == 5 and summary["corpusRowsAfter"] == 44
    assert (tmp_path / "scored" / "b1.jsonl").is_file()
    with pytest.raises(KeyError):
        store.get("../escape")


def test_update_corpus_keeps_the_most_recent_rows() -> None:
    old = np.arange(6 * D, dtype=np.float32).reshape(6, D)
    new = np.full((3, D), 2.0, np.float32)
    out = entrypoint.update_corpus(old, new, 4)
    assert out.shape == (4, D)
    np.testing.assert_array_equal(out[0], old[5])
    np.testing.assert_allclose(out[1:], 1 / np.sqrt(D), rtol=1e-6)
    assert entrypoint.update_corpus(old, new, 0).shape == (0, D)
    assert entrypoint.update_corpus(old, np.zeros((0, D), np.float32), 10).shape == (6, D)


@pytest.fixture(scope="module")
def variants(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[bytes, str]]:
    out = tmp_path_factory.mktemp("v")
    gpu = build_model(out / "evi_fp16.onnx", corpus_dtype="float16")
    cand = build_candidate_model(out / "evi_int8.onnx")
    return {"gpu": ((out / "evi_fp16.onnx").read_bytes(), gpu), "candidates": ((out / "evi_int8.onnx").read_bytes(), cand)}


def with_variants(store: InMemoryBlobStore, variants: dict[str, tuple[bytes, str]]) -> dict[str, tuple[str, str]]:
    refs = {}
    for name, (data, digest) in variants.items():
        store.put(f"models/{digest}.onnx", data)
        refs[name] = (f"models/{digest}.onnx", digest)
    return refs


def run(store: InMemoryBlobStore, model: tuple[bytes, str], refs: dict[str, tuple[str, str]], **kw: object
        ) -> entrypoint.JobResult:
    return entrypoint.run_job(store=store, batch_key="batches/b1.jsonl", model_key="models/evi.onnx",
                              model_digest=model[1], gpu_model=refs.get("gpu"), candidate_model=refs.get("candidates"),
                              now_ms=BASE_TS_MS, update=False, **kw)  # type: ignore[arg-type]


def envelopes_of(store: InMemoryBlobStore) -> list[EVIEnvelope]:
    return [EVIEnvelope.model_validate_json(x) for x in store.get("scored/b1.jsonl").decode().splitlines()]


def test_the_int8_mode_scores_batches_from_the_minimum_size_on(model: tuple[bytes, str],
                                                               variants: dict[str, tuple[bytes, str]]) -> None:
    store = setup_store(model, n_events=12, corpus_rows=300)
    refs = with_variants(store, variants)
    exact = run(store, model, refs, providers=[CPU])  # int8_min_batch 0: off
    exact_envs = envelopes_of(store)
    assert (exact.mode, exact.candidate_model_digest) == ("exact", "")
    above = run(store, model, refs, providers=[CPU], int8_min_batch=12)
    assert (above.mode, above.candidate_model_digest, above.model_digest) == ("int8", refs["candidates"][1], model[1])
    int8_envs = envelopes_of(store)
    np.testing.assert_allclose([e.scores.novelty for e in int8_envs], [e.scores.novelty for e in exact_envs],
                               atol=0.005)
    summary = json.loads(store.get("scored/b1.jsonl.summary.json"))
    assert summary["mode"] == "int8" and summary["candidateModelDigest"] == refs["candidates"][1]
    below = run(store, model, refs, providers=[CPU], int8_min_batch=13)  # 11 valid events + 1 rejected line
    assert below.mode == "exact" and json.loads(store.get("scored/b1.jsonl.summary.json"))["mode"] == "exact"


def test_a_tampered_candidate_model_is_refused_before_the_batch_is_read(
        model: tuple[bytes, str], variants: dict[str, tuple[bytes, str]]) -> None:
    store = setup_store(model)
    refs = with_variants(store, variants)
    store.put(refs["candidates"][0], variants["candidates"][0] + b"\0")
    store.objects.pop("batches/b1.jsonl")  # reading it would be a KeyError, not a digest refusal
    with pytest.raises(ModelDigestMismatch):
        run(store, model, refs, providers=[CPU], int8_min_batch=1)
    assert "scored/b1.jsonl" not in store.objects


@pytest.mark.filterwarnings("ignore:Specified provider 'CUDAExecutionProvider' is not in available provider names")
def test_the_gpu_variant_is_loaded_for_the_cuda_provider_only(model: tuple[bytes, str],
                                                               variants: dict[str, tuple[bytes, str]]) -> None:
    store = setup_store(model)
    refs = with_variants(store, variants)
    on_cpu = run(store, model, refs, providers=[CPU], int8_min_batch=1)
    assert on_cpu.model_digest == model[1]
    # asked for CUDA first (this onnxruntime may not have it, and then runs the same model on the
    # CPU): the float16 variant is what is loaded, and the int8 mode is not used
    on_gpu = run(store, model, refs, providers=[CUDA, CPU], int8_min_batch=1)
    assert (on_gpu.model_digest, on_gpu.mode) == (refs["gpu"][1], "exact")
    exact = [e.scores.novelty for e in envelopes_of(store)]
    run(store, model, refs, providers=[CPU])
    np.testing.assert_allclose(exact, [e.scores.novelty for e in envelopes_of(store)], atol=2e-3)
    # without a GPU variant, CUDA runs the float32 model
    assert run(store, model, {}, providers=[CUDA, CPU]).model_digest == model[1]


def test_main_reads_the_variant_environment(model: tuple[bytes, str], variants: dict[str, tuple[bytes, str]],
                                            tmp_path: Path) -> None:
    store = entrypoint.DirectoryBlobStore(tmp_path)
    mem = setup_store(model, n_events=12, corpus_rows=100)
    refs = with_variants(mem, variants)
    for key, data in mem.objects.items():
        store.put(key, data)
    env = {"BLOB_DIR": str(tmp_path), "BATCH_KEY": "batches/b1.jsonl", "MODEL_KEY": "models/evi.onnx",
           "MODEL_DIGEST": model[1], "NOW_MS": str(BASE_TS_MS), "GPU_MODEL_KEY": "", "GPU_MODEL_DIGEST": "",
           "CANDIDATE_MODEL_KEY": refs["candidates"][0], "CANDIDATE_MODEL_DIGEST": refs["candidates"][1],
           "INT8_MIN_BATCH": "2"}
    assert entrypoint.main(env) == 0
    summary = json.loads(store.get("scored/b1.jsonl.summary.json"))
    assert summary["mode"] == ("int8" if default_providers()[0] == CPU else "exact")
    with pytest.raises(ValueError, match="go together"):
        entrypoint.main({**env, "CANDIDATE_MODEL_DIGEST": ""})
