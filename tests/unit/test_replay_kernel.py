"""The native replay kernel against the pure-Python replay: identical reports, always.

Every export, valid or mutated, is replayed three ways: the pure-Python path over its lines
(``verify_export``), the pure-Python path over the whole file (``verify_export_buffer`` with
``HALLMARK_REPLAY_NATIVE=0``) and the native kernel over the whole file. The three reports
must be equal field for field (first bad seq, reason, chain, per-chain summaries).
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import math
import os
import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import rfc8785
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from hallmark.audit import replay
from hallmark.audit.checkpoints import CheckpointPolicy
from hallmark.audit.log import AuditLog
from hallmark.audit.replay import ReplayReport, verify_export, verify_export_buffer, verify_export_files
from tests.fakes.audit import InMemoryAuditStore
from tests.fakes.signing import LocalSigner

kernel = replay._replay_kernel
pytestmark = pytest.mark.skipif(
    kernel is None, reason="the native replay kernel is not built (pip install -e . builds it)"
)

SIGNER = LocalSigner.generate(key_id="audit-key")
PEM = SIGNER.public_key_pem()
TS = "2026-11-22T20:11:00.000Z"


def export(
    n: int, every: int, chains: tuple[str, ...] = ("release",), block: int = 4
) -> tuple[list[bytes], list[bytes]]:
    """Events (the chains interleaved in blocks of ``block`` events) and checkpoints, as file lines."""
    log = AuditLog(InMemoryAuditStore(), SIGNER, CheckpointPolicy(every, math.inf))
    for i in range(1, n + 1):
        for chain in chains:
            data = {"i": i, "q": 'say "hi"\\', "u": "é\u2028", "f": i / 8, "nested": {"b": [1, None]}}
            log.append(chain, f"{chain}-{i}", TS, "ValidationPassed", f"actor-{i % 3}", f"s-{i}", data)
    out = {c: log.export(c) for c in chains}
    events = [x for start in range(0, n, block) for c in chains for x in out[c][0][start : start + block]]
    ckpts = [c for chain in chains for c in out[chain][1]]
    return [x.encode() + b"\n" for x in events], [c.encode() + b"\n" for c in ckpts]


ONE = export(30, 7)  # checkpoints 7, 14, 21, 28; 29..30 uncovered
TWO = export(16, 5, ("release", "market"))  # chains interleaved in blocks of 4


@contextmanager
def native(on: bool) -> Iterator[None]:
    old = os.environ.get("HALLMARK_REPLAY_NATIVE")
    os.environ["HALLMARK_REPLAY_NATIVE"] = "1" if on else "0"
    try:
        yield
    finally:
        if old is None:
            del os.environ["HALLMARK_REPLAY_NATIVE"]
        else:
            os.environ["HALLMARK_REPLAY_NATIVE"] = old


@contextmanager
def counting() -> Iterator[list[int]]:
    """The number of events each kernel call accepted."""
    accepted: list[int] = []
    run = replay._replay_kernel.run

    def spy(*args: Any) -> tuple[int, int, bytes | None, bytes | None]:
        out = run(*args)
        accepted.append(out[1])
        return out

    replay._replay_kernel.run = spy  # type: ignore[union-attr]
    try:
        yield accepted
    finally:
        replay._replay_kernel.run = run  # type: ignore[union-attr]


def same_reports(buf: bytes, ckpts: list[bytes]) -> tuple[ReplayReport, list[int]]:
    """Replay three ways; the reports must be identical. Returns it and the kernel's counts."""
    with native(False):
        by_lines = verify_export(io.BytesIO(buf), ckpts, PEM)  # exactly the lines a file gives
        python = verify_export_buffer(buf, ckpts, PEM)
    with native(True), counting() as accepted:
        native_report = verify_export_buffer(buf, ckpts, PEM)
    assert python == by_lines
    assert native_report == python
    return native_report, accepted


# ---- valid exports: the kernel does the work, the reports are the same ------------------------
def test_a_valid_export_is_accepted_by_the_kernel() -> None:
    events, ckpts = ONE
    report, accepted = same_reports(b"".join(events), ckpts)
    assert report.ok and report.events == 30 and report.checkpoints == 4
    # event 1 opens the chain (slow path); the kernel takes 2..28 up to each checkpoint;
    # 29..30 are past the last checkpoint and are parsed strictly (never the kernel)
    assert [k for k in accepted if k] == [6, 7, 7, 7]


