"""Appends audit events from the FIFO queue (MessageGroupId = chain) to their chain with a
conditional write on the head, idempotent on the event id; signs checkpoints when due.

A poison message (one no retry can append) is moved to the DLQ by its own path and acknowledged
(hallmark.audit.intake), so the events queued behind it in the same chain are appended; any other
failure fails the message and, FIFO, the rest of its group (``skip_group_on_error``), in order.
Persons named by an event are pseudonymized on the way in (docs/privacy.md)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import SqsFifoPartialProcessor, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from hallmark.adapters import runtime
from hallmark.adapters.runtime import audit_log
from hallmark.audit.intake import AuditIntake
from hallmark.observability import logger

runtime.startup_guard(sign_keys=("audit",))
processor = SqsFifoPartialProcessor(skip_group_on_error=True)  # one chain failing never holds back another


def intake() -> AuditIntake:
    # built per record from runtime's cached clients (reset between local-cloud boots)
    return AuditIntake(audit_log(), runtime.audit_quarantine(), privacy=runtime.pseudonymizer())


def record_handler(record: SQSRecord) -> None:
    outcome = intake().handle(record.body, message_id=record.message_id,
                              group=str(record.attributes.message_group_id or ""))
    if outcome == "quarantined":
        logger.warning("poison audit message moved to the DLQ", extra={"messageId": record.message_id})


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return dict(process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context))
