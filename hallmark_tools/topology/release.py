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

OSV_BASE_URL = "https://osv-vulnerabilities.storage.googleapis.com"
#: what validate_security reads about the advisory set (the sync runs every 6 h: 48 h is 8 missed syncs)
ADVISORY_READER_ENV = (("ADVISORY_SET_MAX_AGE_HOURS", "48"), ("ADVISORY_SET_CACHE_SECONDS", "300"))

PART = Part(
    functions=(
        Function(
            name="packages_api",
            description="Submit a package (presigned upload) and read its status.",
            routes=(
                Route("POST", "/packages", roles=("submitter", "superadmin")),
                Route("GET", "/packages"),
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
            description="Release: checks the upload against its declared sha256, pins it, moves it to Validating.",
            state_machine_task=True,
            memory=1024,
            timeout=120,
            access=(rw("table", "state"), Access("bucket", "packages", ("read", "write")), AUDIT_SEND),
        ),
        *(
            Function(
                name=f"validate_{v}",
                code="validate",
                description=f"Release: the {v.replace('_', ' ')} validator (read-only access to the package).",
                memory=2048 if v == "security" else 1024 if v == "archive_safety" else 512,
                timeout=120,
                state_machine_task=True,
                access=(Access("bucket", "packages", ("read",)),),
                # security reads the synced advisory set (advisories/ in the same bucket) and fails
                # closed when it is missing, unreadable or older than the maximum age
                env=ADVISORY_READER_ENV if v == "security" else (),
            )
            for v in VALIDATORS
            if v != "smoke"
        ),
        # The sealed smoke runner (DESIGN.md "Sealed smoke runner"): its own code, no access at all
        # (the CDK gives an empty access a role without a single permission), nothing secret in its
        # environment; the package comes in as a presigned GET URL of the pinned object.
        Function(
            name="validate_smoke",
            code="smoke_runner",
            description="Release: the sealed smoke runner (no permissions; gets the pinned package by presigned GET).",
            memory=1024,
            timeout=180,
            state_machine_task=True,
            sealed=True,
        ),
        Function(
            name="advisories_sync",
            description="Scheduled: syncs the OSV PyPI and npm archives into the packages bucket as a new, "
            "sha256-checked, audited advisory-set version.",
            memory=3008,
            timeout=900,
            access=(Access("bucket", "packages", ("read", "write")), AUDIT_SEND),
            env=(("ADVISORY_OSV_BASE_URL", OSV_BASE_URL), ("ADVISORY_FETCH_MAX_BYTES", str(1024**3))),
        ),
        Function(
            name="release_collect",
            description="Release: persists validator results with their digests and decides.",
            state_machine_task=True,
            access=(rw("table", "state"), AUDIT_SEND),
        ),
        Function(
            name="release_reject",
            description="Release: ends a package that failed validation as Rejected, or a failed execution as Failed.",
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
        Rule(
            name="advisories-sync-tick",
            schedule="rate(6 hours)",
            bus="default",
            target=Target("function", "advisories_sync"),
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
