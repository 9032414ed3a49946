"""Settlement plans: multi-party revenue splits in basis points (summing to 10,000) that need
the multisig approval of the governance registry before any payout.

POST /settlements (the seller or superadmin) stores the plan and opens its approval
(SettlementPlanned); POST /settlements/{id}/approvals (approvers) records signed decisions
over {settlementId, planDigest, decision, expiresAt, nonce}; POST /settlements/{id}/payouts
(superadmin) posts the split as one balanced ledger transaction (PayoutPosted), refused with
409 not_approved until the plan is approved."""

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body, Query
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field

from hallmark.adapters import runtime
from hallmark.governance.models import SubjectStatus
from hallmark.governance.queries import list_subjects
from hallmark.http import caller_of, make_resolver
from hallmark.market.ledger import MAX_MINOR
from hallmark.market.ports import SettlementGovernance
from hallmark.observability import logger, tracer

app = make_resolver()
ID = r"^[A-Za-z0-9][A-Za-z0-9._:@-]*$"


class Party(BaseModel):
    model_config = ConfigDict(extra="forbid")
    party: str = Field(min_length=1, max_length=128, pattern=ID)
    account: str | None = Field(default=None, min_length=1, max_length=256, pattern=r"^\S+$")
    bps: int = Field(ge=1, le=10_000, strict=True)


class NewSettlement(BaseModel):
    model_config = ConfigDict(extra="forbid")
    settlementId: str | None = Field(default=None, min_length=1, max_length=128, pattern=ID)
    listingId: str | None = Field(default=None, min_length=1, max_length=128)
    sellerAccount: str | None = Field(default=None, min_length=1, max_length=256, pattern=r"^\S+$")
    parties: list[Party] = Field(min_length=1, max_length=20)
    memo: str = Field(default="", max_length=500)


class Payout(BaseModel):
    model_config = ConfigDict(extra="forbid")
    amountMinor: int = Field(gt=0, le=MAX_MINOR, strict=True)
    payoutId: str = Field(min_length=1, max_length=128, pattern=ID)


def governance() -> SettlementGovernance:
    """The seam to the multisig: GovernanceService on the governance repositories."""
    gov: SettlementGovernance = runtime.governance()
    return gov


@app.post("/settlements")
@tracer.capture_method
def plan(body: Annotated[NewSettlement, Body()]) -> Response[Any]:
    view = runtime.market_service().plan_settlement(body.model_dump(), caller_of(app), governance(), runtime.now())
    return Response(201, "application/json", body=view)


@app.get("/settlements")
@tracer.capture_method
def list_settlements(status: Annotated[SubjectStatus | None, Query()] = None,
                     limit: Annotated[int, Query(ge=1, le=100)] = 50,
                     nextToken: Annotated[str | None, Query(max_length=2048)] = None) -> dict[str, Any]:
    # approvers, auditors and superadmins only (the route's roles): each reads every settlement
    items, token = list_subjects(runtime.docs(), "settlement", status=status, limit=limit, next_token=nextToken)
    service, gov = runtime.market_service(), governance()
    return {"items": [service.settlement_view(s.subject_id, gov) for s in items], "count": len(items),
            "nextToken": token}


@app.get("/settlements/<settlementId>")
@tracer.capture_method
def get_settlement(settlementId: str) -> dict[str, Any]:
    return runtime.market_service().settlement_view(settlementId, governance(), caller_of(app))


@app.post("/settlements/<settlementId>/approvals")
@tracer.capture_method
def approve(settlementId: str, form: Annotated[dict[str, Any], Body()]) -> Response[Any]:
    # parsed (and every refusal audited) by the one approval code path, GovernanceService
    view = runtime.market_service().approve_settlement(settlementId, form, caller_of(app),
                                               governance(), runtime.now())
    return Response(201, "application/json", body=view)


@app.post("/settlements/<settlementId>/payouts")
@tracer.capture_method
def payout(settlementId: str, body: Annotated[Payout, Body()]) -> Response[Any]:
    result = runtime.market_service().payout(settlementId, amount_minor=body.amountMinor, payout_id=body.payoutId,
                                     caller=caller_of(app), governance=governance(), now=runtime.now())
    return Response(200 if result["replayed"] else 201, "application/json", body=result)


@logger.inject_lambda_context(correlation_id_path="requestContext.requestId")
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
