"""Signal scoring scenario (DESIGN.md flow 5): the EVI model is released through the release
pipeline and registered from its signed manifest; a webhook receiver subscribes; a few thousand
synthetic EnrichedEvents (and some invalid and duplicate ones) go on the bus; batches are scored by
both runners (the CPU Lambda for the small first batch, the AWS Batch GPU job for the bigger ones);
the bands give a brief and a delivered, signature-verified webhook; a tampered model is refused.

The helpers (model package, receiver, synthetic events) are shared with the integration tests.
"""

from __future__ import annotations

import json
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from standardwebhooks import Webhook

from hallmark_tools import samples
from hallmark_tools.driver import Driver
from hallmark_tools.localcloud.batch import gpu_batch_module
from hallmark_tools.localcloud.cloud import LocalCloud
from hallmark_tools.scenarios.base import DemoContext, Step

DIM = 768
MODEL_NAME = "evi-model"
PRODUCER = "com.example.enricher"


# ----------------------------------------------------------------------------- the model package
def model_package(*, variants: bool = True) -> tuple[bytes, str]:
    """(tar.gz holding evi.onnx, its variants and hallmark.toml, evi.onnx's sha256): deterministic
    bytes. The variants: the float16 GPU model (``[model.gpu]``) and the int8 candidate model
    (``[model.candidates]``)."""
    evi_model = gpu_batch_module("evi_model")
    with tempfile.TemporaryDirectory() as tmp:
        digests = evi_model.write_package(tmp, variants=variants)
        files = {p.name: p.read_bytes() for p in sorted(Path(tmp).iterdir())}
    files["README.md"] = b"# evi-model\n\nThe EVI scoring model.\n"
    digest = digests[evi_model.MODEL_FILE]
    return samples.tar_gz(files), digest


def release_model(driver: Driver, version: str = "1.0.0") -> dict[str, Any]:
    """Release the model package (impact LOW) through the pipeline, then register it for scoring."""
    body, digest = model_package()
    pid = driver.submit(body, name=MODEL_NAME, version=version, role="superadmin")
    doc = driver.wait_package(pid)
    if doc["status"] != "Published":
        raise AssertionError(f"the model package was not published: {doc['status']} {doc['reasons']}")
    model: dict[str, Any] = driver.ok("POST", "/scoring/model", "superadmin", {"packageId": pid})
    if model["modelDigest"] != digest:
        raise AssertionError(f"registered digest {model['modelDigest']} is not the built model's {digest}")
    return model


# ----------------------------------------------------------------------------- webhook receiver
@dataclass
class Received:
    headers: dict[str, str]
    body: str
    verified: bool
    payload: Any
    error: str | None


@dataclass
class WebhookReceiver:
    """A subscriber on 127.0.0.1 that verifies every webhook with the standardwebhooks library's own
    ``Webhook(secret).verify``. ``fail_first`` answers 503 to that many first attempts."""

    fail_first: int = 0
    secret: str | None = None
    received: list[Received] = field(default_factory=list)
    attempts: int = 0
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/hooks"

    def start(self) -> WebhookReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                body = self.rfile.read(length).decode("utf-8")
                with receiver._lock:
                    receiver.attempts += 1
                    refuse = receiver.attempts <= receiver.fail_first
                if refuse:
                    self.send_response(503)
                    self.end_headers()
                    return
                headers = {k.lower(): v for k, v in self.headers.items()}
                try:
                    assert receiver.secret, "the receiver has no secret yet"
                    payload = Webhook(receiver.secret).verify(body, headers)
                    item = Received(headers, body, True, payload, None)
                except Exception as exc:
                    item = Received(headers, body, False, None, f"{type(exc).__name__}: {exc}")
                with receiver._lock:
                    receiver.received.append(item)
                self.send_response(204 if item.verified else 400)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        class Server(ThreadingHTTPServer):
            request_queue_size = 128
            daemon_threads = True

        self._server = Server(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, name="webhook-receiver", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def verified(self) -> list[Received]:
        with self._lock:
            return [r for r in self.received if r.verified]

    def wait(self, count: int, timeout: float = 60.0, where: Callable[[Received], bool] | None = None
             ) -> list[Received]:
        deadline = time.monotonic() + timeout
        while True:
            got = [r for r in self.verified() if where is None or where(r)]
            if len(got) >= count:
                return got
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(got)} of {count} webhooks arrived (attempts: {self.attempts})")
            time.sleep(0.05)


