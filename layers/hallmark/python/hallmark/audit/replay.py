"""Replay: verify an exported audit log with nothing but the checkpoint public key.

:func:`verify_export` streams the event lines once. For every event it recomputes the hash,
checks ``seq`` continuity from 1, the ``prevHash`` link and the ``signature`` reference
(which must name exactly the first checkpoint covering the event, with that checkpoint's
``keyId``, or be ``null`` when none does), and feeds the event hash to an RFC 6962 frontier.
When the stream reaches a checkpoint's ``seq`` it checks the checkpoint's signature with
the given key, its ``keyId``, its ``prevCheckpointHash`` link, its ``headHash`` and its
``merkleRoot`` (the frontier's head over ``1..seq``). At the end every checkpoint must have
been reached (no tail cut). The first failure stops the replay and is reported with the
``seq`` at which it was detected and the reason.

Speed. The hash input is ``RFC8785(event without hash and signature)``. Exports are
canonical JSON (keys in the order actor, chain, data, hash, id, prevHash, seq, signature,
subject, ts, type), and removing members from a canonical object leaves the canonical form
of the rest; so for a canonical line the hash input is the line itself with the ``"hash"``
and ``"signature"`` members cut out, and no JSON needs to be decoded or re-encoded.

The fast path knows what the next event of the chain must hold: ``prevHash`` (the previous
hash), ``seq`` (the next number) and ``signature`` (the covering checkpoint's reference).
It finds ``","prevHash":"P","seq":N,"signature":S,"subject":"`` with one search, requires
exactly 9 quote characters after it (``U","ts":"T","type":"Y"}``: only the top-level tail
has so few), ``,"id":"`` before the id's opening quote and ``,"hash":"<64>"`` right before
that, hashes the bytes around the two members, and accepts the line if the digest is the
declared hash. Soundness: let ``B`` be the bytes hashed. The event passes the later checks
(link, checkpoint ``headHash`` and ``merkleRoot``) only if ``sha256(B)`` is the genuine
hash, i.e. ``B`` is the genuine canonical event ``G``. The quote count pins the cut before
``,"subject"`` to ``G``'s top level, the quote search pins the cut before ``,"id"``, so the
line is ``G`` with its genuine ``hash`` and the expected ``signature`` inserted at their
canonical places: byte for byte the genuine export line. Nothing is accepted that a JSON
parser would read differently. Every line the fast path does not accept (another chain, a
different shape, escaped quotes, a non-canonical but valid line, a mismatch) goes to the
slow path: strict ``json.loads`` (duplicate keys rejected), field checks and ``rfc8785``,
which also produces the diagnosis. Events past the last checkpoint (authenticated by
nothing yet) always take the slow path. Merkle roots come from an RFC 6962 frontier fed as the
events stream by (two hashes per event on average, O(log n) memory).

Native kernel. Three SHA-256 calls per event cost ~440 ns each of hashlib call overhead, and
the fast path's bytecode ~3 us more, so pure Python replays at ~0.11-0.16x the speed of a
bare ``hashlib.sha256`` loop over the same canonical bytes. ``native/_replay_kernel.c`` (the
optional extension ``hallmark.audit._replay_kernel``, built by ``setup.py`` on ``pip install``,
hashing with OpenSSL's libcrypto) runs the same fast path on a whole events file held in
memory: given the chain state (last hash, next seq, the ``signature`` member the next event
must carry, the next checkpoint's seq, the frontier) it accepts consecutive lines exactly as
the Python fast path would, byte for byte, and returns after the event of the next
checkpoint (Python verifies the checkpoint, then calls it again), at the first line it does
not accept (which goes straight to the slow path, as a line the Python fast path rejected
would) or at the end. It only ever accepts; every diagnosis is still Python's, so reports are
identical on both paths (``tests/unit/test_replay_kernel.py`` checks this differentially).
:func:`verify_export_files` (``hallmark audit verify``) maps the events file and uses it
through :func:`verify_export_buffer` when it is importable and ``HALLMARK_REPLAY_NATIVE`` is
not ``0`` (:func:`native_replay`); otherwise, and for :func:`verify_export` over lines, the
pure-Python path runs (the Lambda layer ships pure Python). ``benchmarks/audit_replay.py``,
1,000,000 events (520 MB) on a shared 2-core AMD EPYC (SHA-NI, OpenSSL 3.0), best of 3 CPU
times, three runs: native 1.08-1.20 M events/s, 0.74-1.0x raw ``hashlib.sha256`` over the
same canonical bytes (1.17-1.47 M/s, as the load on the machine varied); pure Python
0.14-0.16 M events/s, 0.11-0.13x raw.
"""

