"""Core: health, the audit log (FIFO queue, writer, checkpointer, auditor API), shared
tables, buckets and signing keys."""

from __future__ import annotations

from hallmark_tools.topology.model import (
    Access,
    Bucket,
    Function,
    Key,
    Part,
    Queue,
    QueueTrigger,
    Route,
    Rule,
    Table,
    Target,
    rw,
)

PART = Part(
    functions=(
        Function(
            name="health",
            description="Liveness: reports the service version and time.",
            memory=256,
            timeout=5,
            routes=(Route("GET", "/health", public=True),),
        ),
        Function(
            name="audit_writer",
            description="Appends audit events to their chain (FIFO, conditional write) and signs checkpoints.",
            timeout=60,
            queue=QueueTrigger("audit", batch_size=10),
            # poison messages go to the DLQ by the writer's own path (hallmark.audit.intake); persons are
            # pseudonymized there (docs/privacy.md): subject records in the state table, data keys under "privacy"
            access=(rw("table", "audit"), Access("key", "audit", ("sign",)), Access("queue", "audit-dlq", ("send",)),
                    rw("table", "state"), Access("key", "privacy", ("encrypt", "decrypt"))),
        ),
        Function(
            name="audit_checkpointer",
            description="Scheduled: signs a checkpoint on chains whose uncovered events are older than T seconds.",
            timeout=60,
            access=(rw("table", "audit"), Access("key", "audit", ("sign",))),
        ),
        Function(
            name="audit_api",
            description="Auditor API: events, checkpoints (JSON and signed notes), inclusion and consistency proofs, replay; public keys.",
            timeout=60,
            memory=1024,
            routes=(
                Route("GET", "/audit/{chain}/events", roles=("auditor", "superadmin")),
                Route("GET", "/audit/{chain}/checkpoints", roles=("auditor", "superadmin")),
                Route("GET", "/audit/{chain}/checkpoints/latest", roles=("auditor", "superadmin")),
                Route("GET", "/audit/{chain}/proof/{seq}", roles=("auditor", "superadmin")),
                Route("GET", "/audit/{chain}/consistency", roles=("auditor", "superadmin")),
                Route("GET", "/audit/{chain}/checkpoint", roles=("auditor", "superadmin")),
                Route("POST", "/audit/{chain}/replay", roles=("auditor",)),
                # public (no token): outsiders verify without AWS credentials (served by the
                # function that already reads the keys, rather than by one more function)
                Route("GET", "/keys", public=True),
                # the release bundle: any caller; the handler lets through readers of the package, and
                # with ?order= the order's buyer (a buyer holds no role, like GET /orders/{id}); see hallmark.bundle
                Route("GET", "/packages/{packageId}/bundle"),
            ),
            env=(("SIGNING_KEY_PURPOSES", "manifest,audit,proof"),),
            access=(Access("table", "audit", ("read",)), Access("table", "state", ("read",)),
                    Access("bucket", "manifests", ("read",)),
                    *(Access("key", k, ("read",)) for k in ("audit", "manifest", "proof"))),
        ),
    ),
    queues=(Queue("audit", fifo=True, visibility_timeout=120, max_receive_count=5),),
    tables=(
        Table("audit"),
        Table("state"),
        Table("idempotency", partition_key="id", sort_key=None, ttl_attribute="expiration"),
    ),
    buckets=(
        Bucket("packages", eventbridge=True, versioned=True),
        Bucket("manifests", object_lock=True),
    ),
    keys=(Key("manifest"), Key("audit"), Key("proof"), Key("privacy", usage="ENCRYPT_DECRYPT")),
    rules=(
        Rule(
            name="audit-checkpoint-tick",
            schedule="rate(1 minute)",
            bus="default",
            target=Target("function", "audit_checkpointer"),
        ),
    ),
)
