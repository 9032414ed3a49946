"""Domain steps of the marketplace over ports (no AWS SDK here).

:class:`DownloadDelivery` is the buyer's decrypting download (``GET /orders/{orderId}/content``):
the delivery key never leaves KMS and the buyer needs no AWS credentials, only the token.
"""

from __future__ import annotations

import base64
import json
from datetime import datetime
from typing import Any

from hallmark._domain import EventDraft, Principal, emit_by_flow
from hallmark.canonical import sha256_hex, to_rfc3339
from hallmark.docstore import DocStore
from hallmark.errors import Conflict, DomainError, NotFound
from hallmark.market.delivery import encryption_context
from hallmark.market.ports import ArtifactSource, Decryptor, DeliveryReader
from hallmark.market.service import delivery_key
from hallmark.market.store import DocOrderRepository, ProofStore
from hallmark.ports import AuditEmitter

#: The response carries the plaintext base64-encoded in JSON. Lambda's synchronous response
#: limit (6 MB) binds before API Gateway's 10 MB: 4 MiB of ciphertext (about 5.6 MB of base64)
#: plus the manifest envelope stays under it. Larger deliveries are refused (413), not truncated.
MAX_CONTENT_BYTES = 4 * 1024 * 1024
MAX_MANIFEST_BYTES = 256 * 1024


class DownloadDelivery:
    """Decrypt an order's delivery for its buyer, inside the function, and audit it.

    Refusals change nothing (no event, no write): an order that is not the caller's, or does
    not exist (404 ``not_found``, the same answer); not paid (409 ``not_paid``) or paid but not
    yet delivered (409 ``not_delivered``); a stored ciphertext whose sha256 is not the one the
    signed delivery proof names (409 ``ciphertext_mismatch``); a message whose encryption
    context is not exactly ``{orderId, buyer, manifestDigest}`` of this order (403
    ``context_mismatch``); a delivery over :data:`MAX_CONTENT_BYTES` (413 ``delivery_too_large``).
    """

    def __init__(self, docs: DocStore, reader: DeliveryReader, decryptor: Decryptor, manifests: ArtifactSource,
                 audit: AuditEmitter) -> None:
        self._docs = docs
        self._orders = DocOrderRepository(docs)
        self._proofs = ProofStore(docs)
        self._reader = reader
        self._decryptor = decryptor
        self._manifests = manifests
        self._audit = audit

    def __call__(self, order_id: str, caller: Principal, now: datetime) -> dict[str, Any]:
        order = self._orders.get(order_id)
        if order is None or order.buyer != caller.sub:
            raise NotFound("order", order_id)  # another buyer's order is indistinguishable from none
        if order.status == "Placed":
            raise Conflict("the order is not paid", {"orderId": order_id}, code="not_paid")
        signed = self._proofs.get(order.delivery_proof_id)
        if order.status != "Delivered" or signed is None:
            raise Conflict("the order is paid but not delivered yet; retry shortly", {"orderId": order_id},
                           code="not_delivered")
        digest = str(signed.proof["ciphertextDigest"])
        key = delivery_key(order.order_id, digest)
        try:
            ciphertext = self._reader.get(key, MAX_CONTENT_BYTES)
        except OverflowError:
            raise DomainError("delivery_too_large", "the delivery is over the API's download limit",
                              413, {"orderId": order_id, "maxBytes": MAX_CONTENT_BYTES}) from None
        except KeyError:
            raise Conflict("the delivery the proof names is not stored", {"orderId": order_id},
                           code="delivery_missing") from None
        if sha256_hex(ciphertext) != digest:
            raise Conflict("the stored ciphertext is not the one the delivery proof names",
                           {"orderId": order_id, "ciphertextDigest": digest}, code="ciphertext_mismatch")
        context = encryption_context(order.order_id, order.buyer, order.manifest_digest)
        plaintext = self._decryptor.decrypt(ciphertext, context)  # refuses any other context
        envelope = self._manifest(order.listing_id)
        content_sha = sha256_hex(plaintext)
        emit_by_flow(self._audit, [EventDraft("DeliveryDownloaded", order.order_id, {
            "deliveryProofId": signed.proof_id, "ciphertextDigest": digest, "contentSha256": content_sha,
            "downloadedAt": to_rfc3339(now, "auto")}, actor=order.buyer)])
        return {"orderId": order.order_id, "listingId": order.listing_id, "contentSha256": content_sha,
                "size": len(plaintext), "ciphertextDigest": digest, "deliveryProofId": signed.proof_id,
                "encryptionContext": context, "manifestEnvelope": envelope,
                "contentBase64": base64.b64encode(plaintext).decode("ascii")}

    def _manifest(self, listing_id: str) -> dict[str, Any]:
        listing = self._docs.get("listing", listing_id)
        ref = (listing or {}).get("manifestRef") or {}
        if not ref.get("bucket") or not ref.get("key"):
            raise Conflict("the listing names no signed manifest", {"listingId": listing_id}, code="no_manifest")
        raw = self._manifests.read(str(ref["bucket"]), str(ref["key"]), ref.get("versionId"))
        if len(raw) > MAX_MANIFEST_BYTES:
            raise Conflict("the signed manifest is over its size limit", {"listingId": listing_id},
                           code="manifest_too_large")
        envelope: dict[str, Any] = json.loads(raw)
        return envelope
