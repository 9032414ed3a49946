"""AWS adapters of the marketplace ports (S3 artifacts and deliveries, the SQS delivery queue,
envelope encryption over the delivery KMS key) and the composition of
:class:`hallmark.market.service.MarketService` from the environment the topology declares:
``TABLE_STATE``, ``TABLE_LEDGER``, ``KEY_PROOF_ID``, ``KEY_DELIVERY_ID``, ``BUCKET_DELIVERIES``,
``QUEUE_DELIVERIES_URL``, and optionally ``MARKET_FEE_BPS``, ``DELIVERY_TTL_SECONDS``,
``DELIVERY_URL_TTL_SECONDS``.

Nothing here is cached: the objects are thin wrappers around the clients that
``hallmark.adapters.runtime`` caches (and forgets between local-cloud boots).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from hallmark.adapters import runtime
from hallmark.adapters.dynamo_ledger import DynamoLedgerRepository
from hallmark.adapters.encryption import EnvelopeEncryptor
from hallmark.adapters.s3 import S3Objects
from hallmark.market.service import MarketService

__all__ = ["S3ArtifactSource", "S3DeliveryStore", "SqsDeliveryQueue", "delivery_encryptor", "delivery_store",
           "market_service"]


S3ArtifactSource = S3Objects
"""The released artifact, read at the pinned version the listing names (``market.ports.ArtifactSource``)."""


class S3DeliveryStore:
    def __init__(self, s3: Any, bucket: str) -> None:
        self._s3 = s3
        self._bucket = bucket

    @property
    def bucket(self) -> str:
        return self._bucket

    def put(self, key: str, data: bytes, metadata: Mapping[str, str]) -> None:
        self._s3.put_object(Bucket=self._bucket, Key=key, Body=data, ContentType="application/octet-stream",
                            Metadata={k.lower(): v for k, v in metadata.items()})

    def presign(self, key: str, ttl_seconds: int) -> str:
        return str(self._s3.generate_presigned_url("get_object", Params={"Bucket": self._bucket, "Key": key},
                                                   ExpiresIn=ttl_seconds))


class SqsDeliveryQueue:
    def __init__(self, sqs: Any, queue_url: str) -> None:
        self._sqs = sqs
        self._url = queue_url

    def enqueue(self, order_id: str) -> None:
        self._sqs.send_message(QueueUrl=self._url, MessageBody=json.dumps({"orderId": order_id}))


def market_service() -> MarketService:
    return MarketService(
        runtime.docs(),
        DynamoLedgerRepository(runtime.client("dynamodb"), runtime.require("TABLE_LEDGER")),
        runtime.signer("proof"),
        runtime.audit(),
        fee_bps=int(os.environ.get("MARKET_FEE_BPS", "500")),
        delivery_ttl=timedelta(seconds=int(os.environ.get("DELIVERY_TTL_SECONDS", "900"))),
        url_ttl=timedelta(seconds=int(os.environ.get("DELIVERY_URL_TTL_SECONDS", "300"))),
    )


def delivery_store() -> S3DeliveryStore:
    return S3DeliveryStore(runtime.client("s3"), runtime.bucket("deliveries"))


def delivery_queue() -> SqsDeliveryQueue:
    return SqsDeliveryQueue(runtime.client("sqs"), runtime.require("QUEUE_DELIVERIES_URL"))


def delivery_encryptor() -> EnvelopeEncryptor:
    return EnvelopeEncryptor(runtime.require("KEY_DELIVERY_ID"))
