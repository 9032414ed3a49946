"""``DownloadDelivery`` (the buyer's decrypting download) against the fakes: who may download,
what is refused, and that a refusal changes nothing."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from hallmark._domain import Caller
from hallmark.canonical import sha256_hex
from hallmark.errors import DomainError
from hallmark.market import steps
from hallmark.market.service import MarketService
from hallmark.market.steps import DownloadDelivery
from tests.fakes.docstore import InMemoryDocStore
from tests.fakes.market import ContextBoundEnvelope, InMemoryDeliveryStore, InMemoryLedgerRepository
from tests.fakes.release import RecordingAudit
from tests.fakes.signing import LocalSigner

NOW = datetime(2026, 12, 3, 7, 0, tzinfo=UTC)
ARTIFACT = b"the package bytes"
ENVELOPE = {"payloadType": "application/vnd.in-toto+json", "payload": "e30=", "signatures": []}
BUYER = Caller("buyer", frozenset({"buyer"}))


class Objects:
    def __init__(self) -> None:
        self.blobs = {("packages", "pkg.tgz"): ARTIFACT, ("manifests", "m.json"): json.dumps(ENVELOPE).encode()}

    def read(self, bucket: str, key: str, version_id: str | None = None) -> bytes:
        return self.blobs[(bucket, key)]


class World:
    def __init__(self) -> None:
        self.docs, self.audit = InMemoryDocStore(), RecordingAudit()
        self.market = MarketService(self.docs, InMemoryLedgerRepository(), LocalSigner.generate(), self.audit)
        self.store, self.envelope, self.objects = InMemoryDeliveryStore(), ContextBoundEnvelope(), Objects()
        self.docs.create("package", "pkg-1", {"meta": {"sha256": sha256_hex(ARTIFACT), "version": "1"}})
        self.docs.create("listing", "lst-1", {
            "listingId": "lst-1", "packageId": "pkg-1", "seller": "seller", "price": 100, "currency": "USD",
            "manifestSignatureId": "sig-1", "manifestDigest": "a" * 64, "status": "Active",
            "artifact": {"bucket": "packages", "key": "pkg.tgz"},
            "manifestRef": {"bucket": "manifests", "key": "m.json"}})
        self.download = DownloadDelivery(self.docs, self.store, self.envelope, self.objects, self.audit)

    def order(self, buyer: str = "buyer", *, deliver: bool = True, fund: int = 100) -> str:
        if fund:
            self.market.deposit(party=buyer, amount_minor=fund, currency="USD", deposit_id=f"d-{buyer}",
                                actor=buyer, now=NOW)
        try:
            order_id = str(self.market.checkout(listing_id="lst-1", buyer=buyer, idempotency_key="k", now=NOW,
                                                queue=_Queue())["orderId"])
        except DomainError as err:
            order_id = str(err.details["orderId"])
        if deliver:
            self.market.publish(order_id, source=self.objects, store=self.store, encryptor=self.envelope, now=NOW)
        return order_id

    def types(self) -> list[str]:
        return [e["type"] for e in self.audit.events.values()]


class _Queue:
    def enqueue(self, order_id: str) -> None:
        pass


@pytest.fixture()
def world() -> World:
    return World()


def _refused(world: World, order_id: str, caller: Caller, status: int, code: str) -> None:
    before = (world.types(), dict(world.store.objects))
    with pytest.raises(DomainError) as err:
        world.download(order_id, caller, NOW)
    assert (err.value.http_status, err.value.code) == (status, code)
    assert (world.types(), dict(world.store.objects)) == before  # nothing audited, nothing written


def test_the_buyer_gets_the_plaintext_and_the_manifest_and_it_is_audited(world: World) -> None:
    order_id = world.order()
    got: dict[str, Any] = world.download(order_id, BUYER, NOW)
    assert base64.b64decode(got["contentBase64"]) == ARTIFACT
    assert got["contentSha256"] == sha256_hex(ARTIFACT) and got["manifestEnvelope"] == ENVELOPE
    assert world.types().count("DeliveryDownloaded") == 1


def test_other_callers_unpaid_and_undelivered_orders_are_refused(world: World) -> None:
    order_id = world.order()
    _refused(world, order_id, Caller("eve", frozenset({"buyer"})), 404, "not_found")
    _refused(world, order_id, Caller("ada", frozenset({"auditor"})), 404, "not_found")
    _refused(world, "ord-nope", BUYER, 404, "not_found")
    _refused(world, world.order("broke", fund=0, deliver=False), Caller("broke", frozenset()), 409, "not_paid")
    _refused(world, world.order("early", deliver=False), Caller("early", frozenset()), 409, "not_delivered")


def test_a_tampered_ciphertext_or_context_and_an_oversize_delivery_are_refused(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    order_id = world.order()
    [key] = world.store.objects
    good = world.store.objects[key]
    world.store.objects[key] = good.replace(b'"data"', b'"Data"')
    _refused(world, order_id, BUYER, 409, "ciphertext_mismatch")
    world.store.objects[key] = good
    doc = world.docs.get("order", order_id) or {}
    world.docs.replace("order", order_id, {**doc, "manifestDigest": "b" * 64}, doc["version"])
    _refused(world, order_id, BUYER, 403, "context_mismatch")
    world.docs.replace("order", order_id, doc, doc["version"] + 1)
    monkeypatch.setattr(steps, "MAX_CONTENT_BYTES", len(good) - 1)
    _refused(world, order_id, BUYER, 413, "delivery_too_large")
