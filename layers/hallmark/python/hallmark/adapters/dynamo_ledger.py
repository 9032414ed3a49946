"""DynamoDB implementation of :class:`hallmark.market.ledger.LedgerRepository`.

One table, partition key ``pk`` (string):

* ``ACCOUNT#<id>``: ``accountId``, ``currency``, ``allowNegative``, ``balance`` (N, minor units)
* ``TX#<id>``: ``txId``, ``digest``, ``tx`` (canonical JSON), ``balancesAfter`` (JSON), ``postedAt``

A posting is one ``TransactWriteItems``: an ``Update`` per touched account conditioned on
``balance = :expected`` (the balances the service validated) and a ``Put`` of the
transaction item conditioned on ``attribute_not_exists(pk)``. DynamoDB applies all or
none, so a race never overdraws and a ``txId`` is never posted twice. A fresh
``ClientRequestToken`` per call makes botocore's own retry of a call that did succeed return
success instead of a condition failure (the service's retries after a conflict are new calls).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from hallmark.canonical import as_utc, canonical_bytes, parse_rfc3339, to_rfc3339
from hallmark.errors import Conflict
from hallmark.market.ledger import (
    Account,
    BalanceConflict,
    PostedTransaction,
    PostOutcome,
    Transaction,
    net_deltas,
    replay_or_refuse,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

__all__ = ["DynamoLedgerRepository", "ledger_table_definition"]

_ACCOUNT = "ACCOUNT#"
_TX = "TX#"


def ledger_table_definition(table_name: str) -> dict[str, Any]:
    """``create_table`` arguments for the ledger table (on-demand, PITR is set by CDK)."""
    return {
        "TableName": table_name,
        "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
        "BillingMode": "PAY_PER_REQUEST",
    }


class DynamoLedgerRepository:
    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._db = client
        self._table = table_name

    # ------------------------------------------------------------------ accounts
    def get_account(self, account_id: str) -> Account | None:
        item = self._get(_ACCOUNT + account_id)
        if item is None:
            return None
        return Account(account_id=item["accountId"]["S"], currency=item["currency"]["S"],
                       allow_negative=item["allowNegative"]["BOOL"])

    def create_account(self, account: Account) -> None:
        try:
            self._db.put_item(
                TableName=self._table,
                Item={
                    "pk": {"S": _ACCOUNT + account.account_id},
                    "accountId": {"S": account.account_id},
                    "currency": {"S": account.currency},
                    "allowNegative": {"BOOL": account.allow_negative},
                    "balance": {"N": "0"},
                },
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ClientError as exc:
            if _code(exc) == "ConditionalCheckFailedException":
                raise Conflict(f"account {account.account_id!r} exists", {"account": account.account_id}) from None
            raise

    def balances(self, account_ids: Iterable[str]) -> dict[str, int]:
        result: dict[str, int] = {}
        for account_id in account_ids:
            item = self._get(_ACCOUNT + account_id)
            result[account_id] = int(item["balance"]["N"]) if item else 0
        return result

    # ------------------------------------------------------------------ transactions
    def get_transaction(self, tx_id: str) -> PostedTransaction | None:
        item = self._get(_TX + tx_id)
        return _posted_from_item(item) if item else None

    def post(self, tx: Transaction, expected_balances: Mapping[str, int], *, posted_at: datetime) -> PostOutcome:
        deltas = net_deltas(tx)
        accounts = sorted(deltas)
        after = {a: expected_balances[a] + deltas[a] for a in accounts}
        posted = PostedTransaction(tx=tx, digest=tx.digest, balances_after=after, posted_at=as_utc(posted_at))
        items: list[Any] = [
            {"Update": {
                "TableName": self._table,
                "Key": {"pk": {"S": _ACCOUNT + a}},
                "UpdateExpression": "SET balance = :new",
                "ConditionExpression": "attribute_exists(pk) AND balance = :expected",
                "ExpressionAttributeValues": {":new": {"N": str(after[a])},
                                              ":expected": {"N": str(expected_balances[a])}},
            }}
            for a in accounts
        ]
        items.append({"Put": {
            "TableName": self._table,
            "Item": {
                "pk": {"S": _TX + tx.tx_id},
                "txId": {"S": tx.tx_id},
                "digest": {"S": posted.digest},
                "tx": {"S": canonical_bytes(tx.to_json_dict()).decode()},
                "balancesAfter": {"S": canonical_bytes(after).decode()},
                "postedAt": {"S": to_rfc3339(posted.posted_at, "auto")},
            },
            "ConditionExpression": "attribute_not_exists(pk)",
        }})
        try:
            self._db.transact_write_items(TransactItems=items, ClientRequestToken=str(uuid.uuid4()))
        except ClientError as exc:
            if _code(exc) != "TransactionCanceledException":
                raise
            existing = self.get_transaction(tx.tx_id)
            if existing is not None:  # the txId is taken: idempotent replay or a reused id
                return PostOutcome(replay_or_refuse(existing, tx), True)
            reasons = exc.response.get("CancellationReasons") or []
            stale = [a for a, r in zip(accounts, reasons, strict=False) if r.get("Code") not in (None, "None")]
            raise BalanceConflict(stale or accounts) from None
        return PostOutcome(posted, False)

    # ------------------------------------------------------------------ helpers
    def _get(self, pk: str) -> dict[str, Any] | None:
        response = self._db.get_item(TableName=self._table, Key={"pk": {"S": pk}}, ConsistentRead=True)
        item = response.get("Item")
        return dict(item) if item else None


def _posted_from_item(item: Mapping[str, Any]) -> PostedTransaction:
    return PostedTransaction(
        tx=Transaction.model_validate(json.loads(item["tx"]["S"])),
        digest=item["digest"]["S"],
        balances_after={k: int(v) for k, v in json.loads(item["balancesAfter"]["S"]).items()},
        posted_at=parse_rfc3339(item["postedAt"]["S"]),
    )


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))