from __future__ import annotations

import binascii
import functools
import hashlib
import json
import mmap
import os
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from hallmark.audit.checkpoints import (
    CHECKPOINT_FIELDS,
    GENESIS_CHECKPOINT_HASH,
    LEGACY_CHECKPOINT_FIELDS,
    checkpoint_hash,
    verify_checkpoint_signature,
)
from hallmark.audit.events import EVENT_FIELDS, GENESIS, is_hex64
from hallmark.audit.merkle import frontier_append, root_from_frontier
from hallmark.canonical import canonical_bytes, is_rfc3339_utc
from hallmark.signing import load_public_key, public_key_fingerprint

try:  # the fast path in C (native/_replay_kernel.c); optional, the Lambda layer ships without it
    from hallmark.audit import _replay_kernel
except ImportError:
    _replay_kernel = None  # type: ignore[assignment]

__all__ = [
    "ChainSummary",
    "CheckpointError",
    "CheckpointFileError",
    "EventFormatError",
    "HashError",
    "LinkError",
    "ReplayError",
    "ReplayReport",
    "SequenceError",
    "SignatureRefError",
    "TruncatedError",
    "native_replay",
    "verify_export",
    "verify_export_buffer",
    "verify_export_files",
]

_GENESIS_HEX: Final = GENESIS.encode()
_EVENT_KEYS: Final = frozenset(EVENT_FIELDS)
_CHECKPOINT_KEYS: Final = frozenset(CHECKPOINT_FIELDS)
_LEGACY_CHECKPOINT_KEYS: Final = frozenset(LEGACY_CHECKPOINT_FIELDS)
_NULL: Final = b"null"
_sha256: Final = hashlib.sha256
_hexlify: Final = binascii.hexlify
_MAX_SAFE_INT: Final = 2**53 - 1


@dataclass(frozen=True)
class ChainSummary:
    """What was verified of one chain."""

    events: int
    checkpoints: int
    head_seq: int
    head_hash: str | None
    last_checkpoint_seq: int | None


@dataclass(frozen=True)
class ReplayReport:
    """The outcome of a replay; ``first_bad_seq``/``reason``/``chain`` name the first failure."""

    ok: bool
    events: int
    checkpoints: int
    first_bad_seq: int | None = None
    reason: str | None = None
    chains: dict[str, ChainSummary] = field(default_factory=dict)
    chain: str | None = None


class ReplayError(Exception):
    """A replay failure: ``seq`` is where it was detected (None when nothing names one), ``chain``
    the chain it is on and ``reason`` the report's text. The subclasses say what failed."""

    def __init__(self, seq: int | None, reason: str, chain: str | None = None):
        super().__init__(reason)
        self.seq = seq
        self.reason = reason
        self.chain = chain


class CheckpointFileError(ReplayError):
    """A checkpoints line is not a well-formed checkpoint, or the checkpoints are out of order."""


class EventFormatError(ReplayError):
    """An events line is not a well-formed event."""


class SequenceError(ReplayError):
    """An event is not at the next ``seq``: a gap, a reorder, a fork or a duplicate."""


class LinkError(ReplayError):
    """An event's ``prevHash`` is not the previous event's hash."""


class HashError(ReplayError):
    """An event's ``hash`` is not the hash of its content."""


class SignatureRefError(ReplayError):
    """An event's ``signature`` does not name the first checkpoint covering it."""


class CheckpointError(ReplayError):
    """A checkpoint does not verify: key, signature, ``keyId``, link, ``headHash`` or ``merkleRoot``."""


class TruncatedError(ReplayError):
    """The log ends before a checkpoint's ``seq`` (tail cut)."""


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise ValueError(f"duplicate key {k!r}")
        out[k] = v
    return out


def _strict_loads(line: bytes | str) -> Any:
    return json.loads(line, object_pairs_hook=_no_duplicates)


def _is_int(v: object) -> bool:
    return type(v) is int


class _Checkpoint:
    __slots__ = ("obj", "ref", "seq")

    def __init__(self, obj: dict[str, Any]):
        self.obj = obj
        self.seq: int = obj["seq"]
        self.ref = canonical_bytes({"checkpoint": obj["seq"], "keyId": obj["keyId"]})


