"""Who may read whose records (docs/authorization.md). One place, compared by exact identity:
a caller's ``sub`` equals the record's owner, character for character, or the caller holds a
role that reads everything of that kind. Never a prefix, a split on ``:`` or a case fold.

A caller who may not read a record gets the same 404 as for a record that does not exist, so
ids cannot be probed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from hallmark._domain import Principal
from hallmark.errors import NotFound

# Roles that read every record of a kind (besides its owners).
PACKAGE_READERS = frozenset({"approver", "auditor", "superadmin"})  # approvers review what they approve
ORDER_READERS = frozenset({"auditor", "superadmin"})
SETTLEMENT_READERS = frozenset({"approver", "auditor", "superadmin"})  # approvers sign the plan


def is_identity(caller: Principal, owner: object) -> bool:
    """The caller is ``owner``: the same non-empty string, exactly."""
    return isinstance(owner, str) and bool(owner) and caller.sub == owner


def may_read(caller: Principal, owners: Iterable[object], readers: frozenset[str]) -> bool:
    return bool(caller.roles & readers) or any(is_identity(caller, o) for o in owners)


def require_package_reader(caller: Principal, doc: Mapping[str, Any]) -> None:
    """A package: its submitter, approvers, auditors and superadmins."""
    if not may_read(caller, [doc.get("submittedBy")], PACKAGE_READERS):
        raise NotFound("package", str(doc.get("packageId", "")))


def require_order_reader(caller: Principal, buyer: str, order_id: str) -> None:
    """An order: its buyer, auditors and superadmins (the seller sees the ledger, not the order)."""
    if not may_read(caller, [buyer], ORDER_READERS):
        raise NotFound("order", order_id)


def require_settlement_reader(caller: Principal, settlement_id: str, *, proposed_by: object,
                              source_owner: object, parties: Iterable[object]) -> None:
    """A settlement: who proposed it, the owner of the wallet it pays out of, each party it pays,
    approvers, auditors and superadmins."""
    if not may_read(caller, [proposed_by, source_owner, *parties], SETTLEMENT_READERS):
        raise NotFound("settlement", settlement_id)
