"""The steps of ``statemachines/scoring.asl.json`` around the runners: plan, record, fail.

- ``plan``: the batch exists and is not finished; the active model's signed manifest still
  verifies; the corpus lease is taken (one batch updates the corpus at a time: ``CorpusBusy`` is
  retried by the state machine); the work (batch size x corpus rows) and the GPU threshold feed the
  runner Choice; ``EventsIngested`` is audited with the batch and model digests.
- ``record``: the envelopes the runner wrote are read back and checked (one valid EVIEnvelope per
  event), the batch is marked ``Scored``, the lease released, ``BatchScored`` audited.
- ``fail``: the batch is marked ``Failed`` with a readable reason (a model refused for its digest,
  a Batch job's status reason), the lease released.

Audit event ids are derived from the batch id, so a retried step records once.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from pydantic import ValidationError

from hallmark.audit.events import derive_event_id
from hallmark.canonical import to_rfc3339
from hallmark.docstore import DocStore, update
from hallmark.errors import Conflict, NotFound
from hallmark.ports import AuditEmitter
from hallmark.scoring.batching import BATCH, Limits, output_key
from hallmark.scoring.briefs import BriefStore, route
from hallmark.scoring.job import DEFAULT_CORPUS_KEY, load_assignment, npy_rows, summary_key, weights_key
from hallmark.scoring.models import ActiveModel
from hallmark.scoring.schema import EnrichedEvent, EVIEnvelope
from hallmark.scoring.webhooks import SubscriberStore, deliveries
from hallmark.scoring.weights import Assignment

CHAIN = "scoring"
LEASE = "scoring-lease"
CORPUS = "corpus"
NAMESPACE = uuid.UUID("0d5e3c8e-6a53-4c1e-9b1f-2f7f3e6c9a41")
TERMINAL = ("Scored", "Routed", "Failed")


class CorpusBusy(Exception):
    """Another batch holds the corpus lease (the state machine retries with backoff)."""


class BatchFinished(Exception):
    """The batch was already scored (or failed): a second execution changes nothing."""


class OutputInvalid(Exception):
    """The runner's envelopes are missing or not one valid envelope per event."""


class RangeReader(Protocol):
    def get(self, key: str) -> bytes: ...

    def get_range(self, key: str, start: int, length: int) -> bytes: ...

    def put(self, key: str, data: bytes) -> None: ...