class _Chain:
    __slots__ = (
        "checkpoints", "ci", "expected", "key_id", "last_hash", "last_prev", "name",
        "next_ckpt", "nodes", "prev_ckpt", "ref", "size", "verified_ckpts",
    )  # fmt: skip

    def __init__(self, name: str, checkpoints: list[_Checkpoint]):
        self.name = name
        self.checkpoints = checkpoints
        self.ci = 0
        self.expected = 1
        self.key_id: str | None = checkpoints[0].obj["keyId"] if checkpoints else None
        self.last_hash = _GENESIS_HEX
        self.last_prev: bytes | None = None
        self.nodes: list[bytes] = []
        self.size = 0
        self.prev_ckpt: dict[str, Any] | None = None
        self.verified_ckpts = 0
        self._set_next()

    def _set_next(self) -> None:
        if self.ci < len(self.checkpoints):
            nxt = self.checkpoints[self.ci]
            self.next_ckpt, self.ref = nxt.seq, nxt.ref
        else:
            self.next_ckpt, self.ref = -1, _NULL

    def advance(self) -> None:
        self.prev_ckpt = self.checkpoints[self.ci].obj
        self.ci += 1
        self.verified_ckpts += 1
        self._set_next()

    def summary(self) -> ChainSummary:
        return ChainSummary(
            events=self.size,
            checkpoints=self.verified_ckpts,
            head_seq=self.expected - 1,
            head_hash=None if self.expected == 1 else self.last_hash.decode(),
            last_checkpoint_seq=self.prev_ckpt["seq"] if self.prev_ckpt else None,
        )


def _parse_checkpoints(lines: Iterable[str | bytes]) -> dict[str, list[_Checkpoint]]:
    """The checkpoints file: well-formed checkpoints, per chain in increasing ``seq``."""
    by_chain: dict[str, list[_Checkpoint]] = {}
    for lineno, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        chain, seq, obj = _checkpoint_line(lineno, raw)
        _check_checkpoint_fields(obj, seq, chain)
        lst = by_chain.setdefault(chain, [])
        if lst and seq <= lst[-1].seq:
            raise CheckpointFileError(
                seq,
                f"checkpoint {seq} follows checkpoint {lst[-1].seq}: checkpoints out of order or duplicated",
                chain,
            )
        lst.append(_Checkpoint(obj))
    return by_chain


def _checkpoint_line(lineno: int, raw: str | bytes) -> tuple[str, int, dict[str, Any]]:
    """``(chain, seq, object)`` of a checkpoints line: a JSON object with the checkpoint fields."""
    try:
        obj = _strict_loads(raw)
    except ValueError as exc:
        raise CheckpointFileError(None, f"checkpoints line {lineno}: not valid JSON ({exc})") from None
    if not isinstance(obj, dict):
        raise CheckpointFileError(None, f"checkpoints line {lineno}: not a JSON object")
    seq_raw = obj.get("seq")
    seq: int | None = seq_raw if type(seq_raw) is int else None
    chain = obj.get("chain") if isinstance(obj.get("chain"), str) else None
    keys = set(obj)
    if keys != _CHECKPOINT_KEYS and keys != _LEGACY_CHECKPOINT_KEYS:
        extra, missing = sorted(keys - _CHECKPOINT_KEYS), sorted(_CHECKPOINT_KEYS - keys)
        raise CheckpointFileError(
            seq, f"checkpoints line {lineno}: fields differ (extra {extra}, missing {missing})", chain
        )
    if chain is None or seq is None or seq < 1:
        raise CheckpointFileError(
            seq, f"checkpoints line {lineno}: chain must be a string and seq an integer >= 1", chain
        )
    if seq > _MAX_SAFE_INT:  # RFC 8785 cannot carry it, so nothing could have signed it
        raise CheckpointFileError(
            None,
            f"checkpoints line {lineno}: seq {seq} exceeds 2**53 - 1 (not representable in JSON)",
            chain,
        )
    return chain, seq, obj


def _check_checkpoint_fields(obj: dict[str, Any], seq: int, chain: str) -> None:
    """A checkpoint's fields have their types: hashes, ``keyId``/``signature``, fingerprint, ``ts``."""
    for name in ("headHash", "merkleRoot", "prevCheckpointHash"):
        if not is_hex64(obj[name]):
            raise CheckpointFileError(
                seq, f"checkpoint {seq}: {name} is not 64 lowercase hex characters", chain
            )
    if not isinstance(obj["keyId"], str) or not obj["keyId"] or not isinstance(obj["signature"], str):
        raise CheckpointFileError(
            seq, f"checkpoint {seq}: keyId and signature must be non-empty strings", chain
        )
    if "keyFingerprint" in obj and not is_hex64(obj["keyFingerprint"]):
        raise CheckpointFileError(
            seq, f"checkpoint {seq}: keyFingerprint is not 64 lowercase hex characters", chain
        )
    if not isinstance(obj["ts"], str) or not is_rfc3339_utc(obj["ts"]):
        raise CheckpointFileError(seq, f"checkpoint {seq}: ts is not RFC 3339 UTC", chain)


