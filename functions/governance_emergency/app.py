"""Governance: an emergency upgrade applies at once (UpgradeApplied) and opens its ratification
window; the currently published version is remembered for the rollback."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from hallmark._domain import emit_by_flow
from hallmark.adapters import runtime
from hallmark.errors import Conflict, transient_errors
from hallmark.observability import logger
from hallmark.release.current import read_pointer
from hallmark.release.service import ReleaseService


@transient_errors
@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    svc = runtime.governance()
    upgrade_id = f"up-{event['packageId']}"
    previous = read_pointer(runtime.client("s3"), runtime.bucket("manifests"), event["name"])
    try:
        opened = svc.open_upgrade(
            upgrade_id=upgrade_id, package_id=event["packageId"], manifest_digest=event["manifestDigest"],
            impact=event["impact"], proposed_by=event["proposedBy"], now=runtime.now(), emergency=True,
            previous_version=previous["packageId"] if previous else None)
        emit_by_flow(runtime.audit(), opened.events)
    except Conflict:
        pass  # a retried step: the upgrade is already applied
    ReleaseService(runtime.docs(), runtime.audit()).record_upgrade(event["packageId"], upgrade_id)
    return {"upgradeId": upgrade_id, "ratificationSeconds": runtime.ratification_seconds(),
            "previousPackageId": previous["packageId"] if previous else None}
