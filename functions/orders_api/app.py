"""POST /listings/{listingId}/checkout (any authenticated buyer; the buyer is the token's sub)
GET /orders (the caller's own orders; auditors and superadmins: all; nextToken) and GET
/orders/{orderId} (the buyer, or an auditor/superadmin), and GET /orders/{orderId}/content (the
buyer only: the delivery decrypted inside this function with KMS, base64 in JSON; the delivery
key never leaves KMS and the buyer needs only the token).

Checkout is idempotent on the ``Idempotency-Key`` header and the caller's sub (Powertools
Idempotency on the ``idempotency`` table): a retry with the same key returns the first answer
(``Idempotency-Replayed: true``) and charges nothing; the same key for another listing is
refused (422). Below that, the order id derives from the same pair and the ledger transaction
ids from the order, so even a retry after the idempotency record expired charges once.
"""

import re
from collections.abc import Callable
from functools import cache
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.utilities.idempotency import (
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyValidationError,
)
from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import DataRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from hallmark.adapters import runtime
from hallmark.errors import DomainError
from hallmark.http import caller_of, error_response, make_resolver
from hallmark.market.orders import OrderStatus
from hallmark.observability import SERVICE, logger, tracer

app = make_resolver()
HEADER = "Idempotency-Key"
REPLAYED = "__replayed__"
_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")


def _mark_replayed(response: Any, idempotent_data: DataRecord) -> Any:
    return {**response, REPLAYED: True} if isinstance(response, dict) else response


CONFIG = IdempotencyConfig(
    event_key_jmespath="[buyer, idempotencyKey]",
    payload_validation_jmespath="listingId",
    raise_on_no_idempotency_key=True,
    expires_after_seconds=24 * 3600,
    response_hook=_mark_replayed,
)


def _checkout(request: dict[str, str]) -> dict[str, Any]:
    return runtime.market_service().checkout(listing_id=request["listingId"], buyer=request["buyer"],
                                     idempotency_key=request["idempotencyKey"], now=runtime.now(),
                                     queue=runtime.delivery_queue())


@cache
def idempotent_checkout() -> Callable[..., dict[str, Any]]:
    store = runtime.idempotency_store()
    checkout: Callable[..., dict[str, Any]] = idempotent_function(
        _checkout, data_keyword_argument="request", persistence_store=store, config=CONFIG)
    return checkout


@app.post("/listings/<listingId>/checkout")
@tracer.capture_method
def checkout(listingId: str) -> Response[Any]:
    caller = caller_of(app)
    key = app.current_event.headers.get(HEADER.lower())
    if not key:
        raise DomainError("missing_idempotency_key", f"checkout needs an {HEADER} header", 400,
                          {"header": HEADER})
    if not _KEY.match(key):
        raise DomainError("invalid_idempotency_key", f"{HEADER} must be 1-255 visible ASCII characters", 400,
                          {"header": HEADER})
    body = dict(idempotent_checkout()(request={"listingId": listingId, "buyer": caller.sub, "idempotencyKey": key}))
    replayed = bool(body.pop(REPLAYED, False))
    if not replayed:
        with single_metric(name="market.checkouts_total", unit=MetricUnit.Count, value=1,
                           default_dimensions={"service": SERVICE}):
            pass
    return Response(201, "application/json", body=body,
                    headers={"Idempotency-Replayed": "true" if replayed else "false", "Location": f"/orders/{body['orderId']}"})


@app.get("/orders")
@tracer.capture_method
def list_orders(status: Annotated[OrderStatus | None, Query()] = None,
                limit: Annotated[int, Query(ge=1, le=100)] = 50,
                nextToken: Annotated[str | None, Query(max_length=2048)] = None) -> dict[str, Any]:
    items, token = runtime.market_service().list_orders(caller_of(app), status=status, limit=limit, next_token=nextToken)
    return {"items": items, "count": len(items), "nextToken": token}


@app.get("/orders/<orderId>")
@tracer.capture_method
def get_order(orderId: str) -> dict[str, Any]:
    caller = caller_of(app)
    return runtime.market_service().order_view(orderId, caller, runtime.delivery_store(), runtime.require("KEY_DELIVERY_ID"),
                                       runtime.now())


@app.get("/orders/<orderId>/content")
@tracer.capture_method
def get_content(orderId: str) -> dict[str, Any]:
    return runtime.download_delivery()(orderId, caller_of(app), runtime.now())


@app.exception_handler(IdempotencyAlreadyInProgressError)
def _in_progress(exc: IdempotencyAlreadyInProgressError) -> Response[Any]:
    return error_response(409, "checkout_in_progress", "a checkout with this Idempotency-Key is still running; retry")


@app.exception_handler(IdempotencyValidationError)
def _key_reused(exc: IdempotencyValidationError) -> Response[Any]:
    return error_response(422, "idempotency_key_reused", "this Idempotency-Key was used for another checkout",
                          {"header": HEADER})


@logger.inject_lambda_context(correlation_id_path="requestContext.requestId")
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    CONFIG.register_lambda_context(context)
    return app.resolve(event, context)