def test_several_chains_and_line_endings() -> None:
    events, ckpts = TWO
    assert same_reports(b"".join(events), ckpts)[0].ok
    one_ev, one_ck = ONE
    variants = [
        b"".join(x[:-1] + b"\r\n" for x in one_ev),  # CRLF
        b"".join(one_ev)[:-1],  # no newline at the end
        b"\n".join(one_ev),  # blank lines between
        b"\r\n" + b"".join(one_ev) + b"\n\n  \n",
        b"".join(x[:-1] + b"\r\r\n" for x in one_ev),  # a stray \r: the slow path (JSON whitespace)
        b"".join(x[:-1] + b" \n" for x in one_ev),
        b"",
        b"\n",
    ]
    for buf in variants:
        same_reports(buf, one_ck)


def test_files_use_the_kernel(tmp_path: Path) -> None:
    events, ckpts = ONE
    (tmp_path / "e.jsonl").write_bytes(b"".join(events))
    (tmp_path / "c.jsonl").write_bytes(b"".join(ckpts))
    (tmp_path / "empty.jsonl").write_bytes(b"")
    with native(True), counting() as accepted:
        report = verify_export_files(tmp_path / "e.jsonl", tmp_path / "c.jsonl", PEM)
        empty = verify_export_files(tmp_path / "empty.jsonl", tmp_path / "c.jsonl", PEM)
    assert report.ok and sum(accepted) == 27
    with native(False), counting() as none:
        assert verify_export_files(tmp_path / "e.jsonl", tmp_path / "c.jsonl", PEM) == report
        assert verify_export_files(tmp_path / "empty.jsonl", tmp_path / "c.jsonl", PEM) == empty
    assert none == [] and not empty.ok and empty.first_bad_seq == 1
    with native(False):
        assert not replay.native_replay()
    with native(True):
        assert replay.native_replay()


def test_a_far_checkpoint_is_reached_by_neither_path() -> None:
    events, _ = ONE
    far = 2**53 - 1  # the largest seq RFC 8785 can sign
    body = {"chain": "release", "seq": far, "ts": TS, "headHash": "a" * 64, "merkleRoot": "b" * 64,
            "prevCheckpointHash": "0" * 64, "keyId": "audit-key"}  # fmt: skip
    signed = {**body, "signature": base64.b64encode(SIGNER.sign(rfc8785.dumps(body))).decode()}
    lines = [json.loads(x) for x in events]
    ref = {"checkpoint": far, "keyId": "audit-key"}
    relinked = [rfc8785.dumps({**e, "signature": ref}) + b"\n" for e in lines]
    report, accepted = same_reports(b"".join(relinked), [rfc8785.dumps(signed)])
    assert not report.ok and "tail truncated" in (report.reason or "") and sum(accepted) == 29


def test_the_kernel_refuses_an_inconsistent_state() -> None:
    assert kernel is not None
    sig = b',"signature":null,"subject":"'
    with pytest.raises(ValueError):
        kernel.run(b"", 0, b"0" * 63, 1, sig, 5, [], 0)  # a short hash
    with pytest.raises(ValueError):
        kernel.run(b"", 0, b"0" * 64, 1, sig, 5, [], 1)  # size 1 needs one node
    with pytest.raises(ValueError):
        kernel.run(b"", 0, b"0" * 64, 1, sig, 5, [b"x" * 31], 1)
    with pytest.raises(ValueError):
        kernel.run(b"abc", 4, b"0" * 64, 1, sig, 5, [], 0)  # offset past the end
    with pytest.raises(ValueError):
        kernel.run(b"abc", 0, b"0" * 64, 0, sig, 5, [], 0)  # seq 0
    assert kernel.run(b"abc\n", 0, b"0" * 64, 1, sig, 10**40, [], 0) == (0, 0, None, None)


