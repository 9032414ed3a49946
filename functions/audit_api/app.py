"""Auditor API: events (with their covering checkpoint), all / latest checkpoints, inclusion
proofs (against the latest or a named checkpoint), consistency proofs between two checkpoints,
and replay: the same verifier as `hallmark audit verify`, over the stored chain or an uploaded
export. `hallmark audit prove` checks the proof documents offline. Also the public `GET /keys`
(no token): each signing key's purpose, key id, algorithm, PEM and fingerprint."""

import json
import os
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field

from hallmark.adapters import runtime
from hallmark.adapters.runtime import audit_log
from hallmark.audit.replay import verify_export
from hallmark.errors import InvalidInput, NotFound
from hallmark.http import make_resolver
from hallmark.observability import logger, tracer
from hallmark.public_keys import describe_keys

app = make_resolver()
CHAIN_PATTERN = r"^[a-z][a-z0-9_-]{0,63}$"
#: The chain path parameter: declared (and so validated, and published in the OpenAPI document).
Chain = Annotated[str, Path(pattern=CHAIN_PATTERN, description="audit chain, e.g. release")]


class ReplayRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    events: str | None = Field(default=None, description="an exported <chain>.events.jsonl, verbatim")
    checkpoints: str | None = Field(default=None, description="the matching <chain>.checkpoints.jsonl")



@app.get("/keys")
def keys() -> dict[str, Any]:
    purposes = [p for p in os.environ.get("SIGNING_KEY_PURPOSES", "manifest,audit,proof").split(",") if p]
    return {"keys": describe_keys({p: runtime.signer(p) for p in purposes})}


@app.get("/packages/<packageId>/bundle")
@tracer.capture_method
def bundle(packageId: Annotated[str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")],
           order: Annotated[str | None, Query(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$",
                                              description="an order of this package: add its ledger and "
                                              "delivery proofs (the buyer, auditors, superadmins)")] = None,
           ) -> dict[str, Any]:
    """The release bundle: manifest, approvals with the registry keys, ceremony provenance and
    tier, the purchase's proofs (``?order=``), audit events with proofs."""
    from hallmark.access import require_order_reader, require_package_reader
    from hallmark.http import caller_of
    from hallmark.market.store import DocOrderRepository

    docs = runtime.docs()
    package = docs.get("package", packageId)
    if package is None:
        raise NotFound("package", packageId)
    caller = caller_of(app)
    bought = DocOrderRepository(docs).get(order) if order else None
    if order:  # the buyer of a purchase reads the bundle of what they bought
        if bought is None:
            raise NotFound("order", order)
        require_order_reader(caller, bought.buyer, order)
        if (docs.get("listing", bought.listing_id) or {}).get("packageId") != packageId:
            raise NotFound("order of package", f"{packageId}/{order}")
    else:
        require_package_reader(caller, package)
    return runtime.release_bundle(package, bought)

@app.get("/audit/<chain>/events")
def events(chain: Chain, after: Annotated[int, Query(ge=0)] = 0,
           limit: Annotated[int, Query(ge=1, le=1000)] = 1000) -> dict[str, Any]:
    lines, _ = audit_log().export(chain)
    page = [json.loads(x) for x in lines[after:after + limit]]
    nxt = after + len(page) if after + len(page) < len(lines) else None
    return {"chain": chain, "events": page, "next": nxt, "total": len(lines)}


@app.get("/audit/<chain>/checkpoints")
def checkpoints(chain: Chain) -> dict[str, Any]:
    _, ckpts = audit_log().export(chain)
    return {"chain": chain, "checkpoints": [json.loads(c) for c in ckpts]}


@app.get("/audit/<chain>/checkpoints/latest")
def latest(chain: Chain) -> dict[str, Any]:
    record = audit_log().store.latest_checkpoint(chain)
    if record is None:
        raise NotFound("checkpoint of chain", chain)
    return {"chain": chain, "checkpoint": record.checkpoint}


@app.get("/audit/<chain>/checkpoint")
def checkpoint_note(chain: Chain, seq: Annotated[int | None, Query(ge=1, description="seq of the checkpoint "
                                                                  "(default: the latest)")] = None) -> Response[str]:
    """The checkpoint as a C2SP tlog-checkpoint signed note (text/plain)."""
    store = audit_log().store
    record = store.latest_checkpoint(chain) if seq is None else store.checkpoint_record(chain, seq)
    if record is None:
        raise NotFound("checkpoint of chain", chain if seq is None else f"{chain}/{seq}")
    if not record.note:
        raise NotFound("signed note of checkpoint", f"{chain}/{record.seq}", code="no_signed_note")
    return Response(200, "text/plain; charset=utf-8", record.note)


@app.get("/audit/<chain>/proof/<seq>")
def proof(chain: Chain, seq: Annotated[int, Path(ge=1, description="event seq")],
          checkpoint: Annotated[int | None, Query(ge=1, description="seq of the checkpoint to prove against "
                                                  "(default: the latest)")] = None) -> dict[str, Any]:
    log = audit_log()
    if checkpoint is None:
        latest = log.store.latest_checkpoint(chain)
        if latest is None or seq > latest.seq:
            raise NotFound("checkpointed event", f"{chain}/{seq}")
    elif log.store.get_checkpoint(chain, checkpoint) is None:
        raise NotFound("checkpoint", f"{chain}/{checkpoint}")
    elif seq > checkpoint:
        raise NotFound("event covered by checkpoint", f"{chain}/{seq}@{checkpoint}")
    return {"chain": chain, "proof": log.inclusion_proof(chain, seq, checkpoint).to_dict()}


@app.get("/audit/<chain>/consistency")
def consistency(chain: Chain,
                from_: Annotated[int, Query(alias="from", ge=1, description="seq of the older checkpoint")],
                to: Annotated[int, Query(ge=1, description="seq of the newer checkpoint")]) -> dict[str, Any]:
    if from_ > to:
        raise InvalidInput("'from' must not be after 'to'", {"from": from_, "to": to})
    log = audit_log()
    for ckpt_seq in (from_, to):
        if log.store.get_checkpoint(chain, ckpt_seq) is None:
            raise NotFound("checkpoint", f"{chain}/{ckpt_seq}")
    return {"chain": chain, "proof": log.consistency_proof(chain, from_, to).to_dict()}


@app.post("/audit/<chain>/replay")
@tracer.capture_method
def replay(chain: Chain, body: Annotated[ReplayRequest | None, Body()] = None) -> dict[str, Any]:
    log = audit_log()
    pem = log.signer.public_key_pem()
    if body and body.events is not None:
        event_lines, ckpt_lines = body.events.splitlines(), (body.checkpoints or "").splitlines()
        source = "uploaded export"
    else:
        event_lines, ckpt_lines = log.export(chain)
        source = "stored chain"
    report = verify_export(event_lines, ckpt_lines, pem)
    return {"chain": chain, "source": source, "ok": report.ok, "events": report.events,
            "checkpoints": report.checkpoints, "firstBadSeq": report.first_bad_seq, "reason": report.reason}


@logger.inject_lambda_context(correlation_id_path="requestContext.requestId")
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
