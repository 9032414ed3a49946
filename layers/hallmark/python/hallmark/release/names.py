"""Who may release under a package name: names are owned and delegated, TUF-style.

A name record (``DocStore`` kind ``name``, id = the name) holds its ``owner``, the owner's
``delegations`` and the name's ``releases`` (version -> package id, see
:mod:`hallmark.release.versions`). Rules:

- The first accepted submitter of an unowned name owns it; the claim is a conditional write
  (``DocStore.create``), so of two racing submitters exactly one wins and the other is refused.
- A superadmin may (re)assign the owner (``assign``) and may release under any name (an
  emergency fix of someone else's package); that authority is recorded on the submission.
- The owner delegates the name itself (``prefix=False``) or the name and its namespace
  (``prefix=True``) to another submitter; only the owner or a superadmin delegates or revokes.
- A name's namespace is every name that continues it after a separator (``.``, ``-``, ``_``):
  ``acme`` governs ``acme-cli`` and ``acme.tools`` but not ``acmex``. An unowned name inside an
  owned namespace can only be claimed by that namespace's owner or a prefix delegate (it is then
  owned by the namespace's owner); anyone else is refused.

Every change returns the audit events to record (``NameClaimed``, ``NameOwnerAssigned``,
``NameDelegated``, ``DelegationRevoked``, on the ``release`` chain).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from hallmark._domain import EventDraft, Principal
from hallmark.canonical import to_rfc3339
from hallmark.docstore import DocStore
from hallmark.errors import Conflict, DomainError, Forbidden, InvalidInput, NotFound

KIND = "name"
SUPERADMIN = "superadmin"
SEPARATORS = ".-_"
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
SUB_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:@|+-]{0,255}$"
_NAME = re.compile(NAME_PATTERN)
_SUB = re.compile(SUB_PATTERN)


def check_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidInput("a package name is 1-128 characters of [A-Za-z0-9._-], starting alphanumeric",
                           {"field": "name"})
    return name


def check_sub(sub: str, what: str = "delegate") -> str:
    if not isinstance(sub, str) or not _SUB.match(sub):
        raise InvalidInput(f"{what} must be a caller identity (sub): 1-256 characters of [A-Za-z0-9._:@|+-]",
                           {"field": what})
    return sub


def ancestors(name: str) -> list[str]:
    """The names whose namespace holds ``name``, nearest first: ``a-b.c`` -> ``[a-b, a]``."""
    cuts = [i for i, ch in enumerate(name) if ch in SEPARATORS and i > 0]
    return [name[:i] for i in reversed(cuts)]


def new_record(name: str, owner: str, now: datetime, claimed_via: str) -> dict[str, Any]:
    return {"name": name, "owner": owner, "claimedAt": to_rfc3339(now, "auto"), "claimedVia": claimed_via,
            "delegations": [], "releases": {}}


@dataclass(frozen=True)
class Authority:
    """Why ``sub`` may release under ``name``.

    ``via``: ``owner``, ``delegate``, ``prefix:<ancestor>``, ``superadmin`` or ``claim`` (a new
    name). ``claim_for`` is the owner a new record gets (``None`` when the record exists)."""

    name: str
    sub: str
    via: str
    claim_for: str | None = None


@dataclass(frozen=True)
class NameChange:
    record: dict[str, Any]
    events: list[EventDraft] = field(default_factory=list)


def _delegates(record: dict[str, Any], *, prefix_only: bool) -> set[str]:
    return {d["delegate"] for d in record.get("delegations", []) if d.get("prefix") or not prefix_only}


class NameRegistry:
    def __init__(self, store: DocStore) -> None:
        self.store = store

    # ------------------------------------------------------------------ queries
    def get(self, name: str) -> dict[str, Any] | None:
        return self.store.get(KIND, name)

    def view(self, name: str) -> dict[str, Any]:
        record = self.get(check_name(name))
        if record is None:
            raise NotFound("name", name)
        return record

    def authorize(self, name: str, record: dict[str, Any] | None, caller: Principal) -> Authority:
        """May ``caller`` release under ``name``? Raises ``Forbidden`` (``name_owned``) if not."""
        sub, superadmin = caller.sub, SUPERADMIN in caller.roles
        if record is not None:
            owner = record["owner"]
            if sub == owner:
                return Authority(name, sub, "owner")
            if sub in _delegates(record, prefix_only=False):
                return Authority(name, sub, "delegate")
            for anc in ancestors(name):  # a prefix delegation by the same owner higher up
                governing = self.get(anc)
                if governing is not None and governing["owner"] == owner \
                        and sub in _delegates(governing, prefix_only=True):
                    return Authority(name, sub, f"prefix:{anc}")
            if superadmin:
                return Authority(name, sub, "superadmin")
            raise self._refuse(name, owner, None)
        for anc in ancestors(name):  # a new name: the nearest owned namespace governs it
            governing = self.get(anc)
            if governing is None:
                continue
            owner = governing["owner"]
            if sub == owner:
                return Authority(name, sub, "owner", claim_for=owner)
            if sub in _delegates(governing, prefix_only=True):
                return Authority(name, sub, f"prefix:{anc}", claim_for=owner)
            if superadmin:
                return Authority(name, sub, "superadmin", claim_for=owner)
            raise self._refuse(name, owner, anc)
        return Authority(name, sub, "claim", claim_for=sub)

    @staticmethod
    def _refuse(name: str, owner: str, namespace: str | None) -> Forbidden:
        where = f"the namespace of {namespace!r}" if namespace else f"{name!r}"
        return Forbidden(
            f"{where} is owned by another submitter; ask its owner for a delegation "
            f"(POST /names/{namespace or name}/delegations)",
            {"name": name, "namespace": namespace, "owner": owner}, code="name_owned")

    def save(self, name: str, record: dict[str, Any], expected_version: int | None) -> None:
        """Create (``expected_version=None``: must not exist) or replace conditionally; a
        ``Conflict`` means someone else changed the record first: re-read and decide again."""
        body = {k: v for k, v in record.items() if k != "version"}
        if expected_version is None:
            self.store.create(KIND, name, body)
        else:
            self.store.replace(KIND, name, body, expected_version)

    # ------------------------------------------------------------------ changes
    def assign(self, caller: Principal, name: str, owner: str, now: datetime) -> NameChange:
        """A superadmin makes ``owner`` the owner of ``name`` (created if new); delegations stay."""
        if SUPERADMIN not in caller.roles:
            raise Forbidden("only a superadmin assigns a name's owner", {"role": SUPERADMIN})
        check_name(name)
        check_sub(owner, "owner")
        for _ in range(5):
            record = self.get(name)
            previous = record["owner"] if record else None
            if record is None:
                updated = new_record(name, owner, now, f"assigned:{caller.sub}")
            else:
                updated = {**record, "owner": owner,
                           "delegations": [d for d in record.get("delegations", []) if d["delegate"] != owner]}
            try:
                self.save(name, updated, record["version"] if record else None)
            except Conflict:
                continue
            return NameChange(updated, [EventDraft("NameOwnerAssigned", name, {
                "name": name, "owner": owner, "previousOwner": previous, "at": to_rfc3339(now, "auto")},
                actor=caller.sub)])
        raise Conflict(f"name {name!r} is being changed concurrently; retry")

    def delegate(self, caller: Principal, name: str, delegate: str, prefix: bool, now: datetime) -> NameChange:
        """The owner (or a superadmin) lets ``delegate`` release ``name`` (and, with ``prefix``,
        its namespace). Delegating again replaces the earlier grant to the same delegate."""
        check_name(name)
        check_sub(delegate)
        for _ in range(5):
            record = self._owned_by(caller, name)
            if delegate == record["owner"]:
                raise InvalidInput("the owner needs no delegation", {"delegate": delegate})
            grant = {"delegate": delegate, "prefix": bool(prefix), "grantedBy": caller.sub,
                     "grantedAt": to_rfc3339(now, "auto")}
            others = [d for d in record.get("delegations", []) if d["delegate"] != delegate]
            if len(others) >= 100:
                raise DomainError("too_many_delegations", "a name holds at most 100 delegations", 409)
            updated = {**record, "delegations": [*others, grant]}
            try:
                self.save(name, updated, record["version"])
            except Conflict:
                continue
            return NameChange(updated, [EventDraft("NameDelegated", name, {
                "name": name, "delegate": delegate, "prefix": bool(prefix), "at": grant["grantedAt"]},
                actor=caller.sub)])
        raise Conflict(f"name {name!r} is being changed concurrently; retry")

    def revoke(self, caller: Principal, name: str, delegate: str, now: datetime) -> NameChange:
        check_name(name)
        check_sub(delegate)
        for _ in range(5):
            record = self._owned_by(caller, name)
            kept = [d for d in record.get("delegations", []) if d["delegate"] != delegate]
            if len(kept) == len(record.get("delegations", [])):
                raise NotFound("delegation", f"{name}/{delegate}")
            updated = {**record, "delegations": kept}
            try:
                self.save(name, updated, record["version"])
            except Conflict:
                continue
            return NameChange(updated, [EventDraft("DelegationRevoked", name, {
                "name": name, "delegate": delegate, "at": to_rfc3339(now, "auto")}, actor=caller.sub)])
        raise Conflict(f"name {name!r} is being changed concurrently; retry")

    def _owned_by(self, caller: Principal, name: str) -> dict[str, Any]:
        record = self.get(name)
        if record is None:
            raise NotFound("name", name)
        if caller.sub != record["owner"] and SUPERADMIN not in caller.roles:
            raise Forbidden("only the name's owner or a superadmin manages its delegations",
                            {"name": name, "owner": record["owner"]}, code="not_owner")
        return record
