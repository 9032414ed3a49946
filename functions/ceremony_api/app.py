"""Ceremonies API: open a ceremony (which starts its state machine execution), add a witness's
signature, bless a gold ceremony (superadmin), read a ceremony; the witness registry.

When the witnesses (and, for gold, the blessing) are complete, the waiting execution is
resumed with ``SendTaskSuccess``: the task token is claimed once (``claim_task_token``), so
this API and the "Wait for witnesses" step never both resume it."""

import base64
import json
from typing import Annotated, Any, Literal

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field

from hallmark.adapters import runtime
from hallmark.canonical import sha256_hex
from hallmark.ceremony import Ceremony, ceremony_payload
from hallmark.ceremony.steps import Settled
from hallmark.errors import NotFound
from hallmark.http import caller_of, make_resolver
from hallmark.observability import logger, metrics, tracer

MAX_DEADLINE_S = 7 * 24 * 3600
ID = r"^[A-Za-z0-9][A-Za-z0-9._:@+-]{0,199}$"
app = make_resolver()


class NewCeremony(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    tier: Literal["bronze", "silver", "gold"]
    type: Literal["release", "update", "milestone", "collaboration"]
    artifacts: list[Annotated[str, Field(pattern=ID)]] = Field(min_length=1, max_length=50)
    blessing: str = Field(min_length=1, max_length=2000, description="The human-readable ceremony description.")
    deadlineSeconds: int = Field(default=MAX_DEADLINE_S, ge=1, le=MAX_DEADLINE_S,
                                 description="How long witnesses have before the ceremony lapses (default 7 days).")


class WitnessSignatureIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    signature: str = Field(min_length=1, max_length=512,
                           description="base64 DER ECDSA P-256/SHA-256 over the ceremony's signingPayload bytes")
    witnessId: str | None = Field(default=None, pattern=ID, description="Defaults to the caller; must be the caller.")


class NewWitness(BaseModel):
    model_config = ConfigDict(extra="forbid")
    witnessId: str = Field(pattern=ID)
    publicKeyPem: str = Field(min_length=100, max_length=4096)


def view(ceremony: Ceremony) -> dict[str, Any]:
    """The ceremony as callers see it, with the exact bytes each witness signs."""
    payload = ceremony_payload(ceremony)
    doc = ceremony.to_json_dict()
    doc["requiredWitnesses"] = ceremony.rule.min_witnesses
    doc["requiresBlessing"] = ceremony.rule.requires_blessing
    doc["signingPayload"] = base64.b64encode(payload).decode("ascii")
    doc["statement"] = json.loads(payload)
    doc["statementDigest"] = sha256_hex(payload)
    return doc


def _settled(settled: Settled) -> dict[str, Any]:
    if settled.resumption == "not_waiting":
        # The deadline fired first: "Mark lapsed" finds the ceremony Witnessed and signs it.
        logger.info("task token no longer waiting", extra={"ceremonyId": settled.ceremony.ceremony_id})
    elif settled.resumption == "failed":
        logger.error("could not resume the ceremony execution", extra={"ceremonyId": settled.ceremony.ceremony_id})
    return {"ceremony": view(settled.ceremony), "resumed": settled.resumed}


@app.post("/ceremonies")
@tracer.capture_method
def open_ceremony(body: Annotated[NewCeremony, Body()]) -> Response[Any]:
    ceremony, execution_arn = runtime.ceremony_steps().open(
        initiator=caller_of(app).sub, tier=body.tier, ceremony_type=body.type, artifacts=body.artifacts,
        blessing=body.blessing, now=runtime.now(), deadline_seconds=body.deadlineSeconds)
    metrics.add_metric(name="ceremony.ceremonies_opened_total", unit=MetricUnit.Count, value=1)
    return Response(201, "application/json", body={**view(ceremony), "executionArn": execution_arn})


@app.get("/ceremonies/<ceremonyId>")
@tracer.capture_method
def get_ceremony(ceremonyId: str) -> dict[str, Any]:
    svc, _repo, _registry = runtime.ceremony()
    return view(svc.load(ceremonyId))


@app.post("/ceremonies/<ceremonyId>/witnesses")
@tracer.capture_method
def add_witness(ceremonyId: str, body: Annotated[WitnessSignatureIn, Body()]) -> Response[Any]:
    caller = caller_of(app)
    settled = runtime.ceremony_steps().add_witness(ceremonyId, body.witnessId or caller.sub, body.signature,
                                                   runtime.now(), caller_sub=caller.sub)
    return Response(201, "application/json", body=_settled(settled))


@app.post("/ceremonies/<ceremonyId>/blessing")
@tracer.capture_method
def bless(ceremonyId: str) -> Response[Any]:
    settled = runtime.ceremony_steps().bless(ceremonyId, caller_of(app), runtime.now())
    return Response(201, "application/json", body=_settled(settled))


@app.post("/witnesses")
@tracer.capture_method
def register_witness(body: Annotated[NewWitness, Body()]) -> Response[Any]:
    change = runtime.ceremony_steps().register_witness(caller_of(app), body.witnessId, body.publicKeyPem,
                                                       runtime.now())
    return Response(201, "application/json", body=change.witness.to_json_dict())


@app.get("/witnesses/<witnessId>")
@tracer.capture_method
def get_witness(witnessId: str) -> dict[str, Any]:
    _svc, _repo, registry = runtime.ceremony()
    witness = registry.get(witnessId)
    if witness is None:
        raise NotFound("witness", witnessId, code="unknown_witness")
    return witness.to_json_dict()


@logger.inject_lambda_context(correlation_id_path="requestContext.requestId")
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
