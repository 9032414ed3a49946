"""The CPU Lambda's runner does what the Batch job does: the same envelopes and corpus update from the
same bucket, and the same refusal of a model that is not the signed one (both call
``hallmark.scoring.job.run_job``; the Lambda bundle holds the layer, not gpu_batch/)."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

from gpu_batch import entrypoint
from gpu_batch.evi_model import build_model
from gpu_batch.sample_events import BASE_TS_MS, make_event
from hallmark.scoring.job import dump_npy, npy_rows, run_job
from hallmark.scoring.runner import ModelDigestMismatch
from tests.fakes.scoring import InMemoryBlobStore


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, str]:
    path = tmp_path_factory.mktemp("m") / "evi.onnx"
    digest = build_model(path)
    return path.read_bytes(), digest


def store(model: tuple[bytes, str]) -> InMemoryBlobStore:
    rng = np.random.default_rng(5)
    s = InMemoryBlobStore()
    s.put("models/evi.onnx", model[0])
    events = [make_event(rng, timestamp_ms=BASE_TS_MS - i * 30_000) for i in range(12)]
    events[2]["payload"].pop("embeddings")
    s.put("batches/b.jsonl", ("\n".join(json.dumps(e) for e in events) + "\n").encode())
    corpus = rng.standard_normal((300, 768)).astype(np.float32)
    corpus /= np.linalg.norm(corpus, axis=1, keepdims=True)
    s.put("corpus/current.npy", dump_npy(corpus))
    return s


def test_cpu_runner_and_batch_job_agree(model: tuple[bytes, str]) -> None:
    a, b = store(model), store(model)
    cpu = run_job(store=a, batch_key="batches/b.jsonl", model_key="models/evi.onnx", model_digest=model[1],
                  output_key="scored/b.jsonl", now_ms=BASE_TS_MS, providers=["CPUExecutionProvider"],
                  runner_name="cpu-lambda")
    job = entrypoint.run_job(store=b, batch_key="batches/b.jsonl", model_key="models/evi.onnx",
                             model_digest=model[1], output_key="scored/b.jsonl", now_ms=BASE_TS_MS,
                             providers=["CPUExecutionProvider"])
    assert a.get("scored/b.jsonl") == b.get("scored/b.jsonl")
    assert a.get("corpus/current.npy") == b.get("corpus/current.npy")
    assert (cpu.scored, cpu.corpus_rows_before, cpu.corpus_rows_after) == (job.scored, 300, 311)
    assert cpu.summary()["runner"] == "cpu-lambda" and job.summary()["runner"] == "gpu-batch"
    assert cpu.bands == job.bands


def test_a_tampered_model_is_refused_before_anything_is_written(model: tuple[bytes, str]) -> None:
    s = store(model)
    s.put("models/evi.onnx", model[0] + b"\0")
    before = dict(s.objects)
    with pytest.raises(ModelDigestMismatch):
        run_job(store=s, batch_key="batches/b.jsonl", model_key="models/evi.onnx", model_digest=model[1],
                output_key="scored/b.jsonl", providers=["CPUExecutionProvider"])
    assert s.objects == before


def test_npy_rows_reads_the_header_only() -> None:
    data = dump_npy(np.zeros((1234, 768), np.float32))
    assert npy_rows(data[:4096]) == 1234
    assert npy_rows(dump_npy(np.zeros((0, 768), np.float32))) == 0
    assert np.load(io.BytesIO(data)).shape == (1234, 768)
