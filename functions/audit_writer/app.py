"""Appends audit events from the FIFO queue (MessageGroupId = chain) to their chain with a
conditional write on the head, idempotent on the event id; signs checkpoints when due."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.utilities.batch import SqsFifoPartialProcessor, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from hallmark.adapters import runtime
from hallmark.adapters.audit_runtime import audit_log
from hallmark.observability import logger

runtime.startup_guard(sign_keys=("audit",))
processor = SqsFifoPartialProcessor(skip_group_on_error=True)  # one chain failing never holds back another


def record_handler(record: SQSRecord) -> None:
    body = json.loads(record.body)
    audit_log().append(chain=body["chain"], id=body["id"], ts=body["ts"], type=body["type"],
                       actor=body["actor"], subject=body["subject"], data=body["data"])


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return dict(process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context))
