"""Which parts of an audit event are personal, and the event as it goes on the chain (PROTOTYPE).

Applied once, at the audit intake, before ``AuditLog.append``: ``actor`` (unless ``system``),
``subject`` for the event types whose subject is a person, and the data fields that name or
describe people are replaced (the id by its pseudonym, free text and emails by sealed fields).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from hallmark._domain import EventDraft
from hallmark.privacy.vault import Vault

SYSTEM_ACTORS: Final = frozenset({"system"})
#: event types whose ``subject`` is a person
PERSON_SUBJECTS: Final = frozenset({"ApproverAdded", "ApproverRemoved", "ApproverKeyRotated", "WitnessRegistered",
                                    "WitnessRemoved"})
#: data fields holding one person's id (replaced by the pseudonym)
PERSON_FIELDS: Final = frozenset({"buyer", "seller", "witnessId", "initiator", "approverId", "proposedBy",
                                  "blessedBy", "submittedBy", "party", "owner", "delegate"})
#: data fields holding lists of people
PERSON_LISTS: Final = frozenset({"witnesses", "approvers"})
#: free text / contact fields (sealed under the subject's key: the actor's, or the event subject's)
SEALED_FIELDS: Final = frozenset({"email", "rationale", "reason", "memo", "blessing", "comment"})


def pseudonymize(draft: EventDraft, vault: Vault) -> EventDraft:
    person = draft.actor if draft.actor not in SYSTEM_ACTORS else None
    actor = vault.pseudonym(draft.actor) if person else draft.actor
    subject = vault.pseudonym(draft.subject) if draft.type in PERSON_SUBJECTS else draft.subject
    owner = draft.subject if draft.type in PERSON_SUBJECTS else person
    return EventDraft(draft.type, subject, _data(draft.data, vault, owner), actor)


def _data(data: Mapping[str, Any], vault: Vault, owner: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key in PERSON_FIELDS and isinstance(value, str) and value:
            out[key] = vault.pseudonym(value)
        elif key in PERSON_LISTS and isinstance(value, list):
            out[key] = [vault.pseudonym(v) if isinstance(v, str) else v for v in value]
        elif key in SEALED_FIELDS and isinstance(value, str) and owner:
            out[key] = vault.seal(owner, key, value)
        elif isinstance(value, Mapping):
            out[key] = _data(value, vault, owner)
        else:
            out[key] = value
    return out
