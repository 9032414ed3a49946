"""Erasure of a person, governed like a settlement (hallmark.privacy.steps, docs/privacy.md).

POST /privacy/erasure (superadmin) opens it over the person's pseudonym; POST
/privacy/erasure/{erasureId}/approvals (approvers) records signed decisions (kind settlement);
POST /privacy/erasure/{erasureId}/execute (superadmin), once approved, scrubs the state table,
destroys the person's key material and audits SubjectErased; GET shows its state."""

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body, Path
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field

from hallmark.adapters import runtime
from hallmark.http import caller_of, make_resolver
from hallmark.observability import logger, tracer

app = make_resolver()
ErasureId = Annotated[str, Path(pattern=r"^era-[0-9a-f]{32}$", description="an erasure, era-<32 hex>")]


class ErasureRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    subjectId: str = Field(min_length=1, max_length=256, description="the person's id (an OIDC sub)")


@app.post("/privacy/erasure")
@tracer.capture_method
def request(body: Annotated[ErasureRequest, Body()]) -> Response[Any]:
    view = runtime.erasure_steps().request(caller_of(app), body.subjectId, runtime.now())
    return Response(201, "application/json", body=view)


@app.get("/privacy/erasure/<erasureId>")
@tracer.capture_method
def get_erasure(erasureId: ErasureId) -> dict[str, Any]:
    return dict(runtime.erasure_steps().view(erasureId))


@app.post("/privacy/erasure/<erasureId>/approvals")
@tracer.capture_method
def approve(erasureId: ErasureId, form: Annotated[dict[str, Any], Body()]) -> Response[Any]:
    view = runtime.erasure_steps().approve(caller_of(app), erasureId, form, runtime.now())
    return Response(201, "application/json", body=view)


@app.post("/privacy/erasure/<erasureId>/execute")
@tracer.capture_method
def execute(erasureId: ErasureId) -> dict[str, Any]:
    return dict(runtime.erasure_steps().execute(caller_of(app), erasureId, runtime.now()))


@logger.inject_lambda_context(correlation_id_path="requestContext.requestId")
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
