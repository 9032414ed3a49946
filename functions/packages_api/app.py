"""POST /packages (submitter) and GET /packages/{packageId}: submit a package, get a presigned
upload URL; read its status, validator results, manifest reference and execution. GET /packages:
the packages the caller may read (filters name, status, submitter; newest first; nextToken)."""

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body, Query
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from hallmark.access import require_package_reader
from hallmark.adapters import runtime
from hallmark.http import caller_of, make_resolver
from hallmark.observability import logger, metrics, tracer
from hallmark.release.queries import list_packages
from hallmark.release.service import ReleaseService, SubmitRequest, presign_expiry
from hallmark.release.steps import UPLOAD_TTL_S

app = make_resolver()


def service() -> ReleaseService:
    return ReleaseService(runtime.docs(), runtime.audit(), governance=runtime.governance())


@app.post("/packages")
@tracer.capture_method
def submit(body: Annotated[SubmitRequest, Body()]) -> Response[Any]:
    caller = caller_of(app)
    steps = runtime.release_steps()
    steps.check_size(body.size)
    record = service().submit(body, caller.sub, caller.roles)
    url, headers = steps.upload_url(record)
    metrics.add_metric(name="release.submissions_total", unit=MetricUnit.Count, value=1)
    return Response(201, "application/json", body={
        "packageId": record["packageId"], "uploadUrl": url, "uploadMethod": "PUT", "uploadHeaders": headers,
        "expiresAt": presign_expiry(runtime.now(), UPLOAD_TTL_S), "status": record["status"]})


@app.get("/packages")
@tracer.capture_method
def list_all(name: Annotated[str | None, Query(min_length=1, max_length=214)] = None,
             status: Annotated[str | None, Query(pattern=r"^[A-Za-z]{1,32}$")] = None,
             submitter: Annotated[str | None, Query(min_length=1, max_length=256)] = None,
             limit: Annotated[int, Query(ge=1, le=200)] = 50,
             nextToken: Annotated[str | None, Query(max_length=2048)] = None) -> dict[str, Any]:
    items, token = list_packages(runtime.docs(), caller_of(app), name=name, status=status, submitter=submitter,
                                 limit=limit, next_token=nextToken)
    return {"items": items, "count": len(items), "nextToken": token}


@app.get("/packages/<packageId>")
@tracer.capture_method
def get_package(packageId: str) -> dict[str, Any]:
    doc = service().get(packageId)
    require_package_reader(caller_of(app), doc)
    return {
        "packageId": doc["packageId"], "status": doc["status"], "meta": doc["meta"],
        "submittedBy": doc["submittedBy"], "submittedAt": doc["submittedAt"],
        "validators": doc["results"], "reasons": doc["reasons"], "manifest": doc["manifest"],
        "listingId": doc["listingId"], "upgradeId": doc.get("upgradeId"),
        "impact": doc.get("impact", doc["meta"]["impact"]), "declaredImpact": doc.get("declaredImpact"),
        "policy": doc.get("policy"), "authority": doc.get("authority"),
        "executionArn": doc["executionArn"], "history": doc["history"], "restored": doc.get("restored"),
    }


@logger.inject_lambda_context(correlation_id_path="requestContext.requestId")
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
