"""Governance: an emergency upgrade nobody ratified in time is rolled back: the previous
published version becomes current again, the emergency listing is withdrawn, and
UpgradeRolledBack is recorded."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from hallmark._domain import emit_by_flow
from hallmark.adapters import runtime
from hallmark.docstore import update
from hallmark.errors import transient_errors
from hallmark.observability import logger
from hallmark.release.current import pointer_key, write_pointer
from hallmark.release.publish import LISTING
from hallmark.release.service import ReleaseService


@transient_errors
@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    gov, store = runtime.governance(), runtime.docs()
    releases = ReleaseService(store, runtime.audit())
    upgrade = gov.load("upgrade", event["upgradeId"])
    result = gov.check_ratification(upgrade, runtime.now())
    package = releases.get(event["packageId"])
    s3, bucket = runtime.client("s3"), runtime.bucket("manifests")
    restored: dict[str, Any] | None = None
    if upgrade.previous_version:
        previous = releases.get(upgrade.previous_version)
        restored = {"packageId": previous["packageId"], "version": previous["meta"]["version"],
                    **previous["manifest"]["repository"], "manifestSignatureId": previous["manifest"]["signatureId"]}
        write_pointer(s3, bucket, package["meta"]["name"], restored)
    else:
        s3.delete_object(Bucket=bucket, Key=pointer_key(package["meta"]["name"]))
    if package.get("listingId"):
        def withdraw(doc: dict[str, Any]) -> None:
            doc["status"] = "Withdrawn"

        update(store, LISTING, package["listingId"], withdraw)
    releases.mark_rolled_back(package["packageId"], restored)
    emit_by_flow(runtime.audit(), result.events)
    runtime.bus().publish("UpgradeRolledBack", {"upgradeId": event["upgradeId"], "packageId": package["packageId"],
                                                "restored": restored})
    return {"upgradeId": event["upgradeId"], "restored": restored}