def _slow_event(line: bytes) -> tuple[str, int, bytes, bytes, bytes, bytes]:
    """Parse and validate one event line the careful way.

    Returns ``(chain, seq, prevHash, hash, signature-ref canonical bytes, computed digest)``;
    raises :class:`EventFormatError` (with ``seq`` None) when the line is not an event.
    """
    try:
        obj = _strict_loads(line)
    except ValueError as exc:
        raise EventFormatError(None, f"not valid JSON ({exc})") from None
    if not isinstance(obj, dict):
        raise EventFormatError(None, "not a JSON object")
    keys = set(obj)
    if keys != _EVENT_KEYS:
        extra, missing = sorted(keys - _EVENT_KEYS), sorted(_EVENT_KEYS - keys)
        raise EventFormatError(
            None, f"fields differ from the event format (extra {extra}, missing {missing})"
        )
    chain, seq = obj["chain"], obj["seq"]
    if not isinstance(chain, str) or not _is_int(seq) or seq < 1:
        raise EventFormatError(None, "chain must be a string and seq an integer >= 1")
    for name in ("id", "ts", "type", "actor", "subject"):
        if not isinstance(obj[name], str):
            raise EventFormatError(seq, f"{name} must be a string", chain)
    if not isinstance(obj["data"], dict):
        raise EventFormatError(seq, "data must be an object", chain)
    for name in ("prevHash", "hash"):
        if not is_hex64(obj[name]):
            raise EventFormatError(seq, f"{name} is not 64 lowercase hex characters", chain)
    sig = obj["signature"]
    if sig is not None and not (
        isinstance(sig, dict)
        and set(sig) == {"checkpoint", "keyId"}
        and _is_int(sig["checkpoint"])
        and isinstance(sig["keyId"], str)
    ):
        raise EventFormatError(
            seq, 'signature must be null or {"checkpoint": <int>, "keyId": <string>}', chain
        )
    try:
        body = canonical_bytes({k: v for k, v in obj.items() if k != "hash" and k != "signature"})
    except ValueError as exc:
        raise EventFormatError(seq, f"event cannot be canonicalized (RFC 8785): {exc}", chain) from None
    return (
        chain,
        seq,
        obj["prevHash"].encode(),
        obj["hash"].encode(),
        canonical_bytes(sig),
        hashlib.sha256(body).digest(),
    )


def _peek(line: bytes | str) -> tuple[str, int] | None:
    """``(chain, seq)`` of a line, or None; for the failure path only."""
    try:
        obj = json.loads(line)
    except ValueError:
        return None
    if isinstance(obj, dict) and isinstance(obj.get("chain"), str) and _is_int(obj.get("seq")):
        return obj["chain"], obj["seq"]
    return None


def _describe_ref(st: _Chain, seq: int, got: bytes) -> str:
    try:
        ref = json.loads(got)
    except ValueError:
        ref = None
    expected = st.checkpoints[st.ci] if st.ci < len(st.checkpoints) else None
    names = {c.seq for c in st.checkpoints}
    if ref is None:
        assert expected is not None
        return f"event {seq} has signature null although checkpoint {expected.seq} covers it"
    if expected is None:
        if ref.get("checkpoint") not in names:
            return (
                f"event {seq}: signature names checkpoint {ref.get('checkpoint')}, which is not in the "
                "checkpoint file (checkpoints removed, or the tail was cut)"
            )
        return f"event {seq}: signature names checkpoint {ref.get('checkpoint')}, but no checkpoint covers it"
    if ref.get("checkpoint") != expected.seq:
        where = (
            "is not in the checkpoint file"
            if ref.get("checkpoint") not in names
            else "is not the first to cover it"
        )
        return f"event {seq}: signature names checkpoint {ref.get('checkpoint')}, which {where} (expected {expected.seq})"
    return f"event {seq}: signature keyId {ref.get('keyId')!r} differs from checkpoint {expected.seq}'s keyId"


def _signature_reason(seq: int) -> str:
    return (
        f"checkpoint {seq}: signature does not verify with the given public key "
        "(signed by another key, or the checkpoint was altered)"
    )


@functools.lru_cache(maxsize=8)
def _fingerprint(pem: bytes) -> str:
    return public_key_fingerprint(pem)


def _check_checkpoint(st: _Chain, seq: int, head_hash: bytes, pem: bytes) -> None:
    """The checkpoint at ``seq``, just reached with ``head_hash``, verifies."""
    ck = st.checkpoints[st.ci].obj
    _check_key(st, ck, seq, pem)
    _check_checkpoint_link(st, ck, seq)
    _check_head(st, ck, seq, head_hash)
    _check_root(st, ck, seq)


