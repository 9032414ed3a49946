"""Which parts of an audit event are personal, and the event as it goes on the chain.

Applied at ONE boundary, the audit intake (``hallmark.audit.intake``), before the chain append,
so emitters stay unchanged. The declared table:

* ``actor`` is a person unless it is a system actor (``system`` or ``system:<name>``);
* ``subject`` is a person for the event types in :data:`PERSON_SUBJECTS`;
* the data fields in :data:`PERSON_FIELDS` (at any depth, a string or a list of strings) hold
  person ids; a ``wallet:<person>:<currency>`` account names its person (:data:`WALLET_RE`);
* the data fields in :data:`SEALED_FIELDS` (per event type, plus ``email`` anywhere) are free
  text or contact data: sealed under the data key of the event's person (the actor, else the
  person subject, else the first person named).

Every person so named is replaced by their pseudonym, in those fields and wherever else their
id occurs as a token in a string of the event (a copy of a proof, an account name), and an
event that names a person gets a keyed id (:meth:`Vault.keyed_id`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

from hallmark.privacy.vault import Vault, is_sealed

SYSTEM_ACTOR: Final = "system"
#: event types whose ``subject`` is a person
PERSON_SUBJECTS: Final = frozenset({"ApproverAdded", "ApproverRemoved", "ApproverKeyRotated", "WitnessRegistered",
                                    "WitnessRemoved"})
#: data fields (any event type, any depth) holding one person id or a list of them
PERSON_FIELDS: Final = frozenset({"buyer", "seller", "witnessId", "initiator", "approverId", "proposedBy",
                                  "blessedBy", "submittedBy", "party", "owner", "previousOwner", "delegate",
                                  "approvers", "ratifiers", "witnesses", "changedBy"})
#: free-text / contact fields, sealed: per event type ("*": any type)
SEALED_FIELDS: Final[Mapping[str, frozenset[str]]] = {
    "*": frozenset({"email"}),
    "SettlementPlanned": frozenset({"memo"}),
}
WALLET_RE: Final = re.compile(r"^wallet:(.+):([A-Z]{3})$")
_TOKEN_CHARS: Final = r"A-Za-z0-9._@-"  # ':' separates tokens (wallet:<id>:EUR)


def is_person(actor: str) -> bool:
    return bool(actor) and actor != SYSTEM_ACTOR and not actor.startswith(SYSTEM_ACTOR + ":")


def persons_named(type_: str, actor: str, subject: str, data: Mapping[str, Any]) -> list[str]:
    """The person ids the event names, in the order first named (actor, subject, data)."""
    found: list[str] = []

    def add(value: Any) -> None:
        if isinstance(value, str) and value and value not in found:
            found.append(value)

    def walk(value: Any, key: str | None) -> None:
        if isinstance(value, Mapping):
            for k, v in value.items():
                walk(v, k)
        elif isinstance(value, list):
            for v in value:
                walk(v, key)
        elif isinstance(value, str):
            if key in PERSON_FIELDS:
                add(value)
            elif (m := WALLET_RE.match(value)) and is_person(m.group(1)):
                add(m.group(1))

    if is_person(actor):
        add(actor)
    if type_ in PERSON_SUBJECTS:
        add(subject)
    walk(data, None)
    return [p for p in found if is_person(p)]


def pseudonymize(msg: Mapping[str, Any], vault: Vault) -> dict[str, Any]:
    """The queued audit message (``id, chain, ts, type, actor, subject, data``) with every person
    replaced by their pseudonym, the personal free text sealed, and (if it names a person) a keyed id."""
    type_, actor, subject, data = msg["type"], msg["actor"], msg["subject"], msg["data"]
    persons = persons_named(type_, actor, subject, data)
    if not persons:
        return dict(msg)
    names = {p: vault.pseudonym(p) for p in persons}
    pattern = re.compile("(?<![" + _TOKEN_CHARS + "])(" + "|".join(
        re.escape(p) for p in sorted(names, key=len, reverse=True)) + ")(?![" + _TOKEN_CHARS + "])")

    def sub(text: str) -> str:
        return names.get(text) or pattern.sub(lambda m: names[m.group(1)], text)

    owner = persons[0]
    sealed = SEALED_FIELDS["*"] | SEALED_FIELDS.get(type_, frozenset())

    def walk(value: Any, key: str | None) -> Any:
        if isinstance(value, Mapping):
            return {k: walk(v, k) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v, key) for v in value]
        if isinstance(value, str):
            return vault.seal(owner, str(key), value) if key in sealed and not is_sealed(value) else sub(value)
        return value

    return {**msg, "id": vault.keyed_id(str(msg["id"]), persons), "actor": sub(actor), "subject": sub(subject),
            "data": walk(data, None)}


def reveal(value: Any, vault: Vault) -> Any:
    """For readers: ``value`` (an event or part of one) with each sealed field opened, or
    ``"erased"`` where its person's key is gone. Pseudonyms stay pseudonyms."""
    if is_sealed(value):
        opened = vault.open(value)
        return "erased" if opened is None else opened
    if isinstance(value, Mapping):
        return {k: reveal(v, vault) for k, v in value.items()}
    if isinstance(value, list):
        return [reveal(v, vault) for v in value]
    return value
