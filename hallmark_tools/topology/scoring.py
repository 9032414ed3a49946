"""Signal scoring (DESIGN.md flow 5): ingest EnrichedEvents from the bus, batch them in S3, score
each batch with the EVI model on a CPU Lambda or an AWS Batch GPU job, route the bands (webhooks
for ``instant``, briefs for the others), audit every batch.

Ingestion: producers put events with detail type ``EnrichedEvent`` on the ``hallmark`` bus (any
``source``: the detail type is the contract, the JSON Schema in ``events/schemas`` its shape); the
``enriched-events`` rule feeds the ``scoring_events`` queue; ``scoring_ingest`` validates, dedupes
and appends to the open batch, which is sealed at ``SCORING_BATCH_MAX_EVENTS`` events (by the
ingest function) or ``SCORING_BATCH_MAX_AGE_S`` seconds (by the ``scoring_sealer`` tick); sealing
starts ``statemachines/scoring.asl.json``. ``PUT /scoring/config`` overrides the three thresholds
at run time.

The GPU runner is an AWS Batch job (``cdk/scoring_batch.py`` synthesizes its compute environment,
queue and definition under the fixed names below; the local cloud registers the same names on
moto and runs the job's entrypoint in-process, see ``hallmark_tools/localcloud/batch.py``).
"""

from __future__ import annotations

from hallmark_tools.topology.model import (
    AUDIT_SEND,
    Access,
    Bucket,
    Function,
    Key,
    Part,
    Queue,
    QueueTrigger,
    Route,
    Rule,
    StateMachine,
    Table,
    Target,
    rw,
)

JOB_QUEUE = "hallmark-scoring-gpu"
"""The AWS Batch job queue of the GPU runner (Step Functions submits to it by name)."""
JOB_DEFINITION = "hallmark-evi-score"
"""The AWS Batch job definition of the GPU runner (by name: its latest active revision)."""
GPU_INSTANCE_CLASSES = ("g5", "g6")
DETAIL_TYPE = "EnrichedEvent"

DEFAULTS: tuple[tuple[str, str], ...] = (
    ("SCORING_BATCH_MAX_EVENTS", "500"),
    ("SCORING_BATCH_MAX_AGE_S", "60"),
    # batch size x corpus rows above which the batch goes to the GPU job (a product)
    ("SCORING_GPU_THRESHOLD", "50000000"),
    # batches of at least this many events use the int8 corpus mode on the CPU when the released
    # model carries a [model.candidates] variant; 0 = off (PUT /scoring/config changes it)
    ("SCORING_INT8_MIN_BATCH", "0"),
)

STATE = rw("table", "state")
STATE_READ = Access("table", "state", ("read",))
SCORING_TABLE = rw("table", "scoring")
BUCKET_RW = rw("bucket", "scoring")
BUCKET_READ = Access("bucket", "scoring", ("read",))
START = Access("state_machine", "scoring", ("start",))
MANIFEST_KEY = Access("key", "manifest", ("read",))
MANIFESTS_READ = Access("bucket", "manifests", ("read",))
WEIGHTS_KEY = Access("key", "weights", ("read",))


def _task(name: str, description: str, *access: Access, memory: int = 512, timeout: int = 60) -> Function:
    return Function(name=name, description=description, state_machine_task=True, memory=memory, timeout=timeout,
                    access=access, env=DEFAULTS)


