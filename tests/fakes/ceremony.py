"""In-memory fakes (tests only; never in the Lambda layer)."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from hallmark.ceremony.models import ArtifactProvenance, Ceremony, ProvenanceAttestation, Witness
from hallmark.ceremony.ports import TierAward
from hallmark.errors import Conflict, NotFound


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
        self._tokens: dict[str, str] = {}
        self._claimed: set[str] = set()
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

    def provenance(self, signature_id: str) -> ProvenanceAttestation | None:
        with self._lock:
            return next((c.provenance for c in self._ceremonies.values()
                         if c.provenance is not None and c.provenance.signature_id == signature_id), None)

    def attach_task_token(self, ceremony_id: str, token: str) -> None:
        with self._lock:
            if ceremony_id not in self._ceremonies:
                raise NotFound("ceremony", ceremony_id)
            self._tokens[ceremony_id] = token
            self._claimed.discard(ceremony_id)

    def claim_task_token(self, ceremony_id: str) -> str | None:
        with self._lock:
            ceremony = self._ceremonies.get(ceremony_id)
            token = self._tokens.get(ceremony_id)
            if ceremony is None or token is None or ceremony.status != "Witnessed" or ceremony_id in self._claimed:
                return None
            self._claimed.add(ceremony_id)
            return token

    def release_task_token(self, ceremony_id: str) -> None:
        with self._lock:
            self._claimed.discard(ceremony_id)

    def set_artifact(self, record: ArtifactProvenance) -> None:
        """Test helper: seed an artifact's current tier."""
        with self._lock:
            self._artifacts[record.artifact_id] = record
