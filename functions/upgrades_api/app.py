"""Approvers' API: GET /upgrades (?status=Pending: the inbox; nextToken), GET /upgrades/{id}; POST /upgrades/{id}/approvals and /ratifications carry a
decision signed by the approver's own key. At the threshold the waiting execution resumes
(SendTaskSuccess); when the threshold can no longer be reached it ends Rejected.

The form is parsed by the domain (``GovernanceService``), not by the resolver, so that a
malformed form is refused like a forged one: with exactly one ``ApprovalRefused`` audit entry."""

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body, Query
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from hallmark.adapters import runtime
from hallmark.governance.models import ApprovalSubject, SubjectStatus
from hallmark.governance.queries import list_subjects
from hallmark.governance.service import ApprovalResult
from hallmark.http import caller_of, make_resolver
from hallmark.observability import logger, metrics, tracer

app = make_resolver()


def view(subject: ApprovalSubject) -> dict[str, Any]:
    doc = subject.to_json_dict()
    doc.pop("taskToken", None)  # a capability: never shown
    svc = runtime.governance()  # only decisions of approvers registered now count
    doc["approvalCount"] = svc.valid_count(subject, "approvals", "approve")
    doc["ratificationCount"] = svc.valid_count(subject, "ratifications", "ratify")
    return doc


def _settle(result: ApprovalResult) -> None:
    if runtime.governance_steps().settle(result):
        metrics.add_metric(name="governance.multisig_pending_total", unit=MetricUnit.Count, value=-1)


@app.get("/upgrades")
def list_upgrades(status: Annotated[SubjectStatus | None, Query()] = None,
                  limit: Annotated[int, Query(ge=1, le=100)] = 50,
                  nextToken: Annotated[str | None, Query(max_length=2048)] = None) -> dict[str, Any]:
    items, token = list_subjects(runtime.docs(), "upgrade", status=status, limit=limit, next_token=nextToken)
    return {"items": [view(s) for s in items], "count": len(items), "nextToken": token}


@app.get("/upgrades/<upgradeId>")
def get_upgrade(upgradeId: str) -> dict[str, Any]:
    return view(runtime.governance().load("upgrade", upgradeId))


@app.post("/upgrades/<upgradeId>/approvals")
@tracer.capture_method
def approve(upgradeId: str, form: Annotated[dict[str, Any], Body()]) -> Response[Any]:
    result = runtime.governance().decide("upgrade", upgradeId, form, caller_of(app).sub, runtime.now())
    _settle(result)
    return Response(201, "application/json", body={"outcome": result.outcome, "upgrade": view(result.subject)})


@app.post("/upgrades/<upgradeId>/ratifications")
@tracer.capture_method
def ratify(upgradeId: str, form: Annotated[dict[str, Any], Body()]) -> Response[Any]:
    result = runtime.governance().decide("upgrade", upgradeId, form, caller_of(app).sub, runtime.now(),
                                         "ratifications")
    _settle(result)
    return Response(201, "application/json", body={"outcome": result.outcome, "upgrade": view(result.subject)})


@logger.inject_lambda_context(correlation_id_path="requestContext.requestId")
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