# ----------------------------------------------------------------------------- synthetic events
def _unit(v: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


@dataclass
class Synth:
    """A clustered reference corpus and events meant for each band.

    The corpus is ``clusters`` centres with ``per_cluster`` neighbours each (cosine ~0.8 to their
    centre): an event near a centre has low novelty (~0.35), a random one high novelty (~0.9).
    """

    seed: int = 7
    clusters: int = 40
    per_cluster: int = 50
    rng: np.random.Generator = field(init=False)
    centres: npt.NDArray[np.float64] = field(init=False)

    def __post_init__(self) -> None:
        self.rng = np.random.default_rng(self.seed)
        self.centres = _unit(self.rng.standard_normal((self.clusters, DIM)))

    def _near(self, centre: npt.NDArray[np.float64], spread: float = 0.75) -> npt.NDArray[np.float64]:
        return _unit(centre + spread * _unit(self.rng.standard_normal(DIM)))

    def corpus(self) -> npt.NDArray[np.float32]:
        rows = [self._near(c) for c in self.centres for _ in range(self.per_cluster)]
        return np.asarray(rows, dtype=np.float32)

    def _embedding(self, novel: bool) -> list[float]:
        v = _unit(self.rng.standard_normal(DIM)) if novel else self._near(self.centres[self.rng.integers(self.clusters)])
        return [round(float(x), 5) for x in v]

    def event(self, kind: str, now_ms: int | None = None) -> dict[str, Any]:
        """One valid EnrichedEvent aimed at a band: instant | same_day | weekly | archive."""
        now = int(time.time() * 1000) if now_ms is None else now_ms
        Spec = tuple[str, str, int, bool, dict[str, float], list[str]]
        specs: dict[str, list[Spec]] = {
            "instant": [("crypto", "solana_mempool", now, True,
                         {"initial_liquidity_usd": 1_500_000.0, "holder_count": 2400.0}, ["token_launch"])],
            "same_day": [("ai", "arxiv", now, False, {"has_code": 1.0, "reference_count": 12.0}, ["llm"]),
                         ("ai", "arxiv", now, False, {"has_code": 1.0, "reference_count": 80.0}, ["benchmark"]),
                         ("crypto", "eth_mempool", now, False, {}, ["mev"])],
            "weekly": [("ai", "github_events", now, False, {"stars": 2000.0, "forks": 100.0}, ["agents"]),
                       ("crypto", "solana_mempool", now - 10 * 60_000, False,
                        {"initial_liquidity_usd": 300_000.0, "holder_count": 200.0}, ["token_launch"])],
            "archive": [("crypto", "twitter", now - 24 * 3_600_000, False, {}, ["memecoin"])],
        }
        options = specs[kind]
        spec = options[int(self.rng.integers(len(options)))]
        domain, source, ts, novel, metrics, topics = spec
        return {
            "event_id": str(uuid.UUID(bytes=self.rng.bytes(16), version=4)),
            "mission_id": None,
            "timestamp": ts,
            "domain": domain,
            "source": source,
            "topic_hints": topics,
            "payload": {
                "raw": {"ref": self.rng.bytes(6).hex()},
                "extracted": {"entities": [{"type": "ref", "id": self.rng.bytes(4).hex()}], "metrics": metrics,
                              "sentiment": 0.1},
                "embeddings": self._embedding(novel),
            },
            "metadata": {"content_hash": "sha256:" + self.rng.bytes(32).hex(), "language": "en",
                         "processing_time_ms": 9},
        }

    def mix(self, n: int, shares: tuple[float, float, float, float] = (0.02, 0.2, 0.3, 0.48)) -> list[dict[str, Any]]:
        kinds = self.rng.choice(["instant", "same_day", "weekly", "archive"], size=n, p=list(shares))
        return [self.event(str(k)) for k in kinds]


def invalid_events(synth: Synth) -> dict[str, dict[str, Any]]:
    """One event per schema rule it breaks (what the rejects queue must receive, with the reason)."""
    def broken(change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
        e = synth.event("weekly")
        change(e)
        return e

    return {
        "event_id": broken(lambda e: e.update(event_id="not-a-uuid")),
        "timestamp": broken(lambda e: e.update(timestamp=float(e["timestamp"]) + 0.5)),
        "domain": broken(lambda e: e.update(domain="finance")),
        "source": broken(lambda e: e.update(source="Bad-Source")),
        "embeddings": broken(lambda e: e["payload"].update(embeddings=e["payload"]["embeddings"][:767])),
    }


def seed_corpus(cloud: LocalCloud, corpus: npt.NDArray[np.float32], key: str = "corpus/current.npy") -> None:
    """The operator seeds the reference corpus (unit rows, float32 [N, 768])."""
    import io

    buf = io.BytesIO()
    np.save(buf, corpus, allow_pickle=False)
    cloud.client("s3").put_object(Bucket=cloud.resources["BUCKET_SCORING"], Key=key, Body=buf.getvalue())


def put_events(cloud: LocalCloud, details: Iterable[dict[str, Any]], source: str = PRODUCER,
               wave: int | None = 200) -> int:
    """Producers put EnrichedEvents on the hallmark bus (ten per PutEvents call). Locally the
    producer paces itself: after each ``wave`` events it lets the ingest queue drain (moto's SQS
    slows down with the depth of a queue)."""
    events = cloud.client("events")
    batch: list[dict[str, Any]] = []
    sent = 0

    def flush() -> None:
        nonlocal sent
        if batch:
            resp = events.put_events(Entries=batch)
            if resp.get("FailedEntryCount"):
                raise AssertionError(f"PutEvents refused entries: {resp['Entries']}")
            sent += len(batch)
            batch.clear()

    for d in details:
        batch.append({"Source": source, "DetailType": "EnrichedEvent", "Detail": json.dumps(d),
                      "EventBusName": "hallmark"})
        if len(batch) == 10:
            flush()
            if wave and sent % wave == 0:
                _drain(cloud, "scoring_events")
    flush()
    return sent


def _drain(cloud: LocalCloud, queue: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while cloud.queue_depth(queue) > 0 and time.monotonic() < deadline:
        time.sleep(0.05)


def wait_ingested(cloud: LocalCloud, timeout: float = 300.0) -> None:
    cloud.wait_idle(timeout=timeout)


def flush(driver: Driver) -> list[dict[str, Any]]:
    sealed: list[dict[str, Any]] = driver.ok("POST", "/scoring/batches/flush", "superadmin")["sealed"]
    return sealed


def wait_batch(driver: Driver, batch_id: str, timeout: float = 180.0,
               statuses: tuple[str, ...] = ("Routed", "Failed")) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        doc: dict[str, Any] = driver.ok("GET", f"/scoring/batches/{batch_id}", "auditor")
        if doc["status"] in statuses:
            return doc
        if time.monotonic() > deadline:
            raise TimeoutError(f"batch {batch_id} is still {doc['status']}")
        time.sleep(0.1)


def rejects(cloud: LocalCloud, max_messages: int = 100) -> list[dict[str, Any]]:
    """Drain the rejects queue (what an operator reads): the reason and the event as received."""
    sqs = cloud.client("sqs")
    url = cloud.resources["QUEUE_SCORING_REJECTS_URL"]
    out: list[dict[str, Any]] = []
    while len(out) < max_messages:
        msgs = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"],
                                   WaitTimeSeconds=0).get("Messages", [])
        if not msgs:
            return out
        for m in msgs:
            out.append({**json.loads(m["Body"]), "attributes": m.get("MessageAttributes", {})})
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    return out


# ----------------------------------------------------------------------------- demo steps
def step_model(ctx: DemoContext) -> dict[str, Any]:
    model = release_model(ctx.driver)
    ctx.facts["scoring_model"] = model
    again = ctx.driver.ok("GET", "/scoring/model", "auditor")
    assert again["modelDigest"] == model["modelDigest"]
    return {"packageId": model["packageId"], "modelDigest": model["modelDigest"],
            "manifestSignatureId": model["manifestSignatureId"], "modelKey": model["modelKey"]}


def step_subscribe(ctx: DemoContext) -> dict[str, Any]:
    receiver = WebhookReceiver().start()
    sub = ctx.driver.ok("POST", "/webhooks", "superadmin", {"url": receiver.url, "bands": ["instant"]})
    receiver.secret = sub["secret"]
    ctx.facts["scoring_receiver"] = receiver
    listed = ctx.driver.ok("GET", "/webhooks", "superadmin")["items"]
    assert all("secret" not in s and "secretCiphertext" not in s for s in listed)
    refused = ctx.driver.call("POST", "/webhooks", "superadmin", {"url": "http://10.0.0.8/x", "bands": ["instant"]})
    assert refused.status == 400, refused.body
    return {"subscriberId": sub["subscriberId"], "url": receiver.url, "bands": sub["bands"],
            "secretShownOnce": sub["secret"][:10] + "...", "privateUrlRefused": refused.status}


def step_ingest(ctx: DemoContext) -> dict[str, Any]:
    synth = Synth()
    seed_corpus(ctx.cloud, synth.corpus())  # 2,000 reference vectors
    # batches sealed at 500 events; the GPU job when batch size x corpus rows > 1,000,000
    config = ctx.driver.ok("PUT", "/scoring/config", "superadmin",
                           {"batchMaxEvents": 500, "batchMaxAgeSeconds": 3600, "gpuThreshold": 1_000_000})
    first = synth.mix(250)
    first[:3] = [synth.event("instant") for _ in range(3)]
    bad = invalid_events(synth)
    dup = dict(first[5], event_id=str(uuid.uuid4()))  # the same content_hash under another event id
    put_events(ctx.cloud, [*first, *bad.values(), dup])
    wait_ingested(ctx.cloud)
    sealed = flush(ctx.driver)
    assert len(sealed) == 1 and sealed[0]["size"] == 250, sealed
    small = wait_batch(ctx.driver, sealed[0]["batchId"])
    assert small["status"] == "Routed" and small["runner"] == "cpu", small
    # the bulk: sealed by size as it arrives, the rest flushed
    put_events(ctx.cloud, synth.mix(1750))
    wait_ingested(ctx.cloud)
    flush(ctx.driver)
    ids = [d["batchId"] for d in ctx.driver.ok("GET", "/scoring/batches?limit=50", "auditor")["items"]
           if d["batchId"] != small["batchId"]]
    done = sorted((wait_batch(ctx.driver, i, timeout=300) for i in ids), key=lambda d: d["sealedAt"])
    batches = [small, *done]
    assert sum(d["events"] for d in batches) == 2000, [d["events"] for d in batches]
    for d in batches:
        assert d["status"] == "Routed", d
        assert d["runner"] == ("gpu" if d["work"] > d["threshold"] else "cpu"), d
    assert {d["scores"]["runner"] for d in batches} == {"cpu-lambda", "gpu-batch"}
    refused = rejects(ctx.cloud)
    reasons = sorted(r["reason"] for r in refused)
    assert len(refused) == len(bad), reasons
    ctx.facts["scoring_batches"] = batches
    bands: dict[str, int] = {}
    for d in batches:
        for band, n in d["scores"]["bands"].items():
            bands[band] = bands.get(band, 0) + n
    return {"events": 2000, "invalid": len(bad), "rejected": reasons, "duplicates": small["duplicates"],
            "gpuThreshold": config["gpuThreshold"],
            "batches": [{"batchId": d["batchId"], "events": d["events"], "corpusRows": d["corpusSize"],
                         "work": d["work"], "runner": d["scores"]["runner"]} for d in batches],
            "bands": bands}


def step_briefs(ctx: DemoContext) -> dict[str, Any]:
    listed = ctx.driver.ok("GET", "/briefs?limit=200", "auditor")
    assert listed["count"] > 0, listed
    by_domain = {d: ctx.driver.ok("GET", f"/briefs?domain={d}&limit=200", "auditor")["items"] for d in ("ai", "crypto")}
    assert all(by_domain.values()) and all(b["domain"] == d for d, items in by_domain.items() for b in items)
    high = ctx.driver.ok("GET", "/briefs?impact_level=high&limit=200", "auditor")["items"]
    assert high and all(b["brief"]["impact_level"] == "high" for b in high)
    newest = listed["items"][0]["brief"]["created_at"]
    since = ctx.driver.ok("GET", f"/briefs?since={newest}&limit=200", "auditor")["items"]
    assert since and all(b["brief"]["created_at"] >= newest for b in since)
    brief = high[0]
    one = ctx.driver.ok("GET", f"/briefs/{brief['brief']['brief_id']}", "auditor")
    assert one["brief"] == brief["brief"]
    bad = ctx.driver.call("GET", "/briefs?impact_level=apocalyptic", "auditor").status
    assert bad == 400
    b = brief["brief"]
    return {"briefs": listed["count"], "byDomain": {d: len(v) for d, v in by_domain.items()}, "high": len(high),
            "sinceNewest": len(since), "unknownEnumRefused": bad,
            "example": {"headline": b["headline"], "band": brief["band"], "domain": brief["domain"],
                        "impact_level": b["impact_level"], "confidence_score": round(b["confidence_score"], 3),
                        "events": len(b["event_ids"]), "evidence": b["content"]["evidence"][0]["text"]}}


def step_webhook(ctx: DemoContext) -> dict[str, Any]:
    receiver: WebhookReceiver = ctx.facts["scoring_receiver"]
    receiver.wait(1)
    ctx.cloud.wait_idle()
    got = receiver.verified()
    first = got[0]
    refused = [r.error for r in receiver.received if not r.verified]
    assert not refused, refused
    events = [e for e in _audit_types(ctx) if e == "WebhookDelivered"]
    assert len(events) == len({r.headers["webhook-id"] for r in got}), (len(events), len(got))
    return {"verified": len(got), "unverified": len(refused),
            "webhook-id": first.headers["webhook-id"], "webhook-signature": first.headers["webhook-signature"][:20] + "...",
            "type": first.payload["type"], "event": first.payload["data"]["event_id"],
            "total_evi": round(first.payload["data"]["total_evi"], 3)}


def audit_events(driver: Driver, chain: str = "scoring") -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    after: int | None = 0
    while after is not None:
        page = driver.ok("GET", f"/audit/{chain}/events?after={after}&limit=1000", "auditor")
        out += page["events"]
        after = page["next"]
    return out


def _audit_types(ctx: DemoContext) -> list[str]:
    return [str(e["type"]) for e in audit_events(ctx.driver)]


def step_tampered(ctx: DemoContext) -> dict[str, Any]:
    model = ctx.facts["scoring_model"]
    s3, bucket = ctx.cloud.client("s3"), ctx.cloud.resources["BUCKET_SCORING"]
    genuine = s3.get_object(Bucket=bucket, Key=model["modelKey"])["Body"].read()
    s3.put_object(Bucket=bucket, Key=model["modelKey"], Body=genuine + b"\0")
    try:
        put_events(ctx.cloud, Synth(seed=99).mix(20))
        wait_ingested(ctx.cloud)
        sealed = flush(ctx.driver)
        doc = wait_batch(ctx.driver, sealed[0]["batchId"])
    finally:
        s3.put_object(Bucket=bucket, Key=model["modelKey"], Body=genuine)
        receiver = ctx.facts.get("scoring_receiver")
        if receiver is not None:
            ctx.cloud.wait_idle()
            receiver.stop()
    assert doc["status"] == "Failed" and "ModelDigestMismatch" in doc["error"]["error"], doc
    return {"batchId": doc["batchId"], "status": doc["status"], "error": doc["error"]["error"],
            "message": doc["error"]["message"][:160]}


def step_audit(ctx: DemoContext) -> dict[str, Any]:
    ctx.cloud.wait_idle()
    types = _audit_types(ctx)
    counts = {t: types.count(t) for t in ("EventsIngested", "BatchScored", "BriefCreated", "WebhookDelivered")}
    assert all(counts.values()), counts
    return counts


STEPS: list[tuple[str, Step]] = [
    ("Scoring: EVI model released through the pipeline, registered from its signed manifest", step_model),
    ("Scoring: a webhook subscriber (Standard Webhooks secret, returned once)", step_subscribe),
    ("Scoring: 2,000 events on the bus -> batches scored by the CPU Lambda or the AWS Batch GPU job",
     step_ingest),
    ("Scoring: briefs of same_day/weekly events, GET /briefs with filters", step_briefs),
    ("Scoring: instant event -> webhook delivered and verified by standardwebhooks", step_webhook),
    ("Scoring: every batch audited (EventsIngested, BatchScored, BriefCreated, WebhookDelivered)", step_audit),
    ("Scoring: a tampered model file is refused by the runner", step_tampered),
]
