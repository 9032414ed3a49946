"""``AuditStore`` on one DynamoDB table (string keys ``pk`` and ``sk``).

Items of chain ``<c>`` (all under ``pk = CHAIN#<c>``):

============================  =====================================================================
``sk``                        attributes
============================  =====================================================================
``HEAD``                      ``seq`` (N), ``hash`` (S): the chain head
``EVENT#<seq, 12 digits>``    the event fields; ``data`` as a JSON string (exact ints and floats)
``ID#<event id>``             ``seq`` (N): the idempotency marker of an event id
``CKPT#<seq, 12 digits>``     ``checkpoint`` (S, RFC 8785 JSON), ``frontier`` (S, JSON list of hex),
                              ``note`` (S, the C2SP signed note; absent on older checkpoints)
``CKPTHEAD``                  ``seq`` (N): the latest checkpoint (serializes checkpoint writers)
============================  =====================================================================

``append`` is one ``TransactWriteItems``: put the event (``attribute_not_exists``), put the
id marker (``attribute_not_exists``), and put (seq 1: ``attribute_not_exists(pk)``) or
update (``seq = :expected AND hash = :prevHash``) the head. A cancellation caused by the id
marker means "already appended" (the stored event is returned); by the head or the event
slot, or a ``TransactionConflict``, :class:`HeadMoved`. Throttling and other errors
propagate as botocore ``ClientError`` so that Lambda/SQS retry. Reads are strongly consistent.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any, Final

from botocore.exceptions import ClientError

from hallmark.audit.events import AuditEvent
from hallmark.audit.store import CheckpointConflict, CheckpointRecord, HeadMoved
from hallmark.canonical import canonical_bytes

__all__ = ["DynamoAuditStore"]

_HEAD: Final = "HEAD"
_CKPT_HEAD: Final = "CKPTHEAD"
_PAD: Final = 12
_MAX_SEQ: Final = 10**_PAD - 1


def _pk(chain: str) -> str:
    return f"CHAIN#{chain}"


def _event_sk(seq: int) -> str:
    return f"EVENT#{seq:0{_PAD}d}"


def _ckpt_sk(seq: int) -> str:
    return f"CKPT#{seq:0{_PAD}d}"


def _reasons(exc: ClientError) -> list[str]:
    reasons = exc.response.get("CancellationReasons") or []  # type: ignore[typeddict-item]
    return [str(r.get("Code") or "None") for r in reasons]


def _int(value: Any) -> int:
    """DynamoDB numbers come back as ``Decimal``."""
    return int(value) if isinstance(value, Decimal | int) else int(str(value))


class DynamoAuditStore:
    """:class:`hallmark.audit.store.AuditStore` over a boto3 DynamoDB ``Table`` resource."""

    def __init__(self, table: Any, *, client: Any | None = None):
        self._table = table
        self._client = client if client is not None else table.meta.client
        self._name: str = table.name

    # -- events ----------------------------------------------------------------------------

    def head(self, chain: str) -> tuple[int, str] | None:
        item = self._table.get_item(Key={"pk": _pk(chain), "sk": _HEAD}, ConsistentRead=True).get("Item")
        if not item:
            return None
        return _int(item["seq"]), str(item["hash"])

    def append(self, event: AuditEvent) -> AuditEvent:
        if event.seq > _MAX_SEQ:
            raise ValueError(f"seq {event.seq} exceeds the {_PAD}-digit sort key")
        pk = _pk(event.chain)
        item = {
            "pk": pk,
            "sk": _event_sk(event.seq),
            "id": event.id,
            "chain": event.chain,
            "seq": event.seq,
            "ts": event.ts,
            "type": event.type,
            "actor": event.actor,
            "subject": event.subject,
            "data": json.dumps(event.data, separators=(",", ":"), ensure_ascii=False, allow_nan=False),
            "prevHash": event.prevHash,
            "hash": event.hash,
        }
        head_op: dict[str, Any]
        if event.seq == 1:
            head_op = {
                "Put": {
                    "TableName": self._name,
                    "Item": {"pk": pk, "sk": _HEAD, "seq": 1, "hash": event.hash},
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            }
        else:
            head_op = {
                "Update": {
                    "TableName": self._name,
                    "Key": {"pk": pk, "sk": _HEAD},
                    "UpdateExpression": "SET #seq = :seq, #hash = :hash",
                    "ConditionExpression": "#seq = :expected AND #hash = :prev",
                    "ExpressionAttributeNames": {"#seq": "seq", "#hash": "hash"},
                    "ExpressionAttributeValues": {
                        ":seq": event.seq,
                        ":hash": event.hash,
                        ":expected": event.seq - 1,
                        ":prev": event.prevHash,
                    },
                }
            }
        try:
            self._client.transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": self._name,
                            "Item": item,
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    },
                    {
                        "Put": {
                            "TableName": self._name,
                            "Item": {"pk": pk, "sk": f"ID#{event.id}", "seq": event.seq},
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    },
                    head_op,
                ]
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                raise
            reasons = _reasons(exc)
            if not reasons or (len(reasons) > 1 and reasons[1] == "ConditionalCheckFailed"):
                existing = self.get(event.chain, event.id)
                if existing is not None:
                    return existing  # already appended: idempotent
            if not reasons or any(r in ("ConditionalCheckFailed", "TransactionConflict") for r in reasons):
                raise HeadMoved(
                    event.chain, (event.seq - 1, event.prevHash) if event.seq > 1 else None
                ) from exc
            raise
        return event

    def _event_from_item(self, item: dict[str, Any]) -> AuditEvent:
        return AuditEvent.model_validate(
            {
                "id": item["id"],
                "chain": item["chain"],
                "seq": _int(item["seq"]),
                "ts": item["ts"],
                "type": item["type"],
                "actor": item["actor"],
                "subject": item["subject"],
                "data": json.loads(item["data"]),
                "prevHash": item["prevHash"],
                "hash": item["hash"],
                "signature": None,
            }
        )

    def get(self, chain: str, event_id: str) -> AuditEvent | None:
        pk = _pk(chain)
        marker = self._table.get_item(Key={"pk": pk, "sk": f"ID#{event_id}"}, ConsistentRead=True).get("Item")
        if not marker:
            return None
        item = self._table.get_item(
            Key={"pk": pk, "sk": _event_sk(_int(marker["seq"]))}, ConsistentRead=True
        ).get("Item")
        return self._event_from_item(item) if item else None

    def _query(
        self, pk: str, low: str, high: str, *, forward: bool = True, limit: int | None = None
    ) -> Iterator[Any]:
        kwargs: dict[str, Any] = {
            "KeyConditionExpression": "pk = :pk AND sk BETWEEN :lo AND :hi",
            "ExpressionAttributeValues": {":pk": pk, ":lo": low, ":hi": high},
            "ConsistentRead": True,
            "ScanIndexForward": forward,
        }
        if limit is not None:
            kwargs["Limit"] = limit
        while True:
            page = self._table.query(**kwargs)
            yield from page.get("Items", [])
            last = page.get("LastEvaluatedKey")
            if not last or limit is not None:
                return
            kwargs["ExclusiveStartKey"] = last

    def events(self, chain: str, start: int = 1, end: int | None = None) -> Iterator[AuditEvent]:
        lo = max(start, 1)
        hi = _MAX_SEQ if end is None else min(end, _MAX_SEQ)
        if hi < lo:
            return
        for item in self._query(_pk(chain), _event_sk(lo), _event_sk(hi)):
            yield self._event_from_item(item)

    # -- checkpoints -----------------------------------------------------------------------

    def put_checkpoint(self, record: CheckpointRecord, expected_prev_seq: int | None) -> None:
        ckpt = record.checkpoint
        chain, seq = str(ckpt["chain"]), int(ckpt["seq"])
        pk = _pk(chain)
        pointer: dict[str, Any]
        if expected_prev_seq is None:
            pointer = {
                "Put": {
                    "TableName": self._name,
                    "Item": {"pk": pk, "sk": _CKPT_HEAD, "seq": seq},
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            }
        else:
            pointer = {
                "Update": {
                    "TableName": self._name,
                    "Key": {"pk": pk, "sk": _CKPT_HEAD},
                    "UpdateExpression": "SET #seq = :seq",
                    "ConditionExpression": "#seq = :expected AND :seq > :expected",
                    "ExpressionAttributeNames": {"#seq": "seq"},
                    "ExpressionAttributeValues": {":seq": seq, ":expected": expected_prev_seq},
                }
            }
        try:
            self._client.transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": self._name,
                            "Item": {
                                "pk": pk,
                                "sk": _ckpt_sk(seq),
                                "seq": seq,
                                "checkpoint": canonical_bytes(dict(ckpt)).decode("utf-8"),
                                "frontier": json.dumps(list(record.frontier)),
                                **({"note": record.note} if record.note else {}),
                            },
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    },
                    pointer,
                ]
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "TransactionCanceledException":
                raise CheckpointConflict(
                    f"chain {chain!r}: checkpoint {seq} lost to another writer (reasons {_reasons(exc)})"
                ) from exc
            raise

    @staticmethod
    def _record(item: dict[str, Any]) -> CheckpointRecord:
        return CheckpointRecord(
            json.loads(item["checkpoint"]), tuple(json.loads(item.get("frontier") or "[]")), str(item.get("note") or "")
        )

    def latest_checkpoint(self, chain: str) -> CheckpointRecord | None:
        pk = _pk(chain)
        pointer = self._table.get_item(Key={"pk": pk, "sk": _CKPT_HEAD}, ConsistentRead=True).get("Item")
        if not pointer:
            return None
        item = self._table.get_item(
            Key={"pk": pk, "sk": _ckpt_sk(_int(pointer["seq"]))}, ConsistentRead=True
        ).get("Item")
        return self._record(item) if item else None

    def get_checkpoint(self, chain: str, seq: int) -> dict[str, Any] | None:
        record = self.checkpoint_record(chain, seq)
        return record.checkpoint if record else None

    def checkpoint_record(self, chain: str, seq: int) -> CheckpointRecord | None:
        item = self._table.get_item(Key={"pk": _pk(chain), "sk": _ckpt_sk(seq)}, ConsistentRead=True).get(
            "Item"
        )
        return self._record(item) if item else None

    def checkpoints(self, chain: str) -> Iterator[dict[str, Any]]:
        for item in self._query(_pk(chain), _ckpt_sk(0), _ckpt_sk(_MAX_SEQ)):
            yield self._record(item).checkpoint