PART = Part(
    functions=(
        Function(
            name="scoring_ingest",
            description="Scoring: validates EnrichedEvents (JSON Schema), dedupes on content_hash (24 h), "
                        "appends to the open batch in S3 and seals it at the size threshold.",
            timeout=120,
            queue=QueueTrigger("scoring_events", batch_size=10),
            access=(STATE, SCORING_TABLE, BUCKET_RW, Access("queue", "scoring_rejects", ("send",)), START),
            env=DEFAULTS,
        ),
        Function(
            name="scoring_sealer",
            description="Scheduled: seals the open batch past the time threshold and starts its scoring.",
            timeout=120,
            access=(STATE, BUCKET_RW, START),
            env=DEFAULTS,
        ),
        _task("scoring_plan", "Scoring: re-verifies the signed model, takes the corpus lease, sizes the batch "
              "for the runner Choice, assigns its signed EVI weights (canary split), audits EventsIngested.",
              STATE, BUCKET_RW, MANIFESTS_READ, MANIFEST_KEY, WEIGHTS_KEY, AUDIT_SEND),
        _task("scoring_cpu", "Scoring (latency path): runs the digest-checked EVI model on the CPU over the batch.",
              BUCKET_RW, memory=4096, timeout=300),
        _task("scoring_record", "Scoring: checks the envelopes, records the batch as scored, audits BatchScored.",
              STATE, BUCKET_READ, AUDIT_SEND, timeout=120),
        _task("scoring_route", "Scoring: instant -> webhook deliveries, same_day/weekly -> briefs (BriefCreated).",
              STATE, SCORING_TABLE, BUCKET_READ, Access("queue", "webhooks", ("send",)), AUDIT_SEND, timeout=120),
        _task("scoring_fail", "Scoring: records a failed batch (the reason is readable in GET /scoring/batches).",
              STATE, BUCKET_READ, AUDIT_SEND),
        Function(
            name="scoring_api",
            description="Scoring admin: register the released EVI model, thresholds, batches (read, flush now).",
            timeout=60,
            memory=1024,
            routes=(
                Route("POST", "/scoring/model", roles=("superadmin",)),
                Route("GET", "/scoring/model"),
                Route("PUT", "/scoring/config", roles=("superadmin",)),
                Route("GET", "/scoring/config"),
                Route("GET", "/scoring/batches"),
                Route("GET", "/scoring/batches/{batchId}"),
                Route("POST", "/scoring/batches/flush", roles=("superadmin",)),
                Route("POST", "/scoring/envelopes/{eventId}/feedback"),
                Route("GET", "/scoring/weights"),
            ),
            access=(STATE, BUCKET_RW, Access("bucket", "packages", ("read",)), MANIFESTS_READ, MANIFEST_KEY, START,
                    AUDIT_SEND),
            env=DEFAULTS,
        ),
        Function(
            name="briefs_api",
            description="Briefs built from same_day/weekly events: list (domain, impact_level, since), read, "
                        "and the callers' feedback on them (FeedbackRecorded).",
            routes=(
                Route("GET", "/briefs"),
                Route("GET", "/briefs/{briefId}"),
                Route("POST", "/briefs/{briefId}/feedback"),
            ),
            access=(Access("table", "scoring", ("read",)), STATE, BUCKET_READ, AUDIT_SEND),
        ),
        Function(
            name="scoring_weights",
            description="Scheduled: the EVI weights updater (fit from feedback, sign, 10% canary; promote or "
                        "roll back, audited).",
            timeout=300,
            memory=1024,
            access=(STATE, AUDIT_SEND, Access("key", "weights", ("sign", "read"))),
        ),
        Function(
            name="webhooks_api",
            description="Webhook subscribers (url, bands); the signing secret is returned once and kept encrypted.",
            routes=(
                Route("POST", "/webhooks", roles=("superadmin",)),
                Route("GET", "/webhooks", roles=("superadmin",)),
                Route("DELETE", "/webhooks/{subscriberId}", roles=("superadmin",)),
            ),
            access=(SCORING_TABLE, Access("key", "webhooks", ("encrypt",))),
        ),
        Function(
            name="scoring_webhooks",
            description="Delivers webhooks signed per Standard Webhooks (retries with backoff, then the DLQ).",
            timeout=60,
            queue=QueueTrigger("webhooks", batch_size=5),
            access=(Access("table", "scoring", ("read",)), Access("key", "webhooks", ("decrypt",)),
                    Access("queue", "webhooks", ("read",)), AUDIT_SEND),
            env=(("WEBHOOK_BACKOFF_BASE_S", "5"), ("WEBHOOK_TIMEOUT_S", "10")),
        ),
    ),
    queues=(
        Queue("scoring_events", visibility_timeout=720, max_receive_count=5),
        Queue("scoring_rejects", visibility_timeout=60, max_receive_count=5),
        Queue("webhooks", visibility_timeout=360, max_receive_count=6),
    ),
    tables=(Table("scoring", ttl_attribute="expiresAt"),),
    buckets=(Bucket("scoring"),),
    keys=(Key("webhooks", usage="ENCRYPT_DECRYPT"), Key("weights")),
    rules=(
        Rule(
            name="enriched-events",
            pattern={"detail-type": [DETAIL_TYPE]},
            target=Target("queue", "scoring_events"),
        ),
        Rule(
            name="scoring-weights-tick",
            schedule="rate(1 hour)",
            bus="default",
            target=Target("function", "scoring_weights"),
        ),
        Rule(
            name="scoring-seal-tick",
            schedule="rate(1 minute)",
            bus="default",
            target=Target("function", "scoring_sealer"),
        ),
    ),
    state_machines=(
        StateMachine(
            name="scoring",
            asl="scoring.asl.json",
            substitutions={
                "ScoringPlanFunctionArn": ("function", "scoring_plan"),
                "ScoringCpuFunctionArn": ("function", "scoring_cpu"),
                "ScoringRecordFunctionArn": ("function", "scoring_record"),
                "ScoringRouteFunctionArn": ("function", "scoring_route"),
                "ScoringFailFunctionArn": ("function", "scoring_fail"),
                "ScoringJobQueue": ("literal", JOB_QUEUE),
                "ScoringJobDefinition": ("literal", JOB_DEFINITION),
            },
        ),
    ),
)
