"""ArtifactPublisher: for each paid order on the `deliveries` queue, encrypt the artifact for
that order (aws-encryption-sdk over the delivery KMS key, key commitment on, encryption
context {orderId, buyer, manifestDigest}), store it in the deliveries bucket, release escrow to
the seller and the platform fee, and sign the delivery proof (citing manifestSignatureId and
the ledger proof id). Partial batch failures retry; after maxReceiveCount a message lands in
`deliveries-dlq` (docs/runbooks/publish_retries.md). A redelivered order is a no-op."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from hallmark.adapters import runtime
from hallmark.observability import SERVICE, logger

runtime.startup_guard(sign_keys=("proof",))
processor = BatchProcessor(event_type=EventType.SQS)


def record_handler(record: SQSRecord) -> None:
    order_id = json.loads(record.body)["orderId"]
    result = runtime.market_service().publish(order_id, source=runtime.objects(), store=runtime.delivery_store(),
                                              encryptor=runtime.delivery_encryptor(), now=runtime.now())
    logger.info("delivery published", extra=result)
    # single_metric: its own metric set, flushed here (nothing shared with other handlers)
    with single_metric(name="market.deliveries_total", unit=MetricUnit.Count, value=1,
                       default_dimensions={"service": SERVICE}):
        pass


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return dict(process_partial_response(event=event, record_handler=record_handler, processor=processor,
                                         context=context))
