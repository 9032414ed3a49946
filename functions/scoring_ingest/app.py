"""Scoring ingest (SQS ``scoring_events``, fed by the ``enriched-events`` rule): each record is
validated against the producers' JSON Schema (a copy of ``events/schemas/EnrichedEvent.json`` ships
beside this file), deduped on ``content_hash`` and the accepted ones appended to the open batch,
which is sealed (and its scoring started) at the size threshold. Rejected events go to the
``scoring_rejects`` queue with their reason; a duplicate increments the first event's support_count.
Partial batch failures: only the records that could not be handled are retried."""

from __future__ import annotations

import functools
import json
import time
from pathlib import Path
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from hallmark.adapters import runtime
from hallmark.observability import logger, metrics
from hallmark.scoring.ingest import Accepted, Duplicate, EventValidator, Ingestor, Rejected, reject_message


@functools.cache
def validator() -> EventValidator:
    """The producers' schema, compiled on the first batch (jsonschema is not loaded at import)."""
    return EventValidator(json.loads(Path(__file__).with_name("EnrichedEvent.json").read_text()))


def _send_rejects(rejects: list[tuple[SQSRecord, Rejected]], now_s: int) -> list[str]:
    """Queue the rejects with their reason; the message ids that could not be queued."""
    if not rejects:
        return []
    bodies = [json.dumps(reject_message(rec.body, why, rec.message_id, now_s)) for rec, why in rejects]
    reasons = [{"reason": why.reason[:256]} for _, why in rejects]
    return [rejects[i][0].message_id for i in runtime.queue("scoring_rejects").send_batch(bodies, reasons)]


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    now_s = int(time.time())
    ingestor = Ingestor(validator(), runtime.scoring_dedupe())
    valid: list[tuple[str, Accepted]] = []
    rejects: list[tuple[SQSRecord, Rejected]] = []

    def record_handler(record: SQSRecord) -> None:
        outcome = ingestor.check(record.body)
        if isinstance(outcome, Accepted):
            valid.append((record.message_id, outcome))
        else:
            rejects.append((record, outcome))

    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    with processor(records=event["Records"], handler=record_handler, lambda_context=context):
        processor.process()
    failures = {str(f["itemIdentifier"]) for f in processor.response()["batchItemFailures"]}
    unsent = set(_send_rejects(rejects, now_s))
    failures |= unsent
    accepted: list[tuple[str, str]] = []
    duplicates = 0
    try:
        outcomes = ingestor.dedupe_all([a for _, a in valid], now_s)
    except Exception:
        logger.exception("the dedupe store failed: the valid records will be retried")
        failures |= {mid for mid, _ in valid}
        outcomes = []
    for (mid, _), outcome in zip(valid, outcomes, strict=False):
        if isinstance(outcome, Duplicate):
            duplicates += 1
            logger.info("duplicate event", extra={"eventId": outcome.event_id, "contentHash": outcome.content_hash,
                                                  "firstEventId": outcome.first_event_id,
                                                  "supportCount": outcome.support_count})
        else:
            accepted.append((mid, outcome.line))
    try:
        sealed = runtime.scoring_intake().append([line for _, line in accepted], duplicates=duplicates,
                                                 rejected=len(rejects) - len(unsent))
    except Exception:
        logger.exception("appending to the open batch failed: the accepted records will be retried")
        failures |= {mid for mid, _ in accepted}
        sealed = []
    for s in sealed:
        logger.info("batch sealed", extra={"batchId": s.batch_id, "size": s.size, "executionArn": s.execution_arn})
    metrics.add_metric(name="scoring.events_accepted", unit=MetricUnit.Count, value=len(accepted))
    metrics.add_metric(name="scoring.events_rejected", unit=MetricUnit.Count, value=len(rejects))
    metrics.add_metric(name="scoring.events_duplicate", unit=MetricUnit.Count, value=duplicates)
    return {"batchItemFailures": [{"itemIdentifier": mid} for mid in sorted(failures)]}
