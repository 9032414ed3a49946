"""Publishing: the manifest repository object layout and the marketplace listing."""

from __future__ import annotations

import os
import uuid
from datetime import datetime
from typing import Any

from hallmark.audit.events import derive_event_id
from hallmark.canonical import to_rfc3339
from hallmark.docstore import DocStore
from hallmark.errors import Conflict
from hallmark.ports import AuditEmitter, EventPublisher
from hallmark.release.service import CHAIN, ReleaseService

LISTING = "listing"


def create_listing(store: DocStore, audit: AuditEmitter, package: dict[str, Any], manifest: dict[str, Any],
                   repository: dict[str, Any], now: Any) -> dict[str, Any]:
    """One listing per package (idempotent: a retried step returns the existing listing)."""
    listing_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"hallmark:listing:{package['packageId']}"))
    meta = package["meta"]
    listing = {
        "listingId": listing_id,
        "packageId": package["packageId"],
        "name": meta["name"],
        "version": meta["version"],
        "seller": package["submittedBy"],
        "price": int(os.environ.get("LISTING_DEFAULT_PRICE_MINOR", "1900")),
        "currency": os.environ.get("LISTING_DEFAULT_CURRENCY", "USD"),
        "tier": None,
        "manifestSignatureId": manifest["signatureId"],
        "manifestDigest": manifest["digest"],
        "manifestRef": repository,
        "artifact": {"bucket": manifest["artifactBucket"], "key": manifest["artifactKey"],
                     "versionId": manifest.get("artifactVersionId")},
        "createdAt": to_rfc3339(now),
        "status": "Active",
    }
    try:
        store.create(LISTING, listing_id, listing)
    except Conflict:
        existing = store.get(LISTING, listing_id)
        assert existing is not None
        return existing
    audit.emit(chain=CHAIN, type="ListingCreated", actor="system:marketplace", subject=package["packageId"],
               data={"listingId": listing_id, "manifestSignatureId": manifest["signatureId"],
                     "price": listing["price"], "currency": listing["currency"]},
               event_id=derive_event_id(package["packageId"], "ListingCreated"))
    return listing


def list_for_sale(service: ReleaseService, bus: EventPublisher, package_id: str, manifest: dict[str, Any],
                  repository: dict[str, Any], now: datetime) -> tuple[dict[str, Any], dict[str, Any]]:
    """The "Create listing" step: the listing carrying the manifest's signature id
    (ListingCreated), the package Published (PackagePublished), both announced on the bus.
    Returns the announced detail and the published package record."""
    package = service.get(package_id)
    listing = create_listing(service.store, service.audit, package, manifest, repository, now)
    published = service.mark_published(package["packageId"], repository, listing["listingId"])
    detail = {"packageId": package["packageId"], "listingId": listing["listingId"],
              "manifestSignatureId": listing["manifestSignatureId"]}
    bus.publish("ListingCreated", detail)
    bus.publish("PackagePublished", detail)
    return detail, published
