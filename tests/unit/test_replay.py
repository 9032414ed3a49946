"""Replay of an export: one test per tampering class, plus the corners of the wire format.

The log: 45 events on one chain, checkpoints at 10, 20, 30, 40 (events 41..45 uncovered).
Every test runs twice: on the pure-Python path (the lines as given), and on the native kernel
(the lines written out as one events file), when it is built.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
import rfc8785
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hallmark.audit.checkpoints import CheckpointPolicy, checkpoint_hash
from hallmark.audit.events import event_hash
from hallmark.audit.log import AuditLog
from hallmark.audit.replay import (
    ReplayReport,
    _replay_kernel,
    verify_export,
    verify_export_buffer,
    verify_export_files,
)
from hallmark.signing import public_key_fingerprint
from tests.fakes.audit import InMemoryAuditStore
from tests.fakes.signing import LocalSigner

TS = "2026-11-22T20:11:00.000Z"
SIGNER = LocalSigner.generate(key_id="audit-key")
PEM = SIGNER.public_key_pem()


def as_file(lines: Iterable[str | bytes]) -> bytes:
    """The lines as one events file: each ends with a newline."""
    raw = [x.encode() if isinstance(x, str) else x for x in lines]
    return b"".join(x if x.endswith(b"\n") else x + b"\n" for x in raw)


def _via_file(events: Iterable[str | bytes], ckpts: Iterable[str | bytes], pem: bytes) -> ReplayReport:
    return verify_export_buffer(as_file(events), ckpts, pem)


@pytest.fixture(autouse=True, params=["python", "native"])
def replay_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run the test on the pure-Python path, then on the native kernel."""
    if request.param == "native":
        if _replay_kernel is None:
            pytest.skip("the native replay kernel is not built (pip install -e . builds it)")
        monkeypatch.setattr(sys.modules[__name__], "verify_export", _via_file)
        monkeypatch.setenv("HALLMARK_REPLAY_NATIVE", "1")
    else:
        monkeypatch.setenv("HALLMARK_REPLAY_NATIVE", "0")
    return str(request.param)


def build(
    n: int = 45, every: int = 10, chains: tuple[str, ...] = ("release",)
) -> dict[str, tuple[list[str], list[str]]]:
    log = AuditLog(InMemoryAuditStore(), SIGNER, CheckpointPolicy(every, math.inf))
    for i in range(1, n + 1):
        for chain in chains:
            log.append(
                chain,
                f"{chain}-{i}",
                TS,
                "ValidationPassed",
                "validator",
                f"pkg-{i % 7}",
                {"validator": "static", "i": i, "ratio": i / 8, "note": 'ok "quoted" é'},
            )
    return {chain: log.export(chain) for chain in chains}


EVENTS, CKPTS = build()["release"]


def canon(obj: Any) -> str:
    return rfc8785.dumps(obj).decode()


