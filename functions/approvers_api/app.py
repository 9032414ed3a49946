"""The approver registry (5 approvers, P-256 public keys), managed by superadmin and audited."""

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body, Query
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field

from hallmark._domain import Caller
from hallmark.adapters import runtime
from hallmark.governance.registry import ApproverRegistry
from hallmark.http import caller_of, make_resolver
from hallmark.observability import logger, tracer
from hallmark.pagination import paginate

app = make_resolver()


class NewApprover(BaseModel):
    model_config = ConfigDict(extra="forbid")
    approverId: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._@-]*$")
    publicKeyPem: str = Field(min_length=100, max_length=4096)


class NewKey(BaseModel):
    model_config = ConfigDict(extra="forbid")
    publicKeyPem: str = Field(min_length=100, max_length=4096)


def registry() -> ApproverRegistry:
    return runtime.approver_registry()


def _caller() -> Caller:
    return caller_of(app)


def _public(a: Any) -> dict[str, Any]:
    return {k: v for k, v in a.to_json_dict().items() if k != "previousKeys"}


@app.get("/approvers")
def list_approvers(limit: Annotated[int, Query(ge=1, le=200)] = 100,
                   nextToken: Annotated[str | None, Query(max_length=2048)] = None) -> dict[str, Any]:
    page, token = paginate(registry().active(), key=lambda a: (a.approver_id,), limit=limit, next_token=nextToken,
                           route="GET /approvers")
    return {"approvers": [_public(a) for a in page], "threshold": runtime.governance().policy.settlement,
            "nextToken": token}


@app.post("/approvers")
@tracer.capture_method
def add_approver(body: Annotated[NewApprover, Body()]) -> Response[Any]:
    approver = runtime.approver_steps().add(_caller(), body.approverId, body.publicKeyPem)
    return Response(201, "application/json", body=_public(approver))


@app.put("/approvers/<approverId>/key")
def rotate_key(approverId: str, body: Annotated[NewKey, Body()]) -> dict[str, Any]:
    return _public(runtime.approver_steps().rotate(_caller(), approverId, body.publicKeyPem))


@app.delete("/approvers/<approverId>")
def remove_approver(approverId: str) -> dict[str, Any]:
    return _public(runtime.approver_steps().remove(_caller(), approverId))


@logger.inject_lambda_context(correlation_id_path="requestContext.requestId")
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