def _check_key(st: _Chain, ck: dict[str, Any], seq: int, pem: bytes) -> None:
    """Signed by the given key (fingerprint, signature) under the chain's ``keyId``."""
    if "keyFingerprint" in ck and ck["keyFingerprint"] != _fingerprint(pem):
        raise CheckpointError(
            seq,
            f"checkpoint {seq}: signed by the key with fingerprint "
            f"{ck['keyFingerprint']}, not the given key ({_fingerprint(pem)})",
            st.name,
        )
    if not verify_checkpoint_signature(ck, pem):
        raise CheckpointError(seq, _signature_reason(seq), st.name)
    if ck["keyId"] != st.key_id:
        raise CheckpointError(
            seq, f"checkpoint {seq}: keyId {ck['keyId']!r} differs from the chain's {st.key_id!r}", st.name
        )


def _check_checkpoint_link(st: _Chain, ck: dict[str, Any], seq: int) -> None:
    """``prevCheckpointHash`` is the previous checkpoint's hash (genesis for the first)."""
    expected_prev = checkpoint_hash(st.prev_ckpt) if st.prev_ckpt is not None else GENESIS_CHECKPOINT_HASH
    if ck["prevCheckpointHash"] != expected_prev:
        prev = f"checkpoint {st.prev_ckpt['seq']}" if st.prev_ckpt is not None else "genesis (64 zeros)"
        raise CheckpointError(seq, f"checkpoint {seq}: prevCheckpointHash does not link to {prev}", st.name)


def _check_head(st: _Chain, ck: dict[str, Any], seq: int, head_hash: bytes) -> None:
    """``headHash`` is the hash of event ``seq``."""
    if ck["headHash"] != head_hash.decode():
        raise CheckpointError(seq, f"checkpoint {seq}: headHash is not the hash of event {seq}", st.name)


def _check_root(st: _Chain, ck: dict[str, Any], seq: int) -> None:
    """``merkleRoot`` is the RFC 6962 root over events ``1..seq`` (the chain's frontier)."""
    if ck["merkleRoot"] != root_from_frontier(st.nodes).hex():
        raise CheckpointError(
            seq,
            f"checkpoint {seq}: merkleRoot does not match the events 1..{seq} "
            f"(an event after seq {st.prev_ckpt['seq'] if st.prev_ckpt else 0} was changed, "
            "inserted, removed or reordered, or the root is wrong)",
            st.name,
        )


def _needle_tail(st: _Chain) -> bytes:
    """What the fast path looks for after ``seq``; past the last checkpoint it is not used."""
    if st.next_ckpt < 0:
        return b"\x00"  # an uncovered tail is not authenticated: parse it strictly (slow path)
    return b',"signature":' + st.ref + b',"subject":"'


def _save(
    st: _Chain | None, last_hash: bytes, last_prev: bytes | None, expected: int, nodes: list[bytes], size: int
) -> None:
    """Write the current chain's state (held in the replay loop's locals) back to it."""
    if st is not None:
        st.last_hash, st.last_prev, st.expected, st.nodes, st.size = (
            last_hash,
            last_prev,
            expected,
            nodes,
            size,
        )


def _load(st: _Chain) -> tuple[bytes, bytes | None, int, list[bytes], int, int, bytes]:
    """A chain's state for the replay loop's locals: last hash, last prevHash, next seq, frontier,
    its size, the next checkpoint's seq and the needle tail."""
    return st.last_hash, st.last_prev, st.expected, st.nodes, st.size, st.next_ckpt, _needle_tail(st)


def _pass_checkpoint(
    st: _Chain, last_hash: bytes, last_prev: bytes | None, seq: int, nodes: list[bytes], size: int, pem: bytes
) -> tuple[int, bytes]:
    """Verify the checkpoint at ``seq`` (just reached) and move on: the next checkpoint's seq and
    the needle tail."""
    _save(st, last_hash, last_prev, seq, nodes, size)
    _check_checkpoint(st, seq, last_hash, pem)
    st.advance()
    return st.next_ckpt, _needle_tail(st)


class _BufferLines:
    """The lines of an events file held in memory (or mapped), as iterating the open file
    gives them, with a position the native kernel moves past the lines it accepted."""

    __slots__ = ("buf", "pos")

    def __init__(self, buf: bytes | bytearray | mmap.mmap):
        self.buf = buf
        self.pos = 0

    def __iter__(self) -> _BufferLines:
        return self

    def __next__(self) -> bytes:
        buf, pos = self.buf, self.pos
        if pos >= len(buf):
            raise StopIteration
        nl = buf.find(b"\n", pos)
        self.pos = end = len(buf) if nl < 0 else nl + 1
        return bytes(buf[pos:end])


