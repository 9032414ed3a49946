"""GET /briefs (filters: domain, impact_level, since = Unix ms or RFC 3339; newest first) and
GET /briefs/{briefId}: the BriefPayloads the band router made of same_day and weekly events.
POST /briefs/{briefId}/feedback: the caller's verdict on it (useful, not useful, or the band it
should have had), one per caller and brief, audited FeedbackRecorded; it feeds the EVI weights."""

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body, Query
from aws_lambda_powertools.utilities.typing import LambdaContext

from hallmark.adapters import runtime
from hallmark.errors import DomainError, NotFound
from hallmark.http import caller_of, make_resolver
from hallmark.observability import logger, tracer
from hallmark.pagination import MAX_SCAN, paginate
from hallmark.scoring.briefs import since_ms
from hallmark.scoring.schema import Domain, ImpactLevel
from hallmark.scoring.weights import FeedbackIn

app = make_resolver()


@app.get("/briefs")
@tracer.capture_method
def list_briefs(domain: Annotated[Domain | None, Query()] = None,
                impact_level: Annotated[ImpactLevel | None, Query()] = None,
                since: Annotated[str | None, Query(max_length=40)] = None,
                limit: Annotated[int, Query(ge=1, le=200)] = 50,
                nextToken: Annotated[str | None, Query(max_length=2048)] = None) -> dict[str, Any]:
    try:
        since_value = since_ms(since)
    except ValueError as exc:
        raise DomainError("invalid_request", str(exc), 400, {"since": since}) from None
    stored = runtime.briefs().list(domain=domain, impact_level=impact_level, since_ms=since_value,
                                           limit=MAX_SCAN)
    items, token = paginate(stored, key=lambda b: (b.brief.created_at, b.brief.brief_id), limit=limit,
                            next_token=nextToken, route="GET /briefs", newest_first=True,
                            filters={"domain": domain, "impact_level": impact_level, "since": since_value})
    return {"items": [b.as_dict() for b in items], "count": len(items), "nextToken": token}


@app.get("/briefs/<briefId>")
@tracer.capture_method
def get_brief(briefId: str) -> dict[str, Any]:
    brief = runtime.briefs().get(briefId)
    if brief is None:
        raise NotFound("brief", briefId)
    return brief.as_dict()


@app.post("/briefs/<briefId>/feedback")
@tracer.capture_method
def brief_feedback(briefId: str, body: Annotated[FeedbackIn, Body()]) -> Response[Any]:
    record, changed = runtime.feedback().record("brief", briefId, caller_of(app).sub, body)
    return Response(201 if changed else 200, "application/json", body=record)


@logger.inject_lambda_context(correlation_id_path="requestContext.requestId")
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