# ---- mutated exports: never a different verdict, never a different diagnosis -----------------
def _reorder_members(line: bytes, rng: random.Random) -> bytes:
    obj = json.loads(line)
    keys = list(obj)
    rng.shuffle(keys)
    return json.dumps({k: obj[k] for k in keys}, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"


def _respace(line: bytes, _: random.Random) -> bytes:
    return json.dumps(json.loads(line)).encode() + b"\n"  # spaces, \\u escapes: equal, not canonical


def _escape_a_char(line: bytes, _: random.Random) -> bytes:
    return line.replace(b'"actor":"a', b'"actor":"\\u0061', 1)  # equal value, not canonical


def _resign_as(line: bytes, _: random.Random) -> bytes:
    obj = json.loads(line)
    if isinstance(obj.get("signature"), dict):
        obj["signature"] = {"keyId": obj["signature"]["keyId"], "checkpoint": obj["signature"]["checkpoint"]}
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"


LINE_EDITS: list[Callable[[bytes, random.Random], bytes]] = [
    _reorder_members, _respace, _escape_a_char, _resign_as,
]  # fmt: skip

# Pieces of forged lines: in the export's layout, with a hash that is right for the bytes
# the fast path hashes, but (mostly) not JSON, or not the JSON they look like.
FORGE = {
    "head": ['{"actor":"a","chain":"{chain}","data":{data}', "", '{"chain":"{chain}","data":{data}'],
    "data": [
        '{"x":1}',
        '{"x":"{needle}",}',
        '{"x":1,}',
        '{"x":"\\""}',
        '{"a":"b","c":"d"}',
        '"s"',
        '{"x":1}}{',
        '{"hash":"0"}',
    ],
    "hash_key": ['"hash"', '"hasx"'],
    "id_key": ['"id"', '"ix"', '"i"'],
    "id": ["forged", 'f\\"x', 'f","id":"g', "", "é"],
    "subject": ["s", 's\\"', "s\\\\", 's","x":"y', 's"', ""],
    "type": ["ValidationPassed", 'V","z":"w', "V\\u0022"],
    "end": ["}", '}"', '"}', " }", "}\r", "},", "}}", ""],
}


def forge(line: bytes, **changes: str) -> bytes:
    """A forged line at the place of ``line`` (same chain, seq, prevHash and signature): the
    export's layout with the given pieces changed, and a hash right for the bytes hashed."""
    obj = json.loads(line)
    sig = rfc8785.dumps(obj["signature"]).decode()
    pick = {k: changes.get(k, v[0]) for k, v in FORGE.items()}
    needle = f'","prevHash":"{obj["prevHash"]}","seq":{obj["seq"]},"signature":{sig},"subject":"'
    pick["data"] = pick["data"].replace("{needle}", needle)  # what the fast path looks for, twice
    head = pick["head"].replace("{chain}", obj["chain"]).replace("{data}", pick["data"])
    mid = f',{pick["id_key"]}:"{pick["id"]}","prevHash":"{obj["prevHash"]}","seq":{obj["seq"]}'
    tail = f',"subject":"{pick["subject"]}","ts":"{TS}","type":"{pick["type"]}"{pick["end"]}'
    digest = hashlib.sha256((head + mid + tail).encode()).hexdigest()
    return f'{head},{pick["hash_key"]}:"{digest}"{mid},"signature":{sig}{tail}\n'.encode()


@st.composite
def forged(draw: st.DrawFn, line: bytes) -> bytes:
    changed = draw(st.sets(st.sampled_from(sorted(FORGE)), max_size=2))
    return forge(line, **{k: draw(st.sampled_from(FORGE[k][1:])) for k in sorted(changed)})


# event 1 (slow path), inside a run, just before, at and after a checkpoint, uncovered
PLACES = [0, 3, 5, 6, 7, 20, 27, 28, 29]


def test_every_single_forged_piece_at_every_place() -> None:
    events, ckpts = ONE
    for i in PLACES:
        for key, variants in FORGE.items():
            for variant in variants:
                lines = list(events)
                lines[i] = forge(lines[i], **{key: variant})
                same_reports(b"".join(lines), ckpts)
                # the forged line ends the file, with or without its newline
                same_reports(b"".join(lines[: i + 1]), ckpts)
                same_reports(b"".join(lines[: i + 1])[:-1], ckpts)


def test_references_of_the_neighbours_and_cut_files() -> None:
    events, ckpts = ONE
    refs = [json.loads(x)["signature"] for x in events]
    for i in range(len(events)):
        for ref in {json.dumps(r) for r in (refs[i - 1], refs[(i + 1) % len(refs)], None)}:
            lines = list(events)
            lines[i] = rfc8785.dumps({**json.loads(events[i]), "signature": json.loads(ref)}) + b"\n"
            same_reports(b"".join(lines), ckpts)  # (the hash does not cover the reference)
        head = b"".join(events[: i + 1])
        for cut in (head, head[:-1], head[:-1] + b"\r", head[:-1] + b"\r\n", head + b"\r"):
            same_reports(cut, ckpts)


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_forged_lines_get_identical_reports(data: st.DataObject) -> None:
    events, ckpts = data.draw(st.sampled_from([ONE, TWO]))
    lines = list(events)
    i = data.draw(st.integers(0, len(lines) - 1))
    lines[i] = data.draw(forged(lines[i]))
    if data.draw(st.booleans()):  # the forged line ends the file, maybe without its newline
        lines = lines[: i + 1]
        lines[i] = lines[i][: len(lines[i]) - data.draw(st.integers(0, 1))]
    same_reports(b"".join(lines), ckpts)


BYTES = st.one_of(st.sampled_from(b'"\\\n\r ,:{}[]0123456789abcdef\x00\x80\xff'), st.integers(0, 255))


@st.composite
def mutated(draw: st.DrawFn) -> tuple[bytes, list[bytes]]:
    events, ckpts = draw(st.sampled_from([ONE, ONE, TWO]))
    lines = list(events)
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["flip", "insert", "delete", "swap", "cut", "dup", "edit", "crlf",
                                     "blank", "other", "drop", "forge", "reref"]))  # fmt: skip
        i = draw(st.integers(0, len(lines) - 1))
        line = lines[i]
        if kind in ("flip", "insert", "delete") and line:
            j = draw(st.integers(0, len(line) - 1))
            b = bytes([draw(BYTES)])
            lines[i] = {"flip": line[:j] + b + line[j + 1 :], "insert": line[:j] + b + line[j:],
                        "delete": line[:j] + line[j + 1 :]}[kind]  # fmt: skip
        elif kind == "swap":
            k = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[k] = lines[k], lines[i]
        elif kind == "cut":
            return b"".join(lines)[: draw(st.integers(0, len(b"".join(lines))))], ckpts
        elif kind == "dup":
            lines.insert(draw(st.integers(0, len(lines))), line)
        elif kind == "drop" and len(lines) > 1:
            del lines[i]
        elif kind in ("edit", "forge"):
            try:
                if kind == "forge":
                    lines[i] = draw(forged(line))
                else:
                    edit = draw(st.sampled_from(LINE_EDITS))
                    lines[i] = edit(line, random.Random(draw(st.integers(0, 2**32))))
            except (ValueError, KeyError, TypeError, AttributeError):
                pass  # an earlier mutation made it something else than an event
        elif kind == "reref":  # another line's signature reference: the hash stays right
            try:
                ref = json.loads(draw(st.sampled_from(lines)))["signature"]
                lines[i] = rfc8785.dumps({**json.loads(line), "signature": ref}) + b"\n"
            except (ValueError, KeyError, TypeError):
                pass
        elif kind == "crlf" and line.endswith(b"\n"):
            lines[i] = line[:-1] + b"\r\n"
        elif kind == "blank":
            lines.insert(i, draw(st.sampled_from([b"\n", b"\r\n", b" \n"])))
        elif kind == "other":  # a line of another export: another chain, or the same chain's name
            other = TWO[0] if events is ONE[0] else ONE[0]
            lines.insert(i, draw(st.sampled_from(other)))
    return b"".join(lines), ckpts


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=mutated())
def test_mutated_exports_get_identical_reports(case: tuple[bytes, list[bytes]]) -> None:
    report, accepted = same_reports(*case)
    event(f"verified: {report.ok}; the kernel accepted events: {sum(accepted) > 0}")
    event(f"reason: {(report.reason or 'none').split(':')[0][:24]}")