def native_replay() -> bool:
    """Whether replaying a file or buffer runs the native kernel: it is built and the
    environment variable ``HALLMARK_REPLAY_NATIVE`` is not ``0``."""
    return _replay_kernel is not None and os.environ.get("HALLMARK_REPLAY_NATIVE", "1") != "0"


def _gap_reason(chain: str, expected: int, seq: int, rest: Iterator[bytes | str]) -> str:
    for line in rest:
        peeked = _peek(line)
        if peeked == (chain, expected):
            return (
                f"expected seq {expected}, found seq {seq}: event {expected} appears later in the file "
                "(events reordered)"
            )
    missing = f"event {expected} is" if seq == expected + 1 else f"events {expected}..{seq - 1} are"
    return f"expected seq {expected}, found seq {seq}: {missing} missing (deleted)"


def verify_export(
    event_lines: Iterable[str | bytes],
    checkpoint_lines: Iterable[str | bytes],
    public_key_pem: bytes,
) -> ReplayReport:
    """Verify exported JSON Lines (events, checkpoints) with the checkpoint public key only.

    Lines may be ``str`` or ``bytes``, with or without their newline; blank lines are skipped.
    Events of several chains may be mixed (each chain is checked on its own). The report's
    ``first_bad_seq`` is the seq at which verification failed: the event whose hash, link or
    position is wrong, the checkpoint whose signature/root/link is wrong, or, for a cut tail,
    the first seq a checkpoint covers that the log does not hold.
    """
    return _verify(iter(event_lines), None, checkpoint_lines, public_key_pem)


def verify_export_buffer(
    events: bytes | bytearray | mmap.mmap,
    checkpoint_lines: Iterable[str | bytes],
    public_key_pem: bytes,
) -> ReplayReport:
    """:func:`verify_export` over a whole events file in memory or mapped (lines end at ``\\n``).

    Runs the native kernel when :func:`native_replay` says so, the pure-Python path
    otherwise; the report is the same.
    """
    lines = _BufferLines(events)
    return _verify(lines, lines if native_replay() else None, checkpoint_lines, public_key_pem)


def _verify(
    it: Iterator[str | bytes],
    native: _BufferLines | None,
    checkpoint_lines: Iterable[str | bytes],
    public_key_pem: bytes,
) -> ReplayReport:
    """The replay: the checkpoints, the events stream, then every checkpoint reached.

    ``native``, when given, is ``it`` itself, and its runs of lines the fast path would accept
    are accepted by the native kernel."""
    load_public_key(public_key_pem)  # a bad key is the caller's error, not the log's
    try:
        by_chain = _parse_checkpoints(checkpoint_lines)
    except ReplayError as bad:
        return ReplayReport(False, 0, 0, bad.seq, bad.reason, {}, bad.chain)
    states: dict[str, _Chain] = {}
    failure: ReplayError | None = None
    try:
        _replay_events(it, native, by_chain, states, public_key_pem)
        _check_all_reached(by_chain, states)
    except ReplayError as bad:
        failure = bad
    return ReplayReport(
        failure is None,
        sum(c.size for c in states.values()),
        sum(c.verified_ckpts for c in states.values()),
        failure.seq if failure else None,
        failure.reason if failure else None,
        {n: s.summary() for n, s in states.items()},
        failure.chain if failure else None,
    )


def _state(states: dict[str, _Chain], by_chain: dict[str, list[_Checkpoint]], name: str) -> _Chain:
    """The state of chain ``name``, created on first use."""
    st = states.get(name)
    if st is None:
        st = states[name] = _Chain(name, by_chain.get(name, []))
    return st


