"""Deployments that deploy (issue 24): the deployment flow (``statemachines/deployment.asl.json``),
one Lambda per step, the drift watch and revocation, and the deployments API.

The step functions change Lambda functions, which the generic ``Access`` kinds do not express: the
deployer's permissions (only ``hallmark-app-*`` functions, only the per-environment execution
role) are attached by ``cdk/deployment.py`` to the functions named in :data:`DEPLOYERS`, and the
local cloud provisions the execution roles and the operators' topic in
``hallmark_tools.localcloud.deployments``."""

from __future__ import annotations

from hallmark_tools.topology.model import (
    AUDIT_SEND,
    Access,
    Function,
    Part,
    Route,
    Rule,
    StateMachine,
    Target,
    rw,
)

#: What admission reads: the package and ceremony records, the release bundle (manifest
#: envelope, audit proofs), the public keys, the pinned bytes.
EVIDENCE = (
    rw("table", "state"), AUDIT_SEND, Access("table", "audit", ("read",)),
    Access("bucket", "manifests", ("read",)), Access("bucket", "packages", ("read",)),
    *(Access("key", k, ("read",)) for k in ("manifest", "audit", "proof")),
)
#: The drift watch's schedule (every 15 minutes on AWS; the local cloud ticks every few seconds).
DRIFT_SCHEDULE = "rate(15 minutes)"
BAKE_SECONDS = "600"
ENV = (("DEPLOY_BAKE_SECONDS", BAKE_SECONDS),)


def _step(name: str, description: str) -> Function:
    return Function(name=name, description=description, state_machine_task=True, timeout=120, access=EVIDENCE,
                    env=ENV)


STEPS = (
    _step("deploy_admit", "Deployment: admission from the public keys (manifest, inclusion proof, ceremony tier)."),
    _step("deploy_release", "Deployment: the pinned signed bytes deployed, a version published, CodeSha256 asserted."),
    _step("deploy_profile", "Deployment: the tier profile (concurrency, log retention, alarms with actions)."),
    _step("deploy_shift", "Deployment: the alias moves (10 % canary, or 100 % for a first deployment)."),
    _step("deploy_judge", "Deployment: after the bake, 100 % or rolled back by the version's alarms."),
    _step("deploy_fail", "Deployment: a step failed; traffic back on the previous version, recorded."),
)
WATCHERS = (
    Function(name="deploy_drift", description="Drift watch: live functions compared with their deployment records.",
             timeout=300, access=EVIDENCE, env=ENV),
    Function(name="deploy_revoke", description="Revocation: an unratified emergency release's deployments go back.",
             timeout=300, access=EVIDENCE, env=ENV),
)
#: Functions that get the deployer's Lambda/IAM/CloudWatch/SNS permissions (cdk/deployment.py).
DEPLOYERS = (*(f.name for f in (*STEPS, *WATCHERS)), "deployments_api")

PART = Part(
    functions=(
        *STEPS,
        *WATCHERS,
        Function(
            name="deployments_api",
            description="Deployments: request (202, Idempotency-Key), status, list, superadmin rollback.",
            routes=(
                Route("POST", "/deployments", roles=("submitter", "superadmin")),
                Route("GET", "/deployments"),
                Route("GET", "/deployments/{deploymentId}"),
                Route("POST", "/deployments/{deploymentId}/rollback", roles=("superadmin",)),
                Route("POST", "/deployment-plans", roles=("submitter", "superadmin")),
                Route("GET", "/deployment-plans/{planId}"),
            ),
            access=(*EVIDENCE, Access("state_machine", "deployment", ("start",))),
            env=ENV,
        ),
    ),
    rules=(
        Rule(name="deploy-drift-tick", schedule=DRIFT_SCHEDULE, bus="default", target=Target("function", "deploy_drift")),
        Rule(name="deploy-revoke", pattern={"source": ["hallmark"], "detail-type": ["UpgradeRolledBack"]},
             target=Target("function", "deploy_revoke")),
    ),
    state_machines=(
        StateMachine(
            name="deployment",
            asl="deployment.asl.json",
            substitutions={
                "DeployAdmitFunctionArn": ("function", "deploy_admit"),
                "DeployReleaseFunctionArn": ("function", "deploy_release"),
                "DeployProfileFunctionArn": ("function", "deploy_profile"),
                "DeployShiftFunctionArn": ("function", "deploy_shift"),
                "DeployJudgeFunctionArn": ("function", "deploy_judge"),
                "DeployFailFunctionArn": ("function", "deploy_fail"),
            },
        ),
    ),
)
