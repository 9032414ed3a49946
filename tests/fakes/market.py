"""In-memory fakes (tests only; never in the Lambda layer)."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from datetime import datetime

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
from hallmark.market.orders import Order


class InMemoryLedgerRepository:
    def __init__(self) -> None:
        self._accounts: dict[str, Account] = {}
        self._balances: dict[str, int] = {}
        self._txs: dict[str, PostedTransaction] = {}
        self._lock = threading.Lock()

    def get_account(self, account_id: str) -> Account | None:
        with self._lock:
            return self._accounts.get(account_id)

    def create_account(self, account: Account) -> None:
        with self._lock:
            if account.account_id in self._accounts:
                raise Conflict(f"account {account.account_id!r} exists", {"account": account.account_id})
            self._accounts[account.account_id] = account
            self._balances[account.account_id] = 0

    def balances(self, account_ids: Iterable[str]) -> dict[str, int]:
        with self._lock:
            return {a: self._balances.get(a, 0) for a in account_ids}

    def get_transaction(self, tx_id: str) -> PostedTransaction | None:
        with self._lock:
            return self._txs.get(tx_id)

    def post(self, tx: Transaction, expected_balances: Mapping[str, int], *, posted_at: datetime) -> PostOutcome:
        deltas = net_deltas(tx)
        with self._lock:
            existing = self._txs.get(tx.tx_id)
            if existing is not None:
                return PostOutcome(replay_or_refuse(existing, tx), True)
            stale = [a for a in deltas if self._balances.get(a) != expected_balances.get(a)]
            if stale:
                raise BalanceConflict(stale)
            after = {a: expected_balances[a] + d for a, d in deltas.items()}
            posted = PostedTransaction(tx=tx, digest=tx.digest, balances_after=after, posted_at=posted_at)
            self._balances.update(after)
            self._txs[tx.tx_id] = posted
            return PostOutcome(posted, False)


class InMemoryOrderRepository:
    def __init__(self) -> None:
        self._items: dict[str, Order] = {}
        self._lock = threading.Lock()

    def get(self, order_id: str) -> Order | None:
        with self._lock:
            return self._items.get(order_id)

    def create(self, order: Order) -> None:
        with self._lock:
            if order.order_id in self._items:
                raise Conflict(f"order {order.order_id!r} exists", {"orderId": order.order_id})
            self._items[order.order_id] = order

    def save(self, order: Order, *, expected_version: int) -> None:
        with self._lock:
            current = self._items.get(order.order_id)
            if current is None or current.version != expected_version:
                raise Conflict("order changed concurrently", {"orderId": order.order_id})
            self._items[order.order_id] = order


class InMemoryDeliveryStore:
    """``DeliveryStore`` + ``DeliveryReader``: encrypted deliveries by key."""

    bucket = "deliveries"

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    def put(self, key: str, data: bytes, metadata: Mapping[str, str]) -> None:
        self.objects[key] = data

    def get(self, key: str, max_bytes: int) -> bytes:
        data = self.objects[key]  # KeyError when absent, as the port says
        if len(data) > max_bytes:
            raise OverflowError(key)
        return data

    def presign(self, key: str, ttl_seconds: int) -> str:
        return f"memory://{key}?ttl={ttl_seconds}"


class ContextBoundEnvelope:
    """``Encryptor`` + ``Decryptor`` without KMS: the 'ciphertext' carries its context, and
    decryption refuses another context as ``EnvelopeEncryptor`` does (``context_mismatch``)."""

    key_arn = "arn:aws:kms:us-east-1:000000000000:key/fake"

    def encrypt(self, plaintext: bytes, context: Mapping[str, str]) -> bytes:
        import json

        return json.dumps({"context": dict(context), "data": plaintext.hex()}, sort_keys=True).encode()

    def decrypt(self, ciphertext: bytes, expected_context: Mapping[str, str]) -> bytes:
        import json

        from hallmark.errors import DomainError

        message = json.loads(ciphertext)
        differing = sorted(k for k, v in expected_context.items() if message["context"].get(k) != v)
        if differing:
            raise DomainError("context_mismatch", "the ciphertext was made for another context", 403,
                              {"keys": differing})
        return bytes.fromhex(message["data"])