def _replay_events(
    it: Iterator[str | bytes],
    native: _BufferLines | None,
    by_chain: dict[str, list[_Checkpoint]],
    states: dict[str, _Chain],
    pem: bytes,
) -> None:
    """Every event in turn: accepted by the native kernel (a run of lines), by the fast path, or
    parsed and checked one check at a time; each checkpoint is verified when its event is reached.

    The current chain's state lives in locals (loaded on a switch, saved back on the way out)."""
    st: _Chain | None = None
    nodes: list[bytes] = []
    last_hash, last_prev, expected, size = _GENESIS_HEX, None, 1, 0
    next_ckpt, sig_member = -1, b"\x00"  # (no fast path before the first chain is known)
    lineno = 0
    kernel = _replay_kernel.run if native is not None else None
    try:
        while True:
            kernel_said_no = False
            if kernel is not None and next_ckpt >= 0:  # the native fast path, on a run of lines
                assert native is not None and st is not None
                native.pos, k, new_hash, new_prev = kernel(
                    native.buf, native.pos, last_hash, expected, sig_member, next_ckpt, nodes, size
                )
                if k:
                    assert new_hash is not None and new_prev is not None
                    lineno, size, expected = lineno + k, size + k, expected + k - 1
                    last_hash, last_prev = new_hash, new_prev
                    if expected == next_ckpt:  # it stops after a checkpoint's event
                        next_ckpt, sig_member = _pass_checkpoint(
                            st, last_hash, last_prev, expected, nodes, size, pem
                        )
                        expected += 1
                        continue
                    expected += 1
                kernel_said_no = True  # to the next line (if any): straight to the slow path
            raw = next(it, None)
            if raw is None:
                return
            lineno += 1
            line = raw if raw.__class__ is bytes else _as_bytes(raw)
            accepted = (
                None
                if kernel_said_no or next_ckpt < 0
                else _fast_event(line, last_hash, expected, sig_member)
            )
            if accepted is None:  # another chain, an unusual or a bad line
                if not line.strip():
                    continue
                name, seq, prev_hex, hash_hex, sig, digest = _parse_event(line, lineno, st, expected)
                if st is None or name != st.name:
                    _save(st, last_hash, last_prev, expected, nodes, size)
                    st = _state(states, by_chain, name)
                    last_hash, last_prev, expected, nodes, size, next_ckpt, sig_member = _load(st)
                _check_event(
                    st, seq, prev_hex, hash_hex, sig, digest, expected, last_hash, last_prev, it, pem
                )
                accepted = digest, hash_hex
            # accepted: seq, prevHash and signature are the expected ones
            size = frontier_append(nodes, size, accepted[0])
            last_prev, last_hash = last_hash, accepted[1]
            if expected == next_ckpt:
                assert st is not None
                next_ckpt, sig_member = _pass_checkpoint(st, last_hash, last_prev, expected, nodes, size, pem)
            expected += 1
    finally:
        _save(st, last_hash, last_prev, expected, nodes, size)


def _as_bytes(raw: str | bytes) -> bytes:
    return raw.encode("utf-8") if isinstance(raw, str) else bytes(raw)


def _fast_event(
    line: bytes, last_hash: bytes, expected: int, sig_member: bytes
) -> tuple[bytes, bytes] | None:
    """``(digest, hash hex)`` when ``line`` is, byte for byte, the canonical line this chain's next
    event must be (previous hash, next seq, covering checkpoint's reference); else None.

    Layout: ``{"actor":"A","chain":"C","data":{..},"hash":"H","id":"I","prevHash":"P","seq":N,
    "signature":S,"subject":"U","ts":"T","type":"Y"}``. P, N and S are known in advance, so one
    search finds them; the quote count pins them to the top level, the id's opening quote pins
    the "hash" member. The bytes around are hashed as they are: if that hash is the genuine one,
    the line is the genuine line (see the module doc)."""
    end = len(line)
    if end and line[end - 1] == 10:  # "\n"
        end -= 1
        if end and line[end - 1] == 13:  # "\r"
            end -= 1
    needle = b'","prevHash":"%b","seq":%d%b' % (last_hash, expected, sig_member)
    q = line.rfind(needle, 0, end)
    if q <= 0:
        return None
    o = line.rfind(b'"', 0, q)  # the id's opening quote
    pos = o - 80  # ',"hash":"<64 hex>"' ends where ',"id":"' starts
    r0 = q + len(needle)  # the subject's first character
    if not (
        pos > 0
        and line.startswith(b'","id":"', o - 7)  # the hash's closing quote, then the id
        and line.count(b'"', r0, end) == 9  # 'U","ts":"T","type":"Y"}': the top-level tail
        and line.startswith(b',"hash":"', pos)
    ):
        return None
    digest = _sha256(line[:pos] + line[o - 6 : r0 - len(sig_member)] + line[r0 - 12 : end]).digest()
    hash_hex = _hexlify(digest)
    return (digest, hash_hex) if line.startswith(hash_hex, pos + 9) else None


def _parse_event(
    line: bytes, lineno: int, st: _Chain | None, expected: int
) -> tuple[str, int, bytes, bytes, bytes, bytes]:
    """:func:`_slow_event`, its failure placed at the line (and at the current chain's next seq
    when the line names none)."""
    try:
        return _slow_event(line)
    except EventFormatError as bad:
        at = bad.seq if bad.seq is not None else (expected if st is not None else None)
        raise EventFormatError(
            at, f"event line {lineno}: {bad.reason}", bad.chain or (st.name if st else None)
        ) from None


