"""Who may release what: package names (owner, TUF-style delegations) and the impact policy.

GET /names/{name}; PUT /names/{name}/owner (superadmin assigns); POST/DELETE
/names/{name}/delegations (the owner or a superadmin delegates a name or its namespace);
GET /policies/impact (the policy in force); POST /policies/impact/proposals (superadmin
proposes a new document: approvers sign its digest at POST /upgrades/{proposalId}/approvals);
POST /policies/impact/proposals/{proposalId}/apply (superadmin, once 3-of-5 approved)."""

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field

from hallmark._domain import Caller
from hallmark.adapters import runtime
from hallmark.http import caller_of, make_resolver
from hallmark.observability import logger, tracer
from hallmark.release.impact_policy import ImpactPolicyStore
from hallmark.release.names import SUB_PATTERN, NameRegistry

app = make_resolver()


class NewOwner(BaseModel):
    model_config = ConfigDict(extra="forbid")
    owner: str = Field(min_length=1, max_length=256, pattern=SUB_PATTERN)


class NewDelegation(BaseModel):
    model_config = ConfigDict(extra="forbid")
    delegate: str = Field(min_length=1, max_length=256, pattern=SUB_PATTERN)
    prefix: bool = False


class PolicyProposal(BaseModel):
    model_config = ConfigDict(extra="forbid")
    document: dict[str, Any]


def _caller() -> Caller:
    return caller_of(app)


def _names() -> NameRegistry:
    return NameRegistry(runtime.docs())


def _policies() -> ImpactPolicyStore:
    return ImpactPolicyStore(runtime.docs())


def _name_view(record: dict[str, Any]) -> dict[str, Any]:
    return {"name": record["name"], "owner": record["owner"], "claimedAt": record.get("claimedAt"),
            "claimedVia": record.get("claimedVia"), "delegations": record.get("delegations", []),
            "releases": record.get("releases", {})}


@app.get("/names/<name>")
def get_name(name: str) -> dict[str, Any]:
    return _name_view(_names().view(name))


@app.put("/names/<name>/owner")
@tracer.capture_method
def assign_owner(name: str, body: Annotated[NewOwner, Body()]) -> dict[str, Any]:
    return _name_view(runtime.release_policy_steps().assign(_caller(), name, body.owner))


@app.post("/names/<name>/delegations")
@tracer.capture_method
def delegate(name: str, body: Annotated[NewDelegation, Body()]) -> Response[Any]:
    record = runtime.release_policy_steps().delegate(_caller(), name, body.delegate, body.prefix)
    return Response(201, "application/json", body=_name_view(record))


@app.delete("/names/<name>/delegations/<delegate>")
@tracer.capture_method
def revoke(name: str, delegate: str) -> dict[str, Any]:
    return _name_view(runtime.release_policy_steps().revoke(_caller(), name, delegate))


@app.get("/policies/impact")
def current_policy() -> dict[str, Any]:
    return _policies().current(runtime.now()).view()


@app.post("/policies/impact/proposals")
@tracer.capture_method
def propose(body: Annotated[PolicyProposal, Body()]) -> Response[Any]:
    return Response(201, "application/json", body=runtime.release_policy_steps().propose(_caller(), body.document))


@app.get("/policies/impact/proposals/<proposalId>")
def get_proposal(proposalId: str) -> dict[str, Any]:
    return _policies().proposal(proposalId)


@app.post("/policies/impact/proposals/<proposalId>/apply")
@tracer.capture_method
def apply(proposalId: str) -> dict[str, Any]:
    return runtime.release_policy_steps().apply(_caller(), proposalId)


@logger.inject_lambda_context(correlation_id_path="requestContext.requestId")
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
