"""POST /webhooks {url, bands} (superadmin): register a subscriber; the answer carries its signing
secret (Standard Webhooks, ``whsec_...``) once; it is stored only encrypted under the webhooks KMS
key. GET /webhooks (superadmin): the subscribers, without secrets. DELETE /webhooks/{subscriberId}
(superadmin): no more deliveries to it (queued ones are dropped)."""

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body
from aws_lambda_powertools.utilities.typing import LambdaContext

from hallmark.adapters import runtime
from hallmark.http import caller_of, make_resolver
from hallmark.observability import logger, tracer
from hallmark.scoring.webhooks import SubscribeRequest

app = make_resolver()


@app.post("/webhooks")
@tracer.capture_method
def subscribe(body: Annotated[SubscribeRequest, Body()]) -> Response[Any]:
    sub, secret = runtime.webhooks().subscribe(body, caller_of(app).sub)
    logger.info("webhook subscriber added", extra={"subscriberId": sub.subscriberId, "bands": sub.bands})
    return Response(201, "application/json", body={**sub.public(), "secret": secret},
                    headers={"cache-control": "no-store"})


@app.delete("/webhooks/<subscriberId>")
@tracer.capture_method
def unsubscribe(subscriberId: str) -> dict[str, Any]:
    return runtime.webhooks().deactivate(subscriberId).public()


@app.get("/webhooks")
@tracer.capture_method
def list_subscribers() -> dict[str, Any]:
    items = [s.public() for s in runtime.subscribers().list()]
    return {"items": items, "count": len(items)}


@logger.inject_lambda_context(correlation_id_path="requestContext.requestId")
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
