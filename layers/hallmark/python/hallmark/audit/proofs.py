"""Offline checks of the proof documents the auditor API returns (``hallmark audit prove``).

Two documents (wire format in ``docs/wire-format.md``):

- an *inclusion proof* ``{"chain", "seq", "leafIndex", "eventHash", "treeSize", "path",
  "checkpoint"}``: event ``seq`` (leaf ``seq - 1``) is in the tree the checkpoint signs;
- a *consistency proof* ``{"chain", "oldSize", "newSize", "path", "oldCheckpoint",
  "newCheckpoint"}``: the old checkpoint's tree is a prefix of the new one's (RFC 9162 2.1.4).

Every check needs only the audit public key(s). A verifier given several keys accepts a
checkpoint that any one of them verifies and reports which. Forks are reported as such:
two validly signed checkpoints of one chain and size with different roots, or a later
signed root that does not extend an earlier one.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hallmark.audit.checkpoints import verify_checkpoint_signature
from hallmark.audit.merkle import verify_consistency, verify_inclusion

__all__ = [
    "ProofCheck",
    "check_checkpoint_pair",
    "check_consistency_document",
    "check_inclusion_document",
    "check_proof_document",
    "signing_key",
]

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
#: name -> PEM of every key the verifier trusts
Keys = Mapping[str, bytes]


@dataclass(frozen=True)
class ProofCheck:
    """The outcome of one offline check: ``ok``, a reason when not, and the keys that verified."""

    ok: bool
    kind: str
    reason: str | None = None
    fork: bool = False
    verified_by: dict[int, str] = field(default_factory=dict)  # checkpoint seq -> key name

    def summary(self) -> str:
        if self.ok:
            keys = ", ".join(f"checkpoint {s}: {k}" for s, k in sorted(self.verified_by.items()))
            return f"{self.kind} proof verified ({keys})"
        return f"{'FORK: ' if self.fork else ''}{self.reason}"


def signing_key(checkpoint: Mapping[str, Any], keys: Keys) -> str | None:
    """The name of the first key (in the given order) whose signature on ``checkpoint`` verifies."""
    for name, pem in keys.items():
        try:
            if verify_checkpoint_signature(checkpoint, pem):
                return name
        except ValueError:  # an unusable key: try the next one
            continue
    return None


def _hexes(values: Any, what: str) -> list[bytes]:
    if not isinstance(values, list) or not all(isinstance(v, str) and _HEX64.match(v) for v in values):
        raise ValueError(f"{what} must be a list of 64-character lowercase hex strings")
    return [bytes.fromhex(v) for v in values]


def _root(ckpt: Mapping[str, Any], what: str) -> bytes:
    root = ckpt.get("merkleRoot")
    if not isinstance(root, str) or not _HEX64.match(root):
        raise ValueError(f"{what} has no merkleRoot of 64 lowercase hex")
    return bytes.fromhex(root)


def _size(value: Any, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{what} must be a non-negative integer")
    return value


def _memo_key(ckpt: Mapping[str, Any]) -> Any:
    """The checkpoint's exact content as a key: its sorted (name, type, value) items when it is
    flat (str keys, str/int values: a checkpoint), else its sorted JSON."""
    if all(type(k) is str and type(v) in (str, int) for k, v in ckpt.items()):
        return tuple(sorted((k, type(v) is int, v) for k, v in ckpt.items()))
    return json.dumps(ckpt, sort_keys=True)


def _signed(ckpt: Any, what: str, keys: Keys, verified: dict[int, str],
            seen: dict[Any, str] | None = None) -> str | None:
    """None when ``ckpt`` is a checkpoint signed by one of ``keys``; else the reason. ``seen``
    remembers checkpoints (by their exact content, :func:`_memo_key`) already verified with these ``keys``."""
    if not isinstance(ckpt, Mapping):
        return f"{what} is missing"
    memo = _memo_key(ckpt) if seen is not None else ""
    name = seen.get(memo) if seen is not None else None
    if name is None:
        name = signing_key(ckpt, keys)
        if name is not None and seen is not None:
            seen[memo] = name
    if name is None:
        return f"{what} (seq {ckpt.get('seq')}): signature does not verify with {_key_list(keys)}"
    verified[int(ckpt["seq"])] = name
    return None


def _key_list(keys: Keys) -> str:
    return "the key " + next(iter(keys)) if len(keys) == 1 else f"any of the keys {', '.join(keys)}"


def check_inclusion_document(doc: Mapping[str, Any], keys: Keys, *,
                             seen: dict[Any, str] | None = None) -> ProofCheck:
    """Event ``seq`` with ``eventHash`` is leaf ``seq - 1`` of the tree its signed checkpoint names.

    ``seen`` (a dict the caller keeps, empty at first, for one set of ``keys``) lets many proofs
    against the same checkpoint verify its signature once."""
    kind, verified = "inclusion", dict[int, str]()
    try:
        ckpt = doc.get("checkpoint")
        bad = _signed(ckpt, "checkpoint", keys, verified, seen)
        if bad:
            return ProofCheck(False, kind, bad)
        assert isinstance(ckpt, Mapping)
        seq, size = _size(doc.get("seq"), "seq"), _size(doc.get("treeSize"), "treeSize")
        if doc.get("chain") != ckpt.get("chain"):
            return ProofCheck(False, kind, f"proof is for chain {doc.get('chain')!r}, checkpoint for {ckpt.get('chain')!r}")
        if size != ckpt.get("seq"):
            return ProofCheck(False, kind, f"treeSize {size} differs from the checkpoint's seq {ckpt.get('seq')}")
        if "leafIndex" in doc and doc["leafIndex"] != seq - 1:
            return ProofCheck(False, kind, f"leafIndex {doc['leafIndex']} is not seq - 1 = {seq - 1}")
        if not 1 <= seq <= size:
            return ProofCheck(False, kind, f"event {seq} is outside the checkpoint's tree of size {size}")
        leaf = doc.get("eventHash")
        if not isinstance(leaf, str) or not _HEX64.match(leaf):
            return ProofCheck(False, kind, "eventHash must be 64 lowercase hex")
        path = _hexes(doc.get("path"), "path")
        if not verify_inclusion(bytes.fromhex(leaf), seq - 1, size, path, _root(ckpt, "checkpoint")):
            return ProofCheck(False, kind, f"audit path does not lead from event {seq} to the root of checkpoint {size}")
    except ValueError as exc:
        return ProofCheck(False, kind, str(exc))
    return ProofCheck(True, kind, verified_by=verified)


def check_checkpoint_pair(
    old: Mapping[str, Any], new: Mapping[str, Any], path: Sequence[bytes], keys: Keys
) -> ProofCheck:
    """Both checkpoints signed; the old tree a prefix of the new (``path`` the RFC 9162 proof)."""
    kind, verified = "consistency", dict[int, str]()
    for what, ck in (("old checkpoint", old), ("new checkpoint", new)):
        bad = _signed(ck, what, keys, verified)
        if bad:
            return ProofCheck(False, kind, bad)
    if old.get("chain") != new.get("chain"):
        return ProofCheck(False, kind, f"checkpoints of different chains: {old.get('chain')!r}, {new.get('chain')!r}")
    try:
        m, n = _size(old.get("seq"), "old seq"), _size(new.get("seq"), "new seq")
        r1, r2 = _root(old, "old checkpoint"), _root(new, "new checkpoint")
    except ValueError as exc:
        return ProofCheck(False, kind, str(exc))
    if m > n:
        return ProofCheck(False, kind, f"old checkpoint {m} is larger than new checkpoint {n}")
    if m == n:
        if r1 != r2:
            return ProofCheck(False, kind, f"two signed checkpoints of chain {old.get('chain')!r} at size {m} "
                              f"have different roots ({r1.hex()[:16]}..., {r2.hex()[:16]}...)", fork=True)
        if old.get("headHash") != new.get("headHash"):
            return ProofCheck(False, kind, f"two signed checkpoints at size {m} have different head hashes", fork=True)
        if path:
            return ProofCheck(False, kind, "a proof between equal sizes must be empty")
        return ProofCheck(True, kind, verified_by=verified)
    if not verify_consistency(m, n, r1, r2, path):
        return ProofCheck(False, kind, f"the root of checkpoint {n} does not extend the root of checkpoint {m} "
                          "(consistency proof fails)", fork=True)
    return ProofCheck(True, kind, verified_by=verified)


def check_consistency_document(doc: Mapping[str, Any], keys: Keys) -> ProofCheck:
    old, new = doc.get("oldCheckpoint"), doc.get("newCheckpoint")
    if not isinstance(old, Mapping) or not isinstance(new, Mapping):
        return ProofCheck(False, "consistency", "oldCheckpoint and newCheckpoint must be objects")
    if doc.get("oldSize") != old.get("seq") or doc.get("newSize") != new.get("seq"):
        return ProofCheck(False, "consistency", "oldSize/newSize differ from the checkpoints' seq")
    if doc.get("chain") not in (None, old.get("chain")):
        return ProofCheck(False, "consistency", f"proof is for chain {doc.get('chain')!r}, checkpoints for {old.get('chain')!r}")
    try:
        path = _hexes(doc.get("path"), "path")
    except ValueError as exc:
        return ProofCheck(False, "consistency", str(exc))
    return check_checkpoint_pair(old, new, path, keys)


def check_proof_document(doc: Any, keys: Keys, *, known: Sequence[Mapping[str, Any]] = ()) -> ProofCheck:
    """Check an inclusion or consistency document, and that it agrees with ``known`` checkpoints.

    ``known`` are checkpoints the verifier saw before (another auditor's, a witness's): one of
    the same chain and size as a checkpoint in the document must have the same root, or the
    log has forked.
    """
    if isinstance(doc, Mapping) and isinstance(doc.get("proof"), Mapping):
        doc = doc["proof"]  # the API's {"chain", "proof": {...}} envelope
    if not isinstance(doc, Mapping):
        return ProofCheck(False, "unknown", "not a proof document (a JSON object)")
    if "oldCheckpoint" in doc:
        result = check_consistency_document(doc, keys)
        ckpts = [doc["oldCheckpoint"], doc["newCheckpoint"]]
    elif "checkpoint" in doc:
        result = check_inclusion_document(doc, keys)
        ckpts = [doc["checkpoint"]]
    else:
        return ProofCheck(False, "unknown", "neither an inclusion proof (checkpoint) nor a consistency proof "
                          "(oldCheckpoint, newCheckpoint)")
    if not result.ok:
        return result
    for other in known:
        for mine in ckpts:
            if other.get("chain") != mine.get("chain") or other.get("seq") != mine.get("seq"):
                continue
            pair = check_checkpoint_pair(other, mine, [], keys)
            if not pair.ok:
                return ProofCheck(False, result.kind, f"against a known checkpoint: {pair.reason}", fork=pair.fork)
    return result
