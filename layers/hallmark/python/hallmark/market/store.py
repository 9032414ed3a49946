"""Orders and signed proofs as versioned documents in a :class:`hallmark.docstore.DocStore`
(the ``state`` table in AWS): ``order#<orderId>`` and ``proof#<proofId>``.

An order document's stored version is the order's own ``version`` (every transition adds one),
so a save is conditional on the version the change started from. A proof id is the hash of
what was signed, so storing a proof twice keeps the first copy (both signatures verify).
"""

from __future__ import annotations

import contextlib
from typing import Any

from hallmark.docstore import DocStore
from hallmark.errors import Conflict
from hallmark.market.orders import Order
from hallmark.market.proofs import SignedProof

ORDER = "order"
PROOF = "proof"


def _strip(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k != "version"}


class DocOrderRepository:
    """:class:`hallmark.market.orders.OrderRepository` over a DocStore."""

    def __init__(self, docs: DocStore) -> None:
        self._docs = docs

    def get(self, order_id: str) -> Order | None:
        doc = self._docs.get(ORDER, order_id)
        if doc is None:
            return None
        return Order.model_validate(doc)  # the stored version is the order's version

    def create(self, order: Order) -> None:
        if order.version != 1:
            raise ValueError("a new order starts at version 1")
        self._docs.create(ORDER, order.order_id, order.to_json_dict())

    def save(self, order: Order, *, expected_version: int) -> None:
        if order.version != expected_version + 1:
            raise ValueError("a saved order must be exactly one version ahead")
        self._docs.replace(ORDER, order.order_id, _strip(order.to_json_dict()), expected_version)


class ProofStore:
    """Signed ledger and delivery proofs by id."""

    def __init__(self, docs: DocStore) -> None:
        self._docs = docs

    def put(self, proof: SignedProof) -> None:
        with contextlib.suppress(Conflict):  # the same signed content, stored by an earlier attempt
            self._docs.create(PROOF, proof.proof_id, proof.to_json_dict())

    def get(self, proof_id: str | None) -> SignedProof | None:
        if not proof_id:
            return None
        doc = self._docs.get(PROOF, proof_id)
        return SignedProof.model_validate(_strip(doc)) if doc else None
