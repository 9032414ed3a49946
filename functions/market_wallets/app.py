"""POST /wallets/deposit (superadmin): top up a party's wallet from the external funding
account, one balanced ledger transaction idempotent on depositId, with a signed ledger proof.
GET /wallets/me: the caller's balance."""

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body, Query
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field

from hallmark.adapters import runtime
from hallmark.http import caller_of, make_resolver
from hallmark.market.ledger import MAX_MINOR
from hallmark.observability import logger, tracer

app = make_resolver()
CURRENCY = r"^[A-Z]{3}$"


class Deposit(BaseModel):
    model_config = ConfigDict(extra="forbid")
    party: str = Field(min_length=1, max_length=128, pattern=r"^\S+$")
    amountMinor: int = Field(gt=0, le=MAX_MINOR, strict=True)
    currency: str = Field(default="USD", pattern=CURRENCY)
    depositId: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]*$")


@app.post("/wallets/deposit")
@tracer.capture_method
def deposit(body: Annotated[Deposit, Body()]) -> Response[Any]:
    result = runtime.market_service().deposit(party=body.party, amount_minor=body.amountMinor, currency=body.currency,
                                      deposit_id=body.depositId, actor=caller_of(app).sub, now=runtime.now())
    return Response(200 if result["replayed"] else 201, "application/json", body=result)


@app.get("/wallets/me")
@tracer.capture_method
def my_wallet(currency: Annotated[str, Query(pattern=CURRENCY)] = "USD") -> dict[str, Any]:
    return runtime.market_service().wallet(caller_of(app).sub, currency)


@logger.inject_lambda_context(correlation_id_path="requestContext.requestId")
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
