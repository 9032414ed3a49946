"""Pseudonyms in documents that pair chain events with signed records naming people (bundles).

A bundle's approvals and provenance records are signed over person ids, while its audit events
carry pseudonyms (docs/privacy.md). The collector adds ``"pseudonyms": {<psn>: <id>}`` for the
pseudonyms its events use whose subject is not erased; the verifier checks the table is one to
one and reads the proved events through it when it pairs them with the signed records (the
hashes and proofs are checked on the events as they are).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hallmark.privacy.vault import PSEUDONYM_RE, SubjectStore


def lookup(store: SubjectStore | None, subject_id: str) -> str:
    """The pseudonym of ``subject_id`` if it has one, else ``subject_id`` (read only: makes none)."""
    record = store.get(subject_id) if store is not None else None
    return record.pseudonym if record is not None else subject_id


def pseudonyms_in(value: Any) -> set[str]:
    if isinstance(value, Mapping):
        return set().union(*(pseudonyms_in(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(pseudonyms_in(v) for v in value)) if value else set()
    return set(PSEUDONYM_RE.findall(value)) if isinstance(value, str) else set()


def names_of(store: SubjectStore | None, value: Any) -> dict[str, str]:
    """``{psn: id}`` for the pseudonyms in ``value`` whose subject is not erased."""
    out: dict[str, str] = {}
    for psn in sorted(pseudonyms_in(value)):
        record = store.by_pseudonym(psn) if store is not None else None
        if record is not None:
            out[psn] = record.subject_id
    return out


def valid_names(table: Any) -> dict[str, str] | None:
    """The bundle's table if well formed and one to one, else None."""
    if table is None:
        return {}
    if not isinstance(table, Mapping) or not all(
            isinstance(k, str) and PSEUDONYM_RE.fullmatch(k) and isinstance(v, str) and v for k, v in table.items()):
        return None
    if len(set(table.values())) != len(table):
        return None
    return dict(table)


def named(value: Any, names: Mapping[str, str]) -> Any:
    """``value`` with each pseudonym in ``names`` replaced by its id (others stay)."""
    if not names:
        return value
    if isinstance(value, Mapping):
        return {k: named(v, names) for k, v in value.items()}
    if isinstance(value, list):
        return [named(v, names) for v in value]
    if isinstance(value, str):
        if "psn-" not in value:  # every pseudonym starts so: nothing to replace
            return value
        return PSEUDONYM_RE.sub(lambda m: names.get(m.group(0), m.group(0)), value)
    return value
