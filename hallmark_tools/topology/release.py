"""Release pipeline (DESIGN.md flow 1): submit, upload, validate in parallel, sign, publish."""

from __future__ import annotations

from hallmark_tools.topology.model import (
    AUDIT_SEND,
    BUS_PUT,
    Access,
    Function,
    Part,
    Route,
    Rule,
    StateMachine,
    Target,
    camel,
    rw,
)

VALIDATORS = ("static", "archive_safety", "security", "compliance", "attribution", "smoke")

PART = Part(
    functions=(
        Function(
            name="packages_api",
            description="Submit a package (presigned upload) and read its status.",
            routes=(
                Route("POST", "/packages", roles=("submitter", "superadmin")),
                Route("GET", "/packages/{packageId}"),
            ),
            access=(rw("table", "state"), Access("bucket", "packages", ("write",)), AUDIT_SEND),
        ),
        Function(
            name="release_policy_api",
            description="Who may release what: package names (owner, delegations) and the impact policy.",
            routes=(
                Route("GET", "/names/{name}", roles=("submitter", "superadmin", "auditor")),
                Route("PUT", "/names/{name}/owner", roles=("superadmin",)),
                Route("POST", "/names/{name}/delegations", roles=("submitter", "superadmin")),
                Route("DELETE", "/names/{name}/delegations/{delegate}", roles=("submitter", "superadmin")),
                Route("GET", "/policies/impact"),
                Route("POST", "/policies/impact/proposals", roles=("superadmin",)),
                Route("GET", "/policies/impact/proposals/{proposalId}", roles=("superadmin", "approver", "auditor")),
                Route("POST", "/policies/impact/proposals/{proposalId}/apply", roles=("superadmin",)),
            ),
            access=(rw("table", "state"), AUDIT_SEND),
        ),
        Function(
            name="release_intake",
            description="Release: registers the uploaded package and moves it to Validating.",
            state_machine_task=True,
            access=(rw("table", "state"), AUDIT_SEND),
        ),
        *(
            Function(
                name=f"validate_{v}",
                code="validate",
                description=f"Release: the {v.replace('_', ' ')} validator (read-only access to the package).",
                memory=1024 if v in ("smoke", "archive_safety") else 512,
                timeout=180 if v == "smoke" else 120,
                state_machine_task=True,
                access=(Access("bucket", "packages", ("read",)),),
            )
            for v in VALIDATORS
        ),
        Function(
            name="release_collect",
            description="Release: persists validator results with their digests and decides.",
            state_machine_task=True,
            access=(rw("table", "state"), AUDIT_SEND),
        ),
        Function(
            name="release_reject",
            description="Release: ends a package that failed validation as Rejected.",
            state_machine_task=True,
            access=(rw("table", "state"), AUDIT_SEND),
        ),
        Function(
            name="release_sign",
            description="Release: composes the in-toto manifest and signs it (DSSE, manifest KMS key).",
            state_machine_task=True,
            access=(
                rw("table", "state"),
                Access("bucket", "packages", ("read", "write")),
                Access("key", "manifest", ("sign",)),
                AUDIT_SEND,
            ),
        ),
        Function(
            name="repo_writer",
            description="Release: commits the signed manifest to the manifest repository (never signs).",
            state_machine_task=True,
            access=(
                rw("table", "state"),
                Access("bucket", "packages", ("read",)),
                Access("bucket", "manifests", ("write",)),
                AUDIT_SEND,
                BUS_PUT,
            ),
        ),
        Function(
            name="listing_create",
            description="Marketplace: creates the listing carrying manifestSignatureId; marks Published.",
            state_machine_task=True,
            access=(rw("table", "state"), AUDIT_SEND, BUS_PUT),
        ),
    ),
    rules=(
        Rule(
            name="package-uploaded",
            bus="default",
            pattern={
                "source": ["aws.s3"],
                "detail-type": ["Object Created"],
                "detail": {
                    "bucket": {"name": ["${bucket:packages}"]},
                    "object": {"key": [{"prefix": "uploads/"}]},
                },
            },
            target=Target("state_machine", "release"),
        ),
    ),
    state_machines=(
        StateMachine(
            name="release",
            asl="release.asl.json",
            substitutions={
                "ReleaseIntakeFunctionArn": ("function", "release_intake"),
                **{f"Validate{camel(v)}FunctionArn": ("function", f"validate_{v}") for v in VALIDATORS},
                "ReleaseCollectFunctionArn": ("function", "release_collect"),
                "ReleaseRejectFunctionArn": ("function", "release_reject"),
                "ReleaseSignFunctionArn": ("function", "release_sign"),
                "RepoWriterFunctionArn": ("function", "repo_writer"),
                "ListingCreateFunctionArn": ("function", "listing_create"),
                "GovernanceRequestFunctionArn": ("function", "governance_request"),
                "GovernanceEmergencyFunctionArn": ("function", "governance_emergency"),
                "GovernanceCheckFunctionArn": ("function", "governance_check"),
                "GovernanceRollbackFunctionArn": ("function", "governance_rollback"),
                "GovernanceExpireFunctionArn": ("function", "governance_expire"),
            },
        ),
    ),
)
