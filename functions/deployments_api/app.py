"""Deployments: ``POST /deployments`` requests one (202 with the id and its status URL; the
``Idempotency-Key`` header returns the first answer again; 409 with the running deployment's id
while one of the same function and environment runs) and starts the deployment flow;
``GET /deployments/{id}`` its stage history; ``GET /deployments?package=&environment=`` a page;
``POST /deployments/{id}/rollback`` (superadmin) the live one back to the previous good version.

``POST /deployment-plans`` is the provenance-aware plan of an artifact (tier sizing from verified
provenance, nothing deployed), audited DeploymentPlanned / DeploymentRefused."""

from typing import Annotated, Any, Literal

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body, Query
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field

from hallmark.adapters import runtime
from hallmark.http import caller_of, make_resolver
from hallmark.observability import logger, metrics, tracer

app = make_resolver()
Environment = Literal["development", "staging", "production"]


class DeploymentRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    package: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
    version: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9.+_-]*$")
    environment: Environment


class PlanRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    artifactId: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:@+-]{0,199}$")
    environment: Environment


@app.post("/deployments")
@tracer.capture_method
def request(body: Annotated[DeploymentRequest, Body()]) -> Response[Any]:
    caller = caller_of(app)
    key = app.current_event.headers.get("idempotency-key")
    doc, created = runtime.deployment_steps().request(body.package, body.version, body.environment, caller.sub, key)
    if created:
        metrics.add_metric(name="deploy.requested_total", unit=MetricUnit.Count, value=1)
    url = f"/deployments/{doc['deploymentId']}"
    return Response(202, "application/json", headers={"Location": url, "Idempotency-Replayed": str(not created).lower()},
                    body={"deploymentId": doc["deploymentId"], "statusUrl": url, "stage": doc["stage"],
                          "functionName": doc["functionName"]})


@app.get("/deployments")
@tracer.capture_method
def list_deployments(package: Annotated[str | None, Query(max_length=128)] = None,
                     environment: Annotated[Environment | None, Query()] = None,
                     limit: Annotated[int, Query(ge=1, le=100)] = 50,
                     nextToken: Annotated[str | None, Query(max_length=2048)] = None) -> dict[str, Any]:
    result: dict[str, Any] = runtime.deployment_steps().list_deployments(
        package=package, environment=environment, limit=limit, next_token=nextToken)
    return result


@app.get("/deployments/<deploymentId>")
@tracer.capture_method
def get_deployment(deploymentId: str) -> dict[str, Any]:
    result: dict[str, Any] = runtime.deployment_steps().get(deploymentId)
    return result


@app.post("/deployments/<deploymentId>/rollback")
@tracer.capture_method
def rollback(deploymentId: str) -> dict[str, Any]:
    result: dict[str, Any] = runtime.deployment_steps().rollback(deploymentId, caller_of(app).sub)
    return result


@app.post("/deployment-plans")
@tracer.capture_method
def plan(body: Annotated[PlanRequest, Body()]) -> Response[Any]:
    caller = caller_of(app)
    doc = runtime.deployment_plan_steps().plan(body.artifactId, body.environment, caller.sub)
    return Response(201, "application/json", body=doc)


@app.get("/deployment-plans/<planId>")
@tracer.capture_method
def get_plan(planId: str) -> dict[str, Any]:
    return runtime.deployment_plan_steps().get(planId)


@logger.inject_lambda_context(correlation_id_path="requestContext.requestId")
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
