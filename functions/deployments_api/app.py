"""Provenance-aware deployment: POST /deployments plans a deployment of an artifact only if
its provenance verifies (DSSE envelope under the proof key, matching the artifact, its tier
and ceremony); the tier picks the resource profile (doubled in production) and the log and
metric retention; the signature goes into the plan's annotations. Plans and refusals are
audited (DeploymentPlanned / DeploymentRefused)."""

import uuid
from typing import Annotated, Any, Literal

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field

from hallmark._domain import emit_all
from hallmark.adapters import runtime
from hallmark.adapters.dynamo_ceremony import ceremony_runtime
from hallmark.canonical import to_rfc3339
from hallmark.errors import DomainError, NotFound
from hallmark.http import caller_of, make_resolver
from hallmark.observability import logger, metrics, tracer

CHAIN = "ceremony"
KIND = "deployment"
app = make_resolver()


class DeploymentRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    artifactId: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:@+-]{0,199}$")
    environment: Literal["development", "staging", "production"]


@app.post("/deployments")
@tracer.capture_method
def plan(body: Annotated[DeploymentRequest, Body()]) -> Response[Any]:
    caller = caller_of(app)
    svc, _repo, _registry = ceremony_runtime()
    deployment_id = f"dep-{uuid.uuid4()}"
    try:
        planned = svc.plan_deployment(body.artifactId, body.environment, actor=caller.sub,
                                      deployment_id=deployment_id)
    except DomainError as exc:
        # An audited refusal: DeploymentRefused is recorded, nothing else changes.
        emit_all(runtime.audit(), CHAIN, list(exc.events))
        if exc.events:
            metrics.add_metric(name="ceremony.deployments_refused_total", unit=MetricUnit.Count, value=1)
        raise
    doc = {"deploymentId": deployment_id, "plannedBy": caller.sub, "plannedAt": to_rfc3339(runtime.now(), "auto"),
           **planned.plan.to_json_dict()}
    runtime.docs().create(KIND, deployment_id, doc)
    emit_all(runtime.audit(), CHAIN, planned.events)
    metrics.add_metric(name="ceremony.deployments_planned_total", unit=MetricUnit.Count, value=1)
    return Response(201, "application/json", body=doc)


@app.get("/deployments/<deploymentId>")
@tracer.capture_method
def get_deployment(deploymentId: str) -> dict[str, Any]:
    doc = runtime.docs().get(KIND, deploymentId)
    if doc is None:
        raise NotFound("deployment", deploymentId)
    doc.pop("version", None)
    return doc


@logger.inject_lambda_context(correlation_id_path="requestContext.requestId")
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
