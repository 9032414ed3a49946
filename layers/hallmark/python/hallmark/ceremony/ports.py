"""Repository ports of the ceremony package and their in-memory fakes.

Completing a ceremony writes the ceremony and every artifact's new tier together: the
DynamoDB implementation uses one ``TransactWriteItems`` (version condition on the ceremony,
a condition on each artifact's current tier); the fake does the same under a lock.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import NamedTuple, Protocol

from hallmark.ceremony.models import ArtifactProvenance, Ceremony, Tier, Witness
from hallmark.errors import Conflict


class TierAward(NamedTuple):
    """Move ``record.artifact_id`` from ``from_tier`` (checked) to ``record.tier``."""

    from_tier: Tier | None
    record: ArtifactProvenance


class WitnessRepository(Protocol):
    def get(self, witness_id: str) -> Witness | None: ...

    def put(self, witness: Witness, *, expected_version: int | None) -> None:
        """``expected_version=None``: must not exist yet; else must match (``Conflict``)."""
        ...


class CeremonyRepository(Protocol):
    def get(self, ceremony_id: str) -> Ceremony | None: ...

    def create(self, ceremony: Ceremony) -> None: ...

    def save(self, ceremony: Ceremony, *, expected_version: int, awards: Sequence[TierAward] = ()) -> None:
        """Atomically check the ceremony's version and each artifact's current tier, then
        write all of them. ``Conflict`` (and nothing written) if any check fails."""
        ...

    def artifact(self, artifact_id: str) -> ArtifactProvenance | None: ...


class InMemoryWitnessRepository:
    def __init__(self) -> None:
        self._items: dict[str, Witness] = {}
        self._lock = threading.Lock()

    def get(self, witness_id: str) -> Witness | None:
        with self._lock:
            return self._items.get(witness_id)

    def put(self, witness: Witness, *, expected_version: int | None) -> None:
        with self._lock:
            current = self._items.get(witness.witness_id)
            if (current.version if current else None) != expected_version:
                raise Conflict("witness changed concurrently", {"witnessId": witness.witness_id})
            self._items[witness.witness_id] = witness


class InMemoryCeremonyRepository:
    def __init__(self) -> None:
        self._ceremonies: dict[str, Ceremony] = {}
        self._artifacts: dict[str, ArtifactProvenance] = {}
        self._lock = threading.Lock()

    def get(self, ceremony_id: str) -> Ceremony | None:
        with self._lock:
            return self._ceremonies.get(ceremony_id)

    def create(self, ceremony: Ceremony) -> None:
        with self._lock:
            if ceremony.ceremony_id in self._ceremonies:
                raise Conflict(f"ceremony {ceremony.ceremony_id!r} already exists", {"id": ceremony.ceremony_id})
            self._ceremonies[ceremony.ceremony_id] = ceremony

    def save(self, ceremony: Ceremony, *, expected_version: int, awards: Sequence[TierAward] = ()) -> None:
        with self._lock:
            current = self._ceremonies.get(ceremony.ceremony_id)
            if current is None or current.version != expected_version:
                raise Conflict("ceremony changed concurrently", {"id": ceremony.ceremony_id})
            for award in awards:
                held = self._artifacts.get(award.record.artifact_id)
                if (held.tier if held else None) != award.from_tier:
                    raise Conflict("artifact tier changed concurrently", {
                        "artifactId": award.record.artifact_id, "expected": award.from_tier,
                        "held": held.tier if held else None})
            self._ceremonies[ceremony.ceremony_id] = ceremony
            for award in awards:
                self._artifacts[award.record.artifact_id] = award.record

    def artifact(self, artifact_id: str) -> ArtifactProvenance | None:
        with self._lock:
            return self._artifacts.get(artifact_id)

    def set_artifact(self, record: ArtifactProvenance) -> None:
        """Test helper: seed an artifact's current tier."""
        with self._lock:
            self._artifacts[record.artifact_id] = record
