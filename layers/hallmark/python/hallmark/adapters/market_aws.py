"""AWS adapters of the marketplace ports: the S3 delivery store and the SQS delivery queue
(the composition root, ``hallmark.adapters.runtime``, builds them and the MarketService)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

__all__ = ["S3DeliveryStore", "SqsDeliveryQueue"]


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

    def get(self, key: str, max_bytes: int) -> bytes:
        """The stored delivery; ``KeyError`` if absent, ``OverflowError`` if over ``max_bytes``."""
        from hallmark.adapters.s3 import read_object

        try:
            return read_object(self._s3, self._bucket, key, max_bytes=max_bytes)[0]
        except ValueError as exc:
            raise OverflowError(str(exc)) from None

    def presign(self, key: str, ttl_seconds: int) -> str:
        return str(self._s3.generate_presigned_url("get_object", Params={"Bucket": self._bucket, "Key": key},
                                                   ExpiresIn=ttl_seconds))


class SqsDeliveryQueue:
    def __init__(self, sqs: Any, queue_url: str) -> None:
        self._sqs = sqs
        self._url = queue_url

    def enqueue(self, order_id: str) -> None:
        self._sqs.send_message(QueueUrl=self._url, MessageBody=json.dumps({"orderId": order_id}))
