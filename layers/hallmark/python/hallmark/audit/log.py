"""``AuditLog``: append events to hash chains, sign checkpoints, export, prove.

Appends are idempotent on the event id and serialized per chain by the store's conditional
write on the head: a lost race (:class:`HeadMoved`) re-reads the head and retries, so a
race never forks a chain. After each append (and after an idempotent replay of one) the
:class:`CheckpointPolicy` decides whether a signed checkpoint is due; a failed checkpoint
never un-appends the event, and a retried delivery completes the checkpoint.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hallmark.audit.checkpoints import (
    GENESIS_CHECKPOINT_HASH,
    CheckpointPolicy,
    build_checkpoint,
    checkpoint_hash,
    verify_checkpoint_signature,
)
from hallmark.audit.events import GENESIS, AuditEvent, validate_event_type
from hallmark.audit.merkle import (
    MerkleFrontier,
    consistency_proof,
    inclusion_proof,
    merkle_root,
    verify_consistency,
    verify_inclusion,
)
from hallmark.audit.notes import DEFAULT_ORIGIN_PREFIX, note_origin, sign_checkpoint_note
from hallmark.audit.store import AuditStore, CheckpointConflict, CheckpointRecord, HeadMoved
from hallmark.canonical import canonical_bytes, parse_rfc3339, to_rfc3339
from hallmark.ports import Signer

__all__ = [
    "AppendContention",
    "AuditIntegrityError",
    "AuditLog",
    "Clock",
    "ConsistencyProof",
    "InclusionProof",
]

Clock = Callable[[], datetime]


def _utc_now() -> datetime:
    return datetime.now(UTC)


class AppendContention(RuntimeError):
    """The head kept moving for every attempt (retriable: redeliver the message later)."""


class AuditIntegrityError(RuntimeError):
    """The stored chain is inconsistent (a gap or broken link found while checkpointing or proving)."""


@dataclass(frozen=True)
class InclusionProof:
    """RFC 9162 inclusion of event ``seq`` in the tree signed by ``checkpoint`` (leaf index = seq - 1)."""

    chain: str
    seq: int
    event_hash: str
    tree_size: int
    path: tuple[str, ...]
    checkpoint: dict[str, Any]

    def verify(self, public_key_pem: bytes) -> bool:
        """Checks the checkpoint signature and the audit path against its ``merkleRoot``."""
        ckpt = self.checkpoint
        if ckpt.get("chain") != self.chain or ckpt.get("seq") != self.tree_size:
            return False
        if not verify_checkpoint_signature(ckpt, public_key_pem):
            return False
        try:
            path = [bytes.fromhex(p) for p in self.path]
            return verify_inclusion(
                bytes.fromhex(self.event_hash),
                self.seq - 1,
                self.tree_size,
                path,
                bytes.fromhex(ckpt["merkleRoot"]),
            )
        except (ValueError, TypeError, KeyError):
            return False

    def to_dict(self) -> dict[str, Any]:
        return {
            "chain": self.chain,
            "seq": self.seq,
            "leafIndex": self.seq - 1,
            "eventHash": self.event_hash,
            "treeSize": self.tree_size,
            "path": list(self.path),
            "checkpoint": self.checkpoint,
        }


@dataclass(frozen=True)
class ConsistencyProof:
    """RFC 9162 consistency between two checkpoints of one chain."""

    chain: str
    old_size: int
    new_size: int
    path: tuple[str, ...]
    old_checkpoint: dict[str, Any]
    new_checkpoint: dict[str, Any]

    def verify(self, public_key_pem: bytes) -> bool:
        """Checks both checkpoint signatures and that the old tree is a prefix of the new one."""
        old, new = self.old_checkpoint, self.new_checkpoint
        if old.get("chain") != self.chain or new.get("chain") != self.chain:
            return False
        if old.get("seq") != self.old_size or new.get("seq") != self.new_size:
            return False
        if not (
            verify_checkpoint_signature(old, public_key_pem)
            and verify_checkpoint_signature(new, public_key_pem)
        ):
            return False
        try:
            return verify_consistency(
                self.old_size,
                self.new_size,
                bytes.fromhex(old["merkleRoot"]),
                bytes.fromhex(new["merkleRoot"]),
                [bytes.fromhex(p) for p in self.path],
            )
        except (ValueError, TypeError, KeyError):
            return False

    def to_dict(self) -> dict[str, Any]:
        return {
            "chain": self.chain,
            "oldSize": self.old_size,
            "newSize": self.new_size,
            "path": list(self.path),
            "oldCheckpoint": self.old_checkpoint,
            "newCheckpoint": self.new_checkpoint,
        }


class AuditLog:
    """The audit log over an :class:`AuditStore`, signing checkpoints with ``signer``."""

    def __init__(
        self,
        store: AuditStore,
        signer: Signer,
        policy: CheckpointPolicy | None = None,
        clock: Clock = _utc_now,
        *,
        max_attempts: int = 100,
        backoff_s: float = 0.0005,
        max_backoff_s: float = 0.05,
        note_origin_prefix: str = DEFAULT_ORIGIN_PREFIX,
    ):
        self.store = store
        self.note_origin_prefix = note_origin_prefix
        self.signer = signer
        self.policy = policy if policy is not None else CheckpointPolicy()
        self.clock = clock
        self.max_attempts = max_attempts
        self._backoff = backoff_s
        self._max_backoff = max_backoff_s
        self._since_cache: dict[tuple[str, int], datetime] = {}

    # -- appending ---------------------------------------------------------------------------

    def append(
        self,
        chain: str,
        id: str,
        ts: str | datetime,
        type: str,
        actor: str,
        subject: str,
        data: Mapping[str, Any],
    ) -> AuditEvent:
        """Append one event; returns the event on the chain with this id.

        Idempotent on ``id``: if the chain already holds it, that stored event is returned
        unchanged (the first write wins, whatever the new arguments). Otherwise the event gets
        ``seq = head + 1`` and ``prevHash = head hash`` and is written conditionally on the head;
        a lost race re-reads the head (at most ``max_attempts`` times, with jittered backoff)
        and then raises :class:`AppendContention`.
        """
        validate_event_type(type)
        ts_text = to_rfc3339(ts) if isinstance(ts, datetime) else ts
        payload = dict(data)  # ts, data and the rest are validated by AuditEvent.create

        existing = self.store.get(chain, id)
        if existing is not None:
            self._after_append(chain, existing.seq)
            return existing
        for attempt in range(self.max_attempts):
            head = self.store.head(chain)
            seq, prev = (1, GENESIS) if head is None else (head[0] + 1, head[1])
            event = AuditEvent.create(
                id=id, chain=chain, seq=seq, ts=ts_text, type=type, actor=actor,
                subject=subject, data=payload, prevHash=prev,
            )  # fmt: skip
            try:
                stored = self.store.append(event)
            except HeadMoved:
                self._sleep(attempt)
                continue
            self._after_append(chain, stored.seq)
            return stored
        raise AppendContention(f"chain {chain!r}: head kept moving for {self.max_attempts} attempts")

    def _sleep(self, attempt: int) -> None:
        if self._backoff > 0:
            time.sleep(random.uniform(0, min(self._max_backoff, self._backoff * (2 ** min(attempt, 16)))))

    def _after_append(self, chain: str, seq: int) -> None:
        latest = self.store.latest_checkpoint(chain)
        uncovered = seq - (latest.seq if latest is not None else 0)
        if uncovered <= 0:
            return
        if uncovered >= self.policy.every_n:
            self.checkpoint_now(chain)
        elif math.isfinite(self.policy.every_seconds):
            self.maybe_checkpoint(chain, latest=latest)

    # -- checkpoints -------------------------------------------------------------------------

    def checkpoint_due(self, chain: str, *, latest: CheckpointRecord | None = None) -> bool:
        """Does the policy call for a checkpoint now?"""
        head = self.store.head(chain)
        if head is None:
            return False
        if latest is None:
            latest = self.store.latest_checkpoint(chain)
        covered = latest.seq if latest is not None else 0
        uncovered = head[0] - covered
        if uncovered <= 0:
            return False
        if uncovered >= self.policy.every_n:
            return True
        since = self._since(chain, latest)
        if since is None:
            return False
        elapsed = (self.clock() - since).total_seconds()
        return self.policy.due(uncovered=uncovered, seconds_since_last=elapsed)

    def _since(self, chain: str, latest: CheckpointRecord | None) -> datetime | None:
        """When the policy's clock started: the latest checkpoint's ts, else the first event's."""
        key = (chain, latest.seq if latest is not None else 0)
        cached = self._since_cache.get(key)
        if cached is not None:
            return cached
        if latest is not None:
            since = parse_rfc3339(str(latest.checkpoint["ts"]))
        else:
            first = next(iter(self.store.events(chain, 1, 1)), None)
            if first is None:
                return None
            since = parse_rfc3339(first.ts)
        if len(self._since_cache) > 1024:
            self._since_cache.clear()
        self._since_cache[key] = since
        return since

    def maybe_checkpoint(
        self, chain: str, *, latest: CheckpointRecord | None = None
    ) -> dict[str, Any] | None:
        """Make a checkpoint if the policy says one is due (also for a scheduled sweeper)."""
        if self.checkpoint_due(chain, latest=latest):
            return self.checkpoint_now(chain)
        return None

    def checkpoint_now(self, chain: str) -> dict[str, Any] | None:
        """Sign a checkpoint over events ``1..head``; ``None`` if the head is already covered."""
        for _attempt in range(self.max_attempts):
            head = self.store.head(chain)
            if head is None:
                return None
            latest = self.store.latest_checkpoint(chain)
            if latest is not None and latest.seq >= head[0]:
                return None
            frontier, last_hash = self._frontier_from(chain, latest)
            for ev in self.store.events(chain, frontier.size + 1, head[0]):
                if ev.seq != frontier.size + 1 or ev.prevHash != last_hash:
                    raise AuditIntegrityError(
                        f"chain {chain!r}: event seq {ev.seq} does not follow seq {frontier.size} "
                        f"(expected seq {frontier.size + 1} with prevHash {last_hash})"
                    )
                frontier.append(bytes.fromhex(ev.hash))
                last_hash = ev.hash
            if frontier.size != head[0] or last_hash != head[1]:
                raise AuditIntegrityError(
                    f"chain {chain!r}: events end at {frontier.size}, head is {head[0]}"
                )
            ckpt = build_checkpoint(
                chain=chain,
                seq=head[0],
                ts=to_rfc3339(self.clock()),
                head_hash=head[1],
                merkle_root=frontier.root().hex(),
                prev_checkpoint_hash=checkpoint_hash(latest.checkpoint)
                if latest
                else GENESIS_CHECKPOINT_HASH,
                signer=self.signer,
            )
            note = sign_checkpoint_note(ckpt, self.note_origin(chain), self.signer)
            try:
                self.store.put_checkpoint(
                    CheckpointRecord(ckpt, tuple(frontier.to_hex()), note), latest.seq if latest else None
                )
            except CheckpointConflict:
                continue  # another writer checkpointed meanwhile: re-read and see what is left
            return ckpt
        raise AppendContention(
            f"chain {chain!r}: checkpoints kept conflicting for {self.max_attempts} attempts"
        )

    def note_origin(self, chain: str) -> str:
        """The origin line (and key name) of ``chain``'s checkpoint notes."""
        return note_origin(chain, self.note_origin_prefix)

    def _frontier_from(self, chain: str, latest: CheckpointRecord | None) -> tuple[MerkleFrontier, str]:
        if latest is None:
            return MerkleFrontier(), GENESIS
        try:
            frontier = MerkleFrontier.from_hex(latest.seq, latest.frontier)
        except ValueError:  # no usable frontier stored: rebuild it from the events
            frontier = MerkleFrontier()
            for ev in self.store.events(chain, 1, latest.seq):
                frontier.append(bytes.fromhex(ev.hash))
            if frontier.size != latest.seq:
                raise AuditIntegrityError(
                    f"chain {chain!r}: checkpoint {latest.seq} covers missing events"
                ) from None
        if frontier.root().hex() != latest.checkpoint["merkleRoot"]:
            raise AuditIntegrityError(
                f"chain {chain!r}: stored frontier does not match checkpoint {latest.seq}"
            )
        return frontier, str(latest.checkpoint["headHash"])

    # -- export and proofs -------------------------------------------------------------------

    def export(self, chain: str) -> tuple[list[str], list[str]]:
        """The chain as JSON Lines (RFC 8785 canonical, no trailing newline): events, checkpoints.

        Each event's ``signature`` is derived here: ``{"checkpoint": <seq of the first
        checkpoint with seq >= the event's>, "keyId": <its keyId>}``, or ``null`` if no
        checkpoint covers the event yet.
        """
        checkpoint_lines, events = self.iter_export(chain)
        return list(events), checkpoint_lines

    def iter_export(self, chain: str) -> tuple[list[str], Iterator[str]]:
        """Like :meth:`export`, with the event lines streamed (for long chains)."""
        ckpts = list(self.store.checkpoints(chain))
        checkpoint_lines = [canonical_bytes(c).decode("utf-8") for c in ckpts]

        def lines() -> Iterator[str]:
            ci, n = 0, len(ckpts)
            ref: dict[str, Any] | None = None
            for ev in self.store.events(chain):
                while ci < n and ckpts[ci]["seq"] < ev.seq:
                    ci += 1
                    ref = None
                if ref is None and ci < n:
                    ref = {"checkpoint": ckpts[ci]["seq"], "keyId": ckpts[ci]["keyId"]}
                wire = ev.to_wire()
                wire["signature"] = ref if ci < n else None
                yield canonical_bytes(wire).decode("utf-8")

        return checkpoint_lines, lines()

    def write_export(self, chain: str, directory: str | Path) -> tuple[Path, Path]:
        """Write ``<chain>.events.jsonl`` and ``<chain>.checkpoints.jsonl`` into ``directory``."""
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        checkpoints, events = self.iter_export(chain)
        events_path = out / f"{chain}.events.jsonl"
        checkpoints_path = out / f"{chain}.checkpoints.jsonl"
        with events_path.open("w", encoding="utf-8", newline="\n") as f:
            for line in events:
                f.write(line)
                f.write("\n")
        checkpoints_path.write_text("".join(line + "\n" for line in checkpoints), encoding="utf-8")
        return events_path, checkpoints_path

    def _leaves(self, chain: str, size: int) -> list[bytes]:
        leaves = [bytes.fromhex(ev.hash) for ev in self.store.events(chain, 1, size)]
        if len(leaves) != size:
            raise AuditIntegrityError(f"chain {chain!r}: {len(leaves)} events stored, {size} expected")
        return leaves

    def inclusion_proof(self, chain: str, seq: int, checkpoint_seq: int | None = None) -> InclusionProof:
        """Prove event ``seq`` is in the tree of a checkpoint (default: the latest one)."""
        if checkpoint_seq is None:
            latest = self.store.latest_checkpoint(chain)
            ckpt = latest.checkpoint if latest is not None else None
        else:
            ckpt = self.store.get_checkpoint(chain, checkpoint_seq)
        if ckpt is None:
            raise LookupError(
                f"chain {chain!r}: no checkpoint {checkpoint_seq if checkpoint_seq else '(none yet)'}"
            )
        size = int(ckpt["seq"])
        if not 1 <= seq <= size:
            raise LookupError(f"chain {chain!r}: event {seq} is not covered by checkpoint {size}")
        leaves = self._leaves(chain, size)
        if merkle_root(leaves).hex() != ckpt["merkleRoot"]:
            raise AuditIntegrityError(f"chain {chain!r}: events do not match checkpoint {size}")
        path = inclusion_proof(leaves, seq - 1, size)
        return InclusionProof(
            chain, seq, leaves[seq - 1].hex(), size, tuple(p.hex() for p in path), dict(ckpt)
        )

    def consistency_proof(self, chain: str, old_ckpt_seq: int, new_ckpt_seq: int) -> ConsistencyProof:
        """Prove that checkpoint ``old_ckpt_seq``'s tree is a prefix of ``new_ckpt_seq``'s."""
        if old_ckpt_seq > new_ckpt_seq:
            raise ValueError("the old checkpoint must not be newer than the new one")
        old = self.store.get_checkpoint(chain, old_ckpt_seq)
        new = self.store.get_checkpoint(chain, new_ckpt_seq)
        if old is None or new is None:
            missing = old_ckpt_seq if old is None else new_ckpt_seq
            raise LookupError(f"chain {chain!r}: no checkpoint at seq {missing}")
        leaves = self._leaves(chain, new_ckpt_seq)
        if merkle_root(leaves).hex() != new["merkleRoot"]:
            raise AuditIntegrityError(f"chain {chain!r}: events do not match checkpoint {new_ckpt_seq}")
        path = consistency_proof(leaves, old_ckpt_seq, new_ckpt_seq)
        return ConsistencyProof(chain, old_ckpt_seq, new_ckpt_seq, tuple(p.hex() for p in path), old, new)
