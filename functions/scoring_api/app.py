"""Scoring administration:

- ``POST /scoring/model {packageId}`` (superadmin): register the EVI model released through the
  release pipeline: the package's DSSE manifest must verify with the manifest key, sign the
  released artifact, and the artifact's ``evi.onnx`` (and its ``[model.gpu]`` / ``[model.candidates]``
  variants, if any) must hash to what its ``hallmark.toml`` declares; the model becomes the active
  one (``GET /scoring/model``);
- ``PUT /scoring/config`` (superadmin) / ``GET /scoring/config``: batch size and age thresholds, the
  GPU threshold (batch size x corpus rows) of the runner Choice, and ``int8MinBatch`` (the int8
  corpus mode for batches of at least that many events, 0 = off);
- ``GET /scoring/batches[/{batchId}]``: batches, their runner, bands and, for a failed one, why;
- ``POST /scoring/batches/flush`` (superadmin): seal the open batch now;
- ``POST /scoring/envelopes/{eventId}/feedback {verdict, band?, batchId}``: the caller's verdict on
  an envelope, one per caller and envelope, audited FeedbackRecorded; it feeds the EVI weights;
- ``GET /scoring/weights``: the active EVI weights version and the canary, if any."""

import os
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body, Query
from aws_lambda_powertools.utilities.typing import LambdaContext

from hallmark.adapters import runtime
from hallmark.errors import NotFound
from hallmark.http import caller_of, make_resolver
from hallmark.observability import logger, tracer
from hallmark.pagination import paginate, scan_kind
from hallmark.scoring.batching import BATCH, ConfigUpdate, update_config
from hallmark.scoring.models import RegisterModel
from hallmark.scoring.weights import FeedbackIn

app = make_resolver()


@app.post("/scoring/model")
@tracer.capture_method
def register_model(body: Annotated[RegisterModel, Body()]) -> Response[Any]:
    model = runtime.model_registry().register(body.packageId, caller_of(app).sub)
    logger.info("EVI model registered", extra={"modelDigest": model.modelDigest, "packageId": model.packageId})
    return Response(201, "application/json", body=model.as_dict())


@app.get("/scoring/model")
@tracer.capture_method
def active_model() -> dict[str, Any]:
    return runtime.model_registry().active().as_dict()


@app.put("/scoring/config")
@tracer.capture_method
def put_config(body: Annotated[ConfigUpdate, Body()]) -> dict[str, Any]:
    return update_config(runtime.docs(), os.environ, body, caller_of(app).sub)


@app.get("/scoring/config")
@tracer.capture_method
def get_config() -> dict[str, Any]:
    return {**runtime.scoring_limits().as_dict(), "open": runtime.scoring_intake().open_batch()}


def _view(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k != "version"}


@app.get("/scoring/batches")
@tracer.capture_method
def list_batches(limit: Annotated[int, Query(ge=1, le=500)] = 100,
                 nextToken: Annotated[str | None, Query(max_length=2048)] = None) -> dict[str, Any]:
    items, token = paginate((_view(d) for d in scan_kind(runtime.docs(), BATCH)),
                            key=lambda d: (str(d["sealedAt"]), str(d["batchId"])), limit=limit, next_token=nextToken,
                            route="GET /scoring/batches", newest_first=True)
    return {"items": items, "count": len(items), "nextToken": token}


@app.get("/scoring/batches/<batchId>")
@tracer.capture_method
def get_batch(batchId: str) -> dict[str, Any]:
    doc = runtime.docs().get(BATCH, batchId)
    if doc is None:
        raise NotFound("batch", batchId)
    return _view(doc)


@app.post("/scoring/batches/flush")
@tracer.capture_method
def flush() -> Response[Any]:
    sealed = runtime.scoring_intake().seal_if_due(force=True)
    return Response(202, "application/json", body={"sealed": [
        {"batchId": s.batch_id, "size": s.size, "batchDigest": s.batch_digest, "executionArn": s.execution_arn}
        for s in sealed]})


@app.post("/scoring/envelopes/<eventId>/feedback")
@tracer.capture_method
def envelope_feedback(eventId: str, body: Annotated[FeedbackIn, Body()]) -> Response[Any]:
    record, changed = runtime.feedback().record("envelope", eventId, caller_of(app).sub, body)
    return Response(201 if changed else 200, "application/json", body=record)


@app.get("/scoring/weights")
@tracer.capture_method
def weights() -> dict[str, Any]:
    return runtime.weights().state().as_dict()


@logger.inject_lambda_context(correlation_id_path="requestContext.requestId")
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