def ev(seq: int, lines: list[str] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = json.loads((lines or EVENTS)[seq - 1])
    return out


def resign(ckpt: dict[str, Any], signer: LocalSigner = SIGNER) -> dict[str, Any]:
    body = {k: v for k, v in ckpt.items() if k != "signature"}
    return {**body, "signature": base64.b64encode(signer.sign(rfc8785.dumps(body))).decode()}


def check(events: list[str], ckpts: list[str], seq: int | None, *words: str) -> None:
    report = verify_export(events, ckpts, PEM)
    assert not report.ok
    assert report.first_bad_seq == seq, report
    for word in words:
        assert word in (report.reason or ""), report.reason


def test_untouched_export_verifies() -> None:
    report = verify_export(EVENTS, CKPTS, PEM)
    assert report.ok, report.reason
    assert (report.events, report.checkpoints, report.first_bad_seq, report.reason) == (45, 4, None, None)
    summary = report.chains["release"]
    assert (summary.events, summary.checkpoints, summary.head_seq, summary.last_checkpoint_seq) == (
        45,
        4,
        45,
        40,
    )
    assert summary.head_hash == ev(45)["hash"]
    # bytes lines with newlines (files opened "rb"), str lines with "\r\n", blank lines
    assert verify_export([x.encode() + b"\n" for x in EVENTS], [c.encode() + b"\n" for c in CKPTS], PEM).ok
    assert verify_export([x + "\r\n" for x in EVENTS] + ["\n"], ["", *CKPTS], PEM).ok


def test_files(tmp_path: Path) -> None:
    (tmp_path / "release.events.jsonl").write_text("".join(x + "\n" for x in EVENTS))
    (tmp_path / "release.checkpoints.jsonl").write_text("".join(x + "\n" for x in CKPTS))
    report = verify_export_files(
        tmp_path / "release.events.jsonl", tmp_path / "release.checkpoints.jsonl", PEM
    )
    assert report.ok


# ---- the tampering classes of DESIGN.md ------------------------------------------------------
def test_edited_field_is_detected() -> None:
    lines = list(EVENTS)
    lines[14] = canon({**ev(15), "actor": "mallory"})
    check(lines, CKPTS, 15, "hash does not match")
    lines[14] = canon({**ev(15), "data": {**ev(15)["data"], "i": 999}})
    check(lines, CKPTS, 15, "hash does not match")


def test_edited_field_with_recomputed_hash_breaks_the_next_link() -> None:
    lines = list(EVENTS)
    forged = {**ev(15), "subject": "pkg-evil"}
    lines[14] = canon({**forged, "hash": event_hash(forged)})
    check(lines, CKPTS, 16, "prevHash")


def test_rewritten_suffix_is_caught_by_the_checkpoint() -> None:
    lines = list(EVENTS)
    prev = ev(14)["hash"]
    for seq in range(15, 46):  # rewrite 15 and re-link everything after it
        e = {**ev(seq), "prevHash": prev}
        if seq == 15:
            e["actor"] = "mallory"
        e["hash"] = event_hash(e)
        lines[seq - 1] = canon(e)
        prev = e["hash"]
    check(lines, CKPTS, 20, "checkpoint 20", "headHash")


def test_deleted_event_is_detected() -> None:
    lines = EVENTS[:14] + EVENTS[15:]
    check(lines, CKPTS, 15, "missing", "deleted")
    lines = EVENTS[:14] + EVENTS[17:]
    check(lines, CKPTS, 15, "events 15..17 are missing")
    check(EVENTS[1:], CKPTS, 1, "missing")


def test_inserted_event_is_detected() -> None:
    forged = {**ev(15), "id": "forged", "actor": "mallory", "signature": ev(15)["signature"]}
    forged["hash"] = event_hash(forged)
    lines = [*EVENTS[:14], canon(forged), *EVENTS[14:]]
    check(lines, CKPTS, 15, "fork")
    # a replayed copy of an earlier line
    lines = [*EVENTS[:20], EVENTS[5], *EVENTS[20:]]
    check(lines, CKPTS, 6, "duplicate seq 6")


def test_swapped_events_are_detected() -> None:
    lines = list(EVENTS)
    lines[14], lines[15] = lines[15], lines[14]
    check(lines, CKPTS, 15, "reordered")
    lines = list(EVENTS)
    lines[3], lines[30] = lines[30], lines[3]
    check(lines, CKPTS, 4, "reordered")


def test_tail_cut_after_a_checkpoint_is_detected() -> None:
    check(EVENTS[:25], CKPTS, 26, "tail truncated", "checkpoint 30")
    check(EVENTS[:39], CKPTS, 40, "tail truncated")
    # cutting the checkpoint file too: the surviving events still name the removed checkpoint
    check(EVENTS[:25], CKPTS[:2], 21, "checkpoint 30", "not in the checkpoint file")
    # only the uncovered tail may go unnoticed (nothing signed it yet): by design
    assert verify_export(EVENTS[:42], CKPTS, PEM).ok
    assert verify_export(EVENTS[:40], CKPTS, PEM).ok


def test_fork_is_detected() -> None:
    twin = {**ev(45), "id": "twin", "data": {"other": True}}
    twin["hash"] = event_hash(twin)
    check([*EVENTS, canon(twin)], CKPTS, 45, "fork", "same prevHash")
    twin = {**ev(12), "id": "twin", "data": {"other": True}}
    twin["hash"] = event_hash(twin)
    check([*EVENTS[:12], canon(twin), *EVENTS[12:]], CKPTS, 12, "fork")


def test_checkpoints_signed_by_another_key_are_rejected() -> None:
    other = LocalSigner.generate(key_id="attacker")
    resigned = [canon(resign({**json.loads(c), "keyId": "attacker"}, other)) for c in CKPTS]
    check(EVENTS, resigned, 10, "signature does not verify")
    same_id = [canon(resign(json.loads(c), other)) for c in CKPTS]  # keeps our keyId
    check(EVENTS, same_id, 10, "signature does not verify")
    report = verify_export(EVENTS, resigned, other.public_key_pem())
    assert not report.ok  # the events' references still name audit-key
    assert report.first_bad_seq == 1 and "keyId" in (report.reason or "")


def test_wrong_merkle_root_is_detected() -> None:
    ckpts = list(CKPTS)
    c20 = json.loads(ckpts[1])
    ckpts[1] = canon({**c20, "merkleRoot": "ab" * 32})
    check(EVENTS, ckpts, 20, "signature does not verify")  # not re-signed
    ckpts[1] = canon(resign({**c20, "merkleRoot": "ab" * 32}))  # a signer that signed a wrong root
    ckpts[2:] = [canon(resign({**json.loads(c), "prevCheckpointHash": "0" * 64})) for c in CKPTS[2:]]
    check(EVENTS, ckpts, 20, "merkleRoot does not match")


# ---- the other checks ------------------------------------------------------------------------
def test_checkpoint_links_and_fields() -> None:
    c20 = json.loads(CKPTS[1])
    ckpts = list(CKPTS)
    ckpts[1] = canon(resign({**c20, "headHash": ev(19)["hash"]}))
    check(EVENTS, ckpts, 20, "headHash")
    ckpts = list(CKPTS)
    ckpts[1] = canon(resign({**c20, "prevCheckpointHash": "0" * 64}))
    check(EVENTS, ckpts, 20, "prevCheckpointHash")
    check(EVENTS, [CKPTS[0], CKPTS[2], CKPTS[1], CKPTS[3]], 20, "out of order")
    check(EVENTS, [CKPTS[0], CKPTS[0], *CKPTS[1:]], 10, "duplicated")
    check(EVENTS, [*CKPTS[:1], *CKPTS[2:]], 11, "checkpoint 20", "not in the checkpoint file")
    sig = json.loads(CKPTS[0])["signature"]
    check(EVENTS, [canon({**json.loads(CKPTS[0]), "signature": sig + "=="}), *CKPTS[1:]], 10, "signature")
    check(EVENTS, [canon({**json.loads(CKPTS[0]), "extra": 1}), *CKPTS[1:]], 10, "fields differ")
    # keyId changed consistently (events' references too), re-signed with the right key
    lines = [
        canon({**ev(s), "signature": {**ev(s)["signature"], "keyId": "k2"}})
        if 11 <= s <= 20
        else EVENTS[s - 1]
        for s in range(1, 46)
    ]
    ckpts = list(CKPTS)
    ckpts[1] = canon(resign({**c20, "keyId": "k2"}))
    check(lines, ckpts, 20, "keyId")


def test_a_checkpoint_seq_beyond_json_integers_is_a_report_not_a_crash() -> None:
    huge = json.dumps({**json.loads(CKPTS[-1]), "seq": 2**53}, separators=(",", ":"), sort_keys=True)
    check(EVENTS, [*CKPTS, huge], None, "exceeds 2**53 - 1")


def test_event_signature_reference_must_name_the_covering_checkpoint() -> None:
    lines = list(EVENTS)
    lines[4] = canon({**ev(5), "signature": {"checkpoint": 20, "keyId": "audit-key"}})
    check(lines, CKPTS, 5, "is not the first to cover it")
    lines[4] = canon({**ev(5), "signature": None})
    check(lines, CKPTS, 5, "signature null")
    lines = list(EVENTS)
    lines[42] = canon({**ev(43), "signature": {"checkpoint": 50, "keyId": "audit-key"}})
    check(lines, CKPTS, 43, "checkpoint 50")


def test_non_canonical_but_equal_lines_still_verify() -> None:
    lines = [json.dumps(json.loads(x), indent=None, ensure_ascii=True) for x in EVENTS]  # spaces, \\u escapes
    lines[3] = json.dumps(dict(reversed(list(ev(4).items()))))
    assert verify_export(lines, CKPTS, PEM).ok


def test_malformed_lines_are_rejected() -> None:
    lines = list(EVENTS)
    lines[7] = EVENTS[7][:-1]
    check(lines, CKPTS, 8, "line 8", "not valid JSON")
    lines[7] = EVENTS[7][:-1] + ',"actor":"mallory"}'  # duplicate key: parsers would disagree
    check(lines, CKPTS, 8, "duplicate key")
    lines[7] = canon({**ev(8), "extra": True})
    check(lines, CKPTS, 8, "fields differ")
    lines[7] = canon({**ev(8), "seq": "8"})
    check(lines, CKPTS, 8, "seq")
    lines[7] = canon({**ev(8), "hash": ev(8)["hash"].upper()})
    check(lines, CKPTS, 8, "hash")
    check(EVENTS, ["not json"], None, "checkpoints line 1")


def test_several_chains_in_one_stream() -> None:
    exports = build(n=25, every=10, chains=("release", "market"))
    (r_ev, r_ck), (m_ev, m_ck) = exports["release"], exports["market"]
    mixed = [x for pair in zip(r_ev, m_ev, strict=True) for x in pair]
    report = verify_export(mixed, r_ck + m_ck, PEM)
    assert report.ok, report.reason
    assert sorted(report.chains) == ["market", "release"]
    assert report.events == 50 and report.checkpoints == 4
    m_ev = list(m_ev)
    m_ev[12] = canon({**json.loads(m_ev[12]), "actor": "mallory"})
    mixed = [x for pair in zip(r_ev, m_ev, strict=True) for x in pair]
    report = verify_export(mixed, r_ck + m_ck, PEM)
    assert (report.ok, report.chain, report.first_bad_seq) == (False, "market", 13)
    report = verify_export(r_ev, r_ck + m_ck, PEM)  # the market events are missing entirely
    assert (report.ok, report.chain, report.first_bad_seq) == (False, "market", 1)


SMALL_EVENTS, SMALL_CKPTS = build(n=12, every=5)["release"]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_single_byte_change_is_detected(data: st.DataObject) -> None:
    in_events = data.draw(st.booleans())
    lines = [x.encode() for x in (SMALL_EVENTS if in_events else SMALL_CKPTS)]
    i = data.draw(st.integers(0, len(lines) - 1))
    j = data.draw(st.integers(0, len(lines[i]) - 1))
    b = data.draw(st.integers(0, 255).filter(lambda v: v != lines[i][j]))
    lines[i] = lines[i][:j] + bytes([b]) + lines[i][j + 1 :]
    ev_lines = lines if in_events else [x.encode() for x in SMALL_EVENTS]
    ck_lines = [x.encode() for x in SMALL_CKPTS] if in_events else lines
    report = verify_export(ev_lines, ck_lines, PEM)
    assert not report.ok, (i, j, b)


def test_bad_public_key_is_the_callers_error() -> None:
    with pytest.raises(ValueError):
        verify_export(EVENTS, CKPTS, b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")


def _forge_raw(seq: int, prev: str, data_text: str, sig: str = "null") -> str:
    """A line in the export's layout whose data is raw text, with a self-consistent hash."""
    head = f'{{"actor":"a","chain":"release","data":{data_text}'
    mid = f',"id":"forged-{seq}","prevHash":"{prev}","seq":{seq}'
    tail = ',"subject":"s","ts":"2026-11-22T20:11:00.000Z","type":"ValidationPassed"}'
    digest = hashlib.sha256((head + mid + tail).encode()).hexdigest()
    return f'{head},"hash":"{digest}"{mid},"signature":{sig}{tail}'


def _forge_nul(seq: int, prev: str) -> str:
    """A non-JSON line with a NUL after the seq, hashed as a fast path looking for a NUL would cut it."""

    def line(digest: str) -> str:
        return (f'{{"actor":"a","chain":"release","data":{{"i":{seq},}},"hash":"{digest}","id":"f",'
                f'"prevHash":"{prev}","seq":{seq}\x00s","ts":"{TS}","type":"ValidationPassed"}}')  # fmt: skip

    probe = line("0" * 64)
    o, r0 = probe.index('"f"'), probe.index("\x00") + 1
    body = probe[: o - 80] + probe[o - 6 : r0 - 1] + probe[r0 - 12 :]
    return line(hashlib.sha256(body.encode()).hexdigest())


def test_a_non_json_line_with_a_matching_hash_never_passes() -> None:
    # past the last checkpoint: nothing authenticates the line, it is parsed strictly
    bad = _forge_raw(46, ev(45)["hash"], '{"i":46,}')
    check([*EVENTS, bad], CKPTS, 46, "not valid JSON")
    good = _forge_raw(46, ev(45)["hash"], '{"i":46}')
    assert verify_export([*EVENTS, good], CKPTS, PEM).ok  # (an unsigned tail is only self-consistent)
    # nor with a NUL (what the fast path once looked for in an uncovered tail) after the seq
    check([*EVENTS, _forge_nul(46, ev(45)["hash"])], CKPTS, 46, "not valid JSON")
    check([_forge_nul(1, "0" * 64), *EVENTS], CKPTS, None, "line 1", "not valid JSON")
    # inside a covered range the forged line cannot match the signed root
    ref = canon(ev(15)["signature"])
    lines = list(EVENTS)
    lines[14] = _forge_raw(15, ev(14)["hash"], '{"i":15,}', ref)
    report = verify_export(lines, CKPTS, PEM)
    assert not report.ok and report.first_bad_seq in (15, 16)


def test_checkpoint_key_fingerprint() -> None:
    """Checkpoints name their key's fingerprint (issue 18); older ones without it still replay."""
    assert all(json.loads(c)["keyFingerprint"] == public_key_fingerprint(SIGNER.public_key_pem()) for c in CKPTS)
    legacy = [canon(resign({k: v for k, v in json.loads(c).items() if k != "keyFingerprint"})) for c in CKPTS]
    relinked = _relink_prev(legacy)
    assert verify_export(EVENTS, relinked, SIGNER.public_key_pem()).ok
    other = LocalSigner.generate(key_id="audit-key")
    claimed = [canon(resign({**json.loads(c), "keyFingerprint": public_key_fingerprint(other.public_key_pem())}, other))
               for c in CKPTS]
    check(EVENTS, claimed, 10, "signed by the key with fingerprint")
    bad = [canon(resign({**json.loads(c), "keyFingerprint": "XYZ"})) for c in CKPTS]
    check(EVENTS, bad, 10, "keyFingerprint is not 64 lowercase hex")


def _relink_prev(lines: list[str]) -> list[str]:
    out: list[str] = []
    prev = "0" * 64
    for c in lines:
        obj = resign({**json.loads(c), "prevCheckpointHash": prev})
        out.append(canon(obj))
        prev = checkpoint_hash(obj)
    return out