def _check_event(
    st: _Chain,
    seq: int,
    prev_hex: bytes,
    hash_hex: bytes,
    sig: bytes,
    digest: bytes,
    expected: int,
    last_hash: bytes,
    last_prev: bytes | None,
    rest: Iterator[str | bytes],
    pem: bytes,
) -> None:
    """A parsed event is the chain's next: position, link, hash, signature reference."""
    _check_position(st.name, seq, prev_hex, expected, last_prev, rest)
    _check_link(st.name, seq, prev_hex, last_hash)
    _check_hash(st.name, seq, hash_hex, digest)
    _check_signature_ref(st, seq, sig, pem)


def _check_position(
    chain: str, seq: int, prev_hex: bytes, expected: int, last_prev: bytes | None, rest: Iterator[str | bytes]
) -> None:
    """``seq`` is the next one: no gap (events deleted or reordered), no fork, no duplicate."""
    if seq > expected:
        raise SequenceError(expected, _gap_reason(chain, expected, seq, rest), chain)
    if seq == expected - 1 and prev_hex == last_prev:
        raise SequenceError(
            seq,
            f"fork: two events at seq {seq} claim the same prevHash (a second event forked "
            "the chain, or an event was inserted)",
            chain,
        )
    if seq < expected:
        raise SequenceError(
            seq,
            f"duplicate seq {seq} after seq {expected - 1} (a fork, or a duplicated or inserted event)",
            chain,
        )


def _check_link(chain: str, seq: int, prev_hex: bytes, last_hash: bytes) -> None:
    """``prevHash`` is the previous event's hash."""
    if prev_hex != last_hash:
        raise LinkError(
            seq,
            f"event {seq}: prevHash does not match the hash of event {seq - 1} "
            "(event inserted, or an earlier event rewritten)",
            chain,
        )


def _check_hash(chain: str, seq: int, hash_hex: bytes, digest: bytes) -> None:
    """``hash`` is the hash of the event's content."""
    if _hexlify(digest) != hash_hex:
        raise HashError(seq, f"event {seq}: hash does not match its content (event modified)", chain)


def _check_signature_ref(st: _Chain, seq: int, sig: bytes, pem: bytes) -> None:
    """``signature`` names the first checkpoint covering the event with its ``keyId`` (null when
    none does); when it differs because that checkpoint is not ours, the checkpoint is named."""
    if sig == st.ref:
        return
    if st.ci < len(st.checkpoints) and not verify_checkpoint_signature(st.checkpoints[st.ci].obj, pem):
        c = st.checkpoints[st.ci].seq
        raise CheckpointError(c, _signature_reason(c), st.name)
    raise SignatureRefError(seq, _describe_ref(st, seq, sig), st.name)


def _check_all_reached(by_chain: dict[str, list[_Checkpoint]], states: dict[str, _Chain]) -> None:
    """At the end of the stream every checkpoint has been reached (no tail cut)."""
    for name in sorted(by_chain):
        cs = _state(states, by_chain, name)
        if cs.ci < len(cs.checkpoints):
            ck = cs.checkpoints[cs.ci]
            last = cs.expected - 1
            raise TruncatedError(
                last + 1,
                f"checkpoint {ck.seq} covers events up to seq {ck.seq} but the log ends at seq {last} "
                "(tail truncated)",
                name,
            )


def verify_export_files(
    events_path: str | Path, checkpoints_path: str | Path, public_key_pem: bytes
) -> ReplayReport:
    """:func:`verify_export` over ``<chain>.events.jsonl`` and ``<chain>.checkpoints.jsonl`` files.

    With the native kernel (:func:`native_replay`) a regular events file is mapped into memory
    and replayed with :func:`verify_export_buffer` (it must not be truncated meanwhile);
    otherwise it is read line by line.
    """
    with open(events_path, "rb") as events, open(checkpoints_path, "rb") as checkpoints:
        info = os.fstat(events.fileno())
        if not native_replay() or not stat.S_ISREG(info.st_mode):
            return verify_export(events, checkpoints, public_key_pem)
        if info.st_size == 0:  # (an empty file cannot be mapped)
            return verify_export_buffer(b"", checkpoints, public_key_pem)
        with mmap.mmap(events.fileno(), 0, access=mmap.ACCESS_READ) as buf:
            return verify_export_buffer(buf, checkpoints, public_key_pem)
