"""DocStore on one DynamoDB table (pk = "<kind>#<id>", sk = "DOC"), conditional on a version."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from hallmark.errors import Conflict, NotFound


class DynamoDocStore:
    def __init__(self, table: Any) -> None:
        self.table = table

    def get(self, kind: str, ident: str) -> dict[str, Any] | None:
        item = self.table.get_item(Key={"pk": f"{kind}#{ident}", "sk": "DOC"}, ConsistentRead=True).get("Item")
        if not item:
            return None
        doc: dict[str, Any] = json.loads(item["doc"])
        doc["version"] = int(item["version"])
        return doc

    def create(self, kind: str, ident: str, doc: dict[str, Any]) -> None:
        try:
            self.table.put_item(
                Item={"pk": f"{kind}#{ident}", "sk": "DOC", "kind": kind, "version": 1,
                      "doc": json.dumps(doc, sort_keys=True)},
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                raise Conflict(f"{kind} {ident} already exists") from exc
            raise

    def replace(self, kind: str, ident: str, doc: dict[str, Any], expected_version: int) -> None:
        body = {k: v for k, v in doc.items() if k != "version"}
        try:
            self.table.put_item(
                Item={"pk": f"{kind}#{ident}", "sk": "DOC", "kind": kind, "version": expected_version + 1,
                      "doc": json.dumps(body, sort_keys=True)},
                ConditionExpression="attribute_exists(pk) AND version = :v",
                ExpressionAttributeValues={":v": expected_version},
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                if self.get(kind, ident) is None:
                    raise NotFound(kind, ident) from exc
                raise Conflict(f"{kind} {ident} changed concurrently") from exc
            raise

    def query(self, kind: str, limit: int = 100) -> list[dict[str, Any]]:
        # Small collections (listings, briefs, webhooks): a filtered scan, paginated.
        out: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"FilterExpression": "kind = :k", "ExpressionAttributeValues": {":k": kind}}
        while len(out) < limit:
            page = self.table.scan(**kwargs)
            for item in page.get("Items", []):
                doc = json.loads(item["doc"])
                doc["version"] = int(item["version"])
                out.append(doc)
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return out[:limit]
