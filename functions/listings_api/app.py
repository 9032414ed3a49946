"""GET /listings and GET /listings/{listingId}: what the release pipeline published for sale
(price and currency, seller, tier, manifestSignatureId and manifest digest, the manifest's
place in the repository, the artifact's sha256)."""

from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.utilities.typing import LambdaContext

from hallmark.adapters import runtime
from hallmark.http import make_resolver
from hallmark.market.service import Catalogue
from hallmark.observability import logger, tracer

app = make_resolver()


@app.get("/listings")
@tracer.capture_method
def list_listings(limit: Annotated[int, Query(ge=1, le=500)] = 100,
                  nextToken: Annotated[str | None, Query(max_length=2048)] = None) -> dict[str, Any]:
    items, token = Catalogue(runtime.docs()).listings(limit, nextToken)
    return {"items": items, "count": len(items), "nextToken": token}


@app.get("/listings/<listingId>")
@tracer.capture_method
def get_listing(listingId: str) -> dict[str, Any]:
    return Catalogue(runtime.docs()).listing(listingId)


@logger.inject_lambda_context(correlation_id_path="requestContext.requestId")
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
