"""Event shapes exactly as AWS delivers them to Lambda (API Gateway HTTP API v2, SQS batch)."""

from __future__ import annotations

import base64
import hashlib
import time
import uuid
from datetime import UTC, datetime
from typing import Any

ACCOUNT = "123456789012"


def _flatten_claim(value: Any) -> Any:
    # The HTTP API JWT authorizer renders array claims as "[a b]" strings: mimic it.
    if isinstance(value, list):
        return "[" + " ".join(str(v) for v in value) + "]"
    return value


def http_api_event(
    *,
    method: str,
    path: str,
    route_key: str,
    path_parameters: dict[str, str],
    query: dict[str, str],
    raw_query: str,
    headers: dict[str, str],
    body: bytes | None,
    claims: dict[str, Any] | None,
    source_ip: str = "127.0.0.1",
) -> dict[str, Any]:
    now = datetime.now(UTC)
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": path,
        "rawQueryString": raw_query,
        "headers": {k.lower(): v for k, v in headers.items()},
        "requestContext": {
            "accountId": ACCOUNT,
            "apiId": "local",
            "domainName": "localhost",
            "domainPrefix": "localhost",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": headers.get("user-agent", headers.get("User-Agent", "")),
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": route_key,
            "stage": "$default",
            "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now.timestamp() * 1000),
        },
        "isBase64Encoded": False,
    }
    if query:
        event["queryStringParameters"] = query
    if path_parameters:
        event["pathParameters"] = path_parameters
    if claims is not None:
        event["requestContext"]["authorizer"] = {
            "jwt": {"claims": {k: _flatten_claim(v) for k, v in claims.items()}, "scopes": None}
        }
    if body:
        try:
            event["body"] = body.decode("utf-8")
        except UnicodeDecodeError:
            event["body"] = base64.b64encode(body).decode()
            event["isBase64Encoded"] = True
    return event


def sqs_record(message: dict[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    attrs = message.get("Attributes", {})
    body = message["Body"]
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": body,
        "attributes": {
            "ApproximateReceiveCount": attrs.get("ApproximateReceiveCount", "1"),
            "SentTimestamp": attrs.get("SentTimestamp", str(int(time.time() * 1000))),
            "SenderId": attrs.get("SenderId", ACCOUNT),
            "ApproximateFirstReceiveTimestamp": attrs.get(
                "ApproximateFirstReceiveTimestamp", str(int(time.time() * 1000))
            ),
            **{k: v for k, v in attrs.items() if k in ("MessageGroupId", "MessageDeduplicationId", "SequenceNumber")},
        },
        "messageAttributes": message.get("MessageAttributes", {}),
        "md5OfBody": hashlib.md5(body.encode(), usedforsecurity=False).hexdigest(),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }


def normalize_eventbridge(event: dict[str, Any]) -> dict[str, Any]:
    """moto keeps `time` as a unix float internally; AWS delivers RFC 3339."""
    out = dict(event)
    t = out.get("time")
    if isinstance(t, int | float):
        out["time"] = datetime.fromtimestamp(float(t), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return out