@dataclass(frozen=True)
class Plan:
    batchId: str
    batchKey: str
    batchDigest: str
    outputKey: str
    corpusKey: str
    size: int
    corpusSize: int
    work: int
    threshold: int
    runner: str  # what the Choice will pick: "gpu" when work > threshold
    modelKey: str
    modelDigest: str
    manifestSignatureId: str
    gpuModelKey: str = ""  # the float16 variant for the CUDA provider ("" when the package has none)
    gpuModelDigest: str = ""
    candidateModelKey: str = ""  # the int8 candidate model for the CPU int8 mode ("" when none)
    candidateModelDigest: str = ""
    int8MinBatch: int = 0  # the runners use the candidate model for batches of at least this size (0: never)
    weightsVersion: str = ""  # the EVI weights version scoring the batch ("" : the model's own weights)
    canary: bool = False  # a canary batch of a new weights version (the active weights score it in shadow)

    def model_digests(self) -> dict[str, str]:
        """The signed digests a runner may load for this batch, by role (absent variants left out)."""
        named = {"model": self.modelDigest, "gpuModel": self.gpuModelDigest, "candidateModel": self.candidateModelDigest}
        return {k: v for k, v in named.items() if v}

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class ScoringPipeline:
    def __init__(self, docs: DocStore, audit: AuditEmitter, blobs: RangeReader,
                 clock: Callable[[], datetime] | None = None, lease_seconds: int = 4200,
                 corpus_key: str = DEFAULT_CORPUS_KEY) -> None:
        self.docs = docs
        self.audit = audit
        self.blobs = blobs
        self.clock = clock or (lambda: datetime.now(UTC))
        self.lease_seconds = lease_seconds
        self.corpus_key = corpus_key

    # ------------------------------------------------------------------ batch record
    def batch(self, batch_id: str) -> dict[str, Any]:
        doc = self.docs.get(BATCH, batch_id)
        if doc is None:
            raise NotFound("batch", batch_id)
        return doc

    def _set(self, batch_id: str, status: str | None, **fields: Any) -> dict[str, Any]:
        def change(doc: dict[str, Any]) -> None:
            doc.update(fields)
            if status and doc.get("status") != status:
                doc["status"] = status
                doc["history"].append({"status": status, "at": to_rfc3339(self.clock())})

        return update(self.docs, BATCH, batch_id, change)

    # ------------------------------------------------------------------ corpus lease
    def acquire(self, batch_id: str) -> None:
        now = time.time()
        doc = self.docs.get(LEASE, CORPUS)
        lease = {"holder": batch_id, "expiresAt": now + self.lease_seconds}
        if doc is None:
            try:
                self.docs.create(LEASE, CORPUS, lease)
                return
            except Conflict:
                raise CorpusBusy("the corpus lease was just taken") from None
        if doc.get("holder") not in (None, batch_id) and float(doc.get("expiresAt", 0)) > now:
            raise CorpusBusy(f"batch {doc['holder']} is updating the corpus")
        try:
            self.docs.replace(LEASE, CORPUS, lease, doc["version"])
        except Conflict:
            raise CorpusBusy("the corpus lease was just taken") from None

    def release(self, batch_id: str) -> None:
        for _ in range(5):
            doc = self.docs.get(LEASE, CORPUS)
            if doc is None or doc.get("holder") != batch_id:
                return
            try:
                self.docs.replace(LEASE, CORPUS, {"holder": None, "expiresAt": 0}, doc["version"])
                return
            except Conflict:
                continue

    def corpus_rows(self) -> int:
        try:
            return npy_rows(self.blobs.get_range(self.corpus_key, 0, 4096))
        except KeyError:
            return 0

    # ------------------------------------------------------------------ steps
    def plan(self, batch_id: str, execution_arn: str, model: ActiveModel, limits: Limits,
             assign: Callable[[str], Assignment] | None = None) -> Plan:
        """``assign``: the batch's EVI weights (``WeightsRollout.assign``, signatures checked), written
        beside the envelopes-to-be for the runner (``job.weights_key``)."""
        doc = self.batch(batch_id)
        if doc["status"] in TERMINAL:
            raise BatchFinished(f"batch {batch_id} is already {doc['status']}")
        assignment = assign(batch_id) if assign is not None else None  # refuses unsigned weights first
        self.acquire(batch_id)
        if assignment is not None:
            self.blobs.put(weights_key(output_key(batch_id)), json.dumps(assignment.as_dict()).encode("utf-8"))
        corpus = self.corpus_rows()
        size = int(doc["events"])
        work = size * corpus
        plan = Plan(
            batchId=batch_id, batchKey=doc["batchKey"], batchDigest=doc["batchDigest"], outputKey=output_key(batch_id),
            corpusKey=self.corpus_key, size=size, corpusSize=corpus, work=work, threshold=limits.gpu_threshold,
            runner="gpu" if work > limits.gpu_threshold else "cpu", modelKey=model.modelKey,
            modelDigest=model.modelDigest, manifestSignatureId=model.manifestSignatureId,
            gpuModelKey=model.gpuModelKey, gpuModelDigest=model.gpuModelDigest,
            candidateModelKey=model.candidateModelKey, candidateModelDigest=model.candidateModelDigest,
            int8MinBatch=limits.int8_min_batch if model.candidateModelDigest else 0,
            weightsVersion=assignment.scoring.version if assignment else "", canary=bool(assignment and assignment.canary),
        )
        self._set(batch_id, "Scoring", executionArn=execution_arn, runner=plan.runner, work=work,
                  corpusSize=corpus, threshold=limits.gpu_threshold,
                  model={"modelDigest": model.modelDigest, "manifestSignatureId": model.manifestSignatureId,
                         "packageId": model.packageId, "packageVersion": model.packageVersion})
        self.audit.emit(chain=CHAIN, type="EventsIngested", actor="system:scoring_ingest", subject=batch_id,
                        data={"batchId": batch_id, "batchDigest": plan.batchDigest, "events": size,
                              "duplicates": int(doc.get("duplicates", 0)), "rejected": int(doc.get("rejected", 0)),
                              "modelDigest": model.modelDigest, "modelDigests": plan.model_digests(),
                              **({"weightsVersion": plan.weightsVersion, "canary": plan.canary}
                                 if plan.weightsVersion else {}),
                              "manifestSignatureId": model.manifestSignatureId},
                        event_id=derive_event_id(batch_id, "EventsIngested"))
        return plan

    def read_envelopes(self, plan: dict[str, Any]) -> tuple[list[EVIEnvelope], str]:
        try:
            raw = self.blobs.get(plan["outputKey"])
        except KeyError:
            raise OutputInvalid(f"the runner wrote no envelopes at {plan['outputKey']}") from None
        envelopes: list[EVIEnvelope] = []
        for n, line in enumerate(raw.decode("utf-8").split("\n"), start=1):
            if not line.strip():
                continue
            try:
                envelopes.append(EVIEnvelope.model_validate_json(line))
            except ValidationError as exc:
                raise OutputInvalid(f"envelope line {n} is invalid: {exc.errors()[0]['msg']}") from None
        return envelopes, hashlib.sha256(raw).hexdigest()

    def run_summary(self, plan: dict[str, Any], scored: dict[str, Any]) -> dict[str, str]:
        """What the runner says it loaded (its summary: the Lambda's answer, or the file the Batch
        job wrote next to the envelopes), checked against the digests the plan took from the signed
        manifest. Without a summary, the plan's float32 model in exact mode."""
        summary: dict[str, Any] = scored if "modelDigest" in scored else {}
        if not summary:
            try:
                summary = json.loads(self.blobs.get(summary_key(plan["outputKey"])))
            except KeyError:
                summary = {}
        run = {"modelDigest": str(summary.get("modelDigest") or plan["modelDigest"]),
               "mode": str(summary.get("mode") or "exact"),
               "candidateModelDigest": str(summary.get("candidateModelDigest") or ""),
               "provider": str(summary.get("provider") or "")}
        signed = {"modelDigest": {plan["modelDigest"], plan.get("gpuModelDigest") or plan["modelDigest"]},
                  "candidateModelDigest": {plan.get("candidateModelDigest") or "", ""}}
        for name, allowed in signed.items():
            if run[name] not in allowed:
                raise OutputInvalid(f"the runner reports {name} {run[name]}, which the plan's signed manifest "
                                    "does not name for that role")
        return run

    def record(self, plan: dict[str, Any], scored: dict[str, Any],
               count_canary: Callable[[str, Assignment], None] | None = None) -> dict[str, Any]:
        """``count_canary``: ``WeightsRollout.record_batch`` (a scored canary batch counts towards
        the canary's promotion)."""
        batch_id = plan["batchId"]
        envelopes, digest = self.read_envelopes(plan)
        if len(envelopes) > plan["size"]:
            raise OutputInvalid(f"{len(envelopes)} envelopes for a batch of {plan['size']} events")
        bands = dict(Counter(e.band for e in envelopes))
        runner = scored.get("runner") or ("gpu-batch" if plan.get("runner") == "gpu" else "cpu-lambda")
        run = self.run_summary(plan, scored)
        rows = self.corpus_rows()
        result = {"runner": runner, "scored": len(envelopes), "bands": bands, "outputKey": plan["outputKey"],
                  "outputDigest": digest, "corpusRowsAfter": rows, "jobId": scored.get("jobId"),
                  "provider": run.get("provider") or scored.get("provider"), "modelDigest": run["modelDigest"],
                  "mode": run["mode"]}
        assignment = load_assignment(self.blobs, plan["outputKey"])
        if assignment is not None:
            result["weightsVersion"] = assignment.scoring.version
            result["canary"] = assignment.canary
        self._set(batch_id, "Scored", scores=result)
        self.release(batch_id)
        if assignment is not None and count_canary is not None:
            count_canary(batch_id, assignment)
        self.audit.emit(chain=CHAIN, type="BatchScored", actor=f"system:{runner}", subject=batch_id,
                        data={"batchId": batch_id, "batchDigest": plan["batchDigest"],
                              "modelDigest": run["modelDigest"], "mode": run["mode"],
                              **({"candidateModelDigest": run["candidateModelDigest"]}
                                 if run["candidateModelDigest"] else {}),
                              "manifestSignatureId": plan["manifestSignatureId"], "runner": runner, "events": plan["size"], "scored": len(envelopes), "bands": bands,
                              "outputDigest": digest, "corpusRows": rows, "work": plan["work"],
                              "threshold": plan["threshold"],
                              **({"weightsVersion": assignment.scoring.version, "canary": assignment.canary}
                                 if assignment is not None else {})},
                        event_id=derive_event_id(batch_id, "BatchScored"))
        return result

    def route(self, plan: dict[str, Any], briefs: BriefStore, subscribers: SubscriberStore,
              send: Callable[[list[dict[str, Any]]], None]) -> dict[str, Any]:
        """instant -> webhook deliveries now; same_day/weekly -> briefs (stored, audited, and
        delivered to the subscribers of their band); archive -> counted."""
        batch_id = plan["batchId"]
        envelopes, _ = self.read_envelopes(plan)
        events: list[EnrichedEvent] = []
        for line in self.blobs.get(plan["batchKey"]).decode("utf-8").split("\n"):
            if line.strip():
                try:
                    events.append(EnrichedEvent.model_validate_json(line))
                except ValidationError:
                    continue  # the runners skipped it too
        now = self.clock()
        routing = route(batch_id, envelopes, events, int(now.timestamp() * 1000))
        for stored in routing.briefs:
            briefs.put(stored)
            b = stored.brief
            self.audit.emit(chain=CHAIN, type="BriefCreated", actor="system:scoring_route", subject=b.brief_id,
                            data={"briefId": b.brief_id, "batchId": batch_id, "band": stored.band,
                                  "domain": stored.domain, "events": len(b.event_ids), "impactLevel": b.impact_level,
                                  "confidenceScore": b.confidence_score, "batchDigest": plan["batchDigest"],
                                  "modelDigest": plan["modelDigest"]},
                            event_id=derive_event_id(batch_id, "BriefCreated", b.brief_id))
        messages = deliveries(subscribers.list(), routing.instant, routing.briefs, batch_id=batch_id,
                              batch_digest=plan["batchDigest"], model_digest=plan["modelDigest"], now=now)
        if messages:
            send(messages)
        brief_ids = [b.brief.brief_id for b in routing.briefs]
        summary: dict[str, Any] = {"instant": len(routing.instant), "briefs": len(brief_ids),
                                   "archived": routing.archived, "webhooks": len(messages),
                                   "unmatched": routing.unmatched}
        self._set(batch_id, "Routed", routing={**summary, "briefIds": brief_ids[:100]})
        return summary

    def fail(self, batch_id: str, error: dict[str, Any], execution_arn: str | None = None) -> dict[str, Any]:
        reason = describe_failure(error)
        try:
            extra = {"executionArn": execution_arn} if execution_arn else {}
            self._set(batch_id, "Failed", error=reason, **extra)
        except NotFound:
            pass
        self.release(batch_id)
        return {"batchId": batch_id, "status": "Failed", **reason}


def describe_failure(error: dict[str, Any]) -> dict[str, Any]:
    """A readable reason from a Catch's ``{"Error", "Cause"}``: Lambda errors carry
    ``{"errorType", "errorMessage"}`` as their cause, a Batch job its description."""
    name = str(error.get("Error") or "Error")
    cause_text = str(error.get("Cause") or "")
    out: dict[str, Any] = {"error": name, "message": cause_text[:1000]}
    try:
        cause = json.loads(cause_text) if cause_text else {}
    except json.JSONDecodeError:
        return out
    if not isinstance(cause, dict):
        return out
    if "errorMessage" in cause:
        out["error"] = str(cause.get("errorType") or name)
        out["message"] = str(cause["errorMessage"])[:1000]
    elif "JobId" in cause or "Status" in cause:  # a Batch job (submitJob.sync)
        container = cause.get("Container") or {}
        reason = cause.get("StatusReason") or container.get("Reason") or "the job failed"
        out["error"] = "BatchJobFailed"
        out["message"] = str(reason)[:1000]
        out["job"] = {"jobId": cause.get("JobId"), "status": cause.get("Status"),
                      "exitCode": container.get("ExitCode"), "logStream": container.get("LogStreamName")}
    return out

