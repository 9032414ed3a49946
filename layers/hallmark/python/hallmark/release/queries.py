"""``GET /packages``: the packages a caller may read (their own; approvers, auditors and
superadmins every one), filtered by name, status and submitter, newest first, a page at a time
(:mod:`hallmark.pagination`)."""

from __future__ import annotations

from typing import Any

from hallmark._domain import Principal
from hallmark.access import PACKAGE_READERS, may_read
from hallmark.docstore import DocStore
from hallmark.pagination import paginate, scan_kind

KIND = "package"
ROUTE = "GET /packages"


def summary(doc: dict[str, Any]) -> dict[str, Any]:
    meta = doc.get("meta") or {}
    return {"packageId": doc["packageId"], "name": meta.get("name"), "version": meta.get("version"),
            "status": doc.get("status"), "impact": doc.get("impact", meta.get("impact")),
            "submittedBy": doc.get("submittedBy"), "submittedAt": doc.get("submittedAt"),
            "reasons": doc.get("reasons") or [], "listingId": doc.get("listingId"),
            "upgradeId": doc.get("upgradeId")}


def list_packages(store: DocStore, caller: Principal, *, name: str | None = None, status: str | None = None,
                  submitter: str | None = None, limit: int = 50,
                  next_token: str | None = None) -> tuple[list[dict[str, Any]], str | None]:
    def wanted(doc: dict[str, Any]) -> bool:
        return (may_read(caller, [doc.get("submittedBy")], PACKAGE_READERS)
                and (name is None or (doc.get("meta") or {}).get("name") == name)
                and (status is None or doc.get("status") == status)
                and (submitter is None or doc.get("submittedBy") == submitter))

    docs = [d for d in scan_kind(store, KIND) if wanted(d)]
    page, token = paginate(docs, key=lambda d: (str(d.get("submittedAt") or ""), str(d["packageId"])), limit=limit,
                           next_token=next_token, route=ROUTE, newest_first=True,
                           filters={"name": name, "status": status, "submitter": submitter})
    return [summary(d) for d in page], token
