"""The scoring table (pk, sk; TTL on ``expiresAt``): dedupe claims, briefs, webhook subscribers.

    pk = "dedupe#<content_hash>"   sk = "-"                    eventId, support_count, firstSeen, expiresAt
    pk = "briefs#<domain>"         sk = "<created_at:013d>#<brief_id>"   the brief (newest first by query)
    pk = "brief#<brief_id>"        sk = "-"                    the same brief, read by id
    pk = "webhooks"                sk = "<subscriberId>"       a subscriber (secret encrypted)
"""

from __future__ import annotations

import json
from typing import Any

from boto3.dynamodb.conditions import Attr, Key
from botocore.exceptions import ClientError

from hallmark.scoring.briefs import StoredBrief
from hallmark.scoring.ingest import Claim
from hallmark.scoring.schema import BriefPayload, Domain, ImpactLevel
from hallmark.scoring.webhooks import Subscriber

DOMAINS: tuple[Domain, ...] = ("crypto", "ai")


def _conditional_failed(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


class DynamoDedupe:
    """``DedupeStore``: one conditional put claims a content hash; a refused claim counts support."""

    def __init__(self, table: Any) -> None:
        self.table = table

    def claim(self, content_hash: str, event_id: str, now_s: int, window_s: int) -> Claim:
        key = {"pk": f"dedupe#{content_hash}", "sk": "-"}
        try:
            self.table.put_item(
                Item={**key, "eventId": event_id, "firstSeen": now_s, "expiresAt": now_s + window_s, "support_count": 1},
                ConditionExpression="attribute_not_exists(pk) OR expiresAt <= :now",
                ExpressionAttributeValues={":now": now_s},
            )
            return Claim(True, event_id, 1)
        except ClientError as exc:
            if not _conditional_failed(exc):
                raise
        try:  # held by another event: one more source supports it
            resp = self.table.update_item(
                Key=key,
                UpdateExpression="ADD support_count :one",
                ConditionExpression="eventId <> :e",
                ExpressionAttributeValues={":one": 1, ":e": event_id},
                ReturnValues="ALL_NEW",
            )
        except ClientError as exc:
            if not _conditional_failed(exc):
                raise
            held = self.table.get_item(Key=key, ConsistentRead=True).get("Item", {})
            return Claim(True, event_id, int(held.get("support_count", 1)))  # a redelivery of the claimant
        attrs = resp["Attributes"]
        return Claim(False, str(attrs.get("eventId", "")), int(attrs["support_count"]))

    def claim_many(self, items: list[tuple[str, str]], now_s: int, window_s: int) -> list[Claim]:
        """One conditional put per event: a transaction would claim the batch in one call on AWS,
        but it costs as much as a put per item and fails whole on one duplicate."""
        return [self.claim(h, e, now_s, window_s) for h, e in items]

    def support(self, content_hash: str) -> dict[str, Any] | None:
        item = self.table.get_item(Key={"pk": f"dedupe#{content_hash}", "sk": "-"}, ConsistentRead=True).get("Item")
        if not item:
            return None
        return {"contentHash": content_hash, "eventId": item.get("eventId"),
                "supportCount": int(item.get("support_count", 1)), "firstSeen": int(item.get("firstSeen", 0)),
                "expiresAt": int(item.get("expiresAt", 0))}


def _stored(item: dict[str, Any]) -> StoredBrief:
    doc = json.loads(item["doc"])
    return StoredBrief(BriefPayload.model_validate(doc["brief"]), doc["band"], doc["domain"], doc["batchId"])


class DynamoBriefStore:
    """``BriefStore``: a partition per domain sorted by creation time, and a lookup item per id."""

    def __init__(self, table: Any) -> None:
        self.table = table

    def put(self, brief: StoredBrief) -> bool:
        b = brief.brief
        doc = json.dumps(brief.as_dict(), sort_keys=True)
        try:
            self.table.put_item(Item={"pk": f"brief#{b.brief_id}", "sk": "-", "doc": doc},
                                ConditionExpression="attribute_not_exists(pk)")
        except ClientError as exc:
            if _conditional_failed(exc):
                return False
            raise
        self.table.put_item(Item={
            "pk": f"briefs#{brief.domain}", "sk": f"{b.created_at:013d}#{b.brief_id}", "doc": doc,
            "impact_level": b.impact_level, "band": brief.band, "batchId": brief.batch_id,
        })
        return True

    def get(self, brief_id: str) -> StoredBrief | None:
        item = self.table.get_item(Key={"pk": f"brief#{brief_id}", "sk": "-"}).get("Item")
        return _stored(item) if item else None

    def list(self, *, domain: Domain | None, impact_level: ImpactLevel | None, since_ms: int | None,
             limit: int) -> list[StoredBrief]:
        out: list[StoredBrief] = []
        for d in (domain,) if domain else DOMAINS:
            cond: Any = Key("pk").eq(f"briefs#{d}")
            if since_ms is not None:
                cond = cond & Key("sk").gte(f"{since_ms:013d}")
            kwargs: dict[str, Any] = {"KeyConditionExpression": cond, "ScanIndexForward": False}
            if impact_level is not None:
                kwargs["FilterExpression"] = Attr("impact_level").eq(impact_level)
            got = 0
            while got < limit:
                page = self.table.query(**kwargs)
                for item in page.get("Items", []):
                    out.append(_stored(item))
                    got += 1
                if "LastEvaluatedKey" not in page:
                    break
                kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        out.sort(key=lambda s: (-s.brief.created_at, s.brief.brief_id))
        return out[:limit]


class DynamoSubscriberStore:
    """``SubscriberStore``: one partition of subscribers (few, read whole by the router)."""

    def __init__(self, table: Any) -> None:
        self.table = table

    def put(self, subscriber: Subscriber) -> None:
        self.table.put_item(Item={"pk": "webhooks", "sk": subscriber.subscriberId,
                                  "doc": json.dumps(subscriber.as_dict(), sort_keys=True)})

    def get(self, subscriber_id: str) -> Subscriber | None:
        item = self.table.get_item(Key={"pk": "webhooks", "sk": subscriber_id}, ConsistentRead=True).get("Item")
        return Subscriber(**json.loads(item["doc"])) if item else None

    def list(self) -> list[Subscriber]:
        out: list[Subscriber] = []
        kwargs: dict[str, Any] = {"KeyConditionExpression": Key("pk").eq("webhooks"), "ConsistentRead": True}
        while True:
            page = self.table.query(**kwargs)
            out += [Subscriber(**json.loads(i["doc"])) for i in page.get("Items", [])]
            if "LastEvaluatedKey" not in page:
                return out
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
