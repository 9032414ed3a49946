"""Checkpoints as C2SP signed notes (issue 18, item 4), read back by an independent parser.

The parser below is written from the text of c2sp.org/signed-note and c2sp.org/tlog-checkpoint
(not from ``hallmark.audit.notes``) and verifies the ECDSA signature with ``cryptography``
directly: key ID = SHA-256(DER SubjectPublicKeyInfo)[:4] (signature type 0x02), signature =
DER ECDSA P-256/SHA-256 over the note text.
"""

from __future__ import annotations

import base64
import hashlib
import math
from datetime import UTC, datetime

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from hallmark.audit.checkpoints import CheckpointPolicy
from hallmark.audit.log import AuditLog
from hallmark.audit.merkle import merkle_root
from hallmark.audit.notes import note_key_id, open_checkpoint_note, sign_checkpoint_note, verifier_key
from tests.fakes.audit import InMemoryAuditStore
from tests.fakes.signing import LocalSigner

T0 = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


def independent_open(note: bytes, name: str, pem: bytes) -> tuple[str, int, bytes]:
    """(origin, size, root) of a tlog-checkpoint signed by ``name`` with ECDSA key ``pem``."""
    text_all = note.decode("utf-8")
    assert not any(ord(c) < 0x20 and c != "\n" for c in text_all), "control characters"
    sep = text_all.rindex("\n\n")  # "separated from the signatures by the last empty line"
    text, sigs = text_all[: sep + 1], text_all[sep + 2 :]
    assert sigs.endswith("\n") and sigs.strip("\n")
    key = serialization.load_pem_public_key(pem)
    assert isinstance(key, ec.EllipticCurvePublicKey)
    spki = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    key_id = hashlib.sha256(spki).digest()[:4]
    ok = False
    for line in sigs[:-1].split("\n"):
        assert line.startswith("\u2014 "), line
        key_name, b64 = line[2:].split(" ")
        raw = base64.b64decode(b64, validate=True)
        if key_name != name or raw[:4] != key_id:
            continue
        key.verify(raw[4:], text.encode("utf-8"), ec.ECDSA(hashes.SHA256()))  # raises if bad
        ok = True
    assert ok, "no signature from the known key"
    lines = text.split("\n")
    assert lines[-1] == "" and len(lines) >= 4
    origin, size, root_b64 = lines[0], lines[1], lines[2]
    assert size == "0" or (size.isdigit() and not size.startswith("0"))
    root = base64.b64decode(root_b64, validate=True)
    assert len(root) == 32
    return origin, int(size), root


@pytest.fixture(scope="module")
def signer() -> LocalSigner:
    return LocalSigner.generate(key_id="audit-key")


def test_every_checkpoint_has_a_note_an_independent_parser_accepts(signer: LocalSigner) -> None:
    log = AuditLog(InMemoryAuditStore(), signer, CheckpointPolicy(4, math.inf), lambda: T0,
                   note_origin_prefix="audit.hallmark.example")
    hashes_ = []
    for i in range(1, 11):
        ev = log.append("release", f"e{i}", T0, "PackageSubmitted", "a", f"p{i}", {})
        hashes_.append(bytes.fromhex(ev.hash))
    log.checkpoint_now("release")
    records = [log.store.checkpoint_record("release", s) for s in (4, 8, 10)]
    for rec in records:
        assert rec is not None and rec.note
        origin, size, root = independent_open(rec.note.encode(), "audit.hallmark.example/release",
                                              signer.public_key_pem())
        assert origin == "audit.hallmark.example/release" and size == rec.seq
        assert root.hex() == rec.checkpoint["merkleRoot"] == merkle_root(hashes_[:size]).hex()
        assert open_checkpoint_note(rec.note, origin, signer.public_key_pem()).size == size


def test_tampered_notes_are_refused_by_both(signer: LocalSigner) -> None:
    ckpt = {"seq": 5, "merkleRoot": hashlib.sha256(b"r").hexdigest()}
    origin = "hallmark.local/audit/release"
    note = sign_checkpoint_note(ckpt, origin, signer)
    pem = signer.public_key_pem()
    lines = note.split("\n")
    bad_size = "\n".join([lines[0], "6", *lines[2:]])
    other = LocalSigner.generate()
    for bad, pem_used in ((bad_size, pem), (note, other.public_key_pem()),
                          (note.replace(origin, "evil.example/audit/release"), pem)):
        with pytest.raises((AssertionError, InvalidSignature)):
            independent_open(bad.encode(), origin, pem_used)
        with pytest.raises(ValueError):
            open_checkpoint_note(bad, origin, pem_used)


def test_unknown_signature_lines_are_ignored(signer: LocalSigner) -> None:
    """A witness cosignature (another key) next to the log's signature does not break the note."""
    ckpt = {"seq": 3, "merkleRoot": hashlib.sha256(b"x").hexdigest()}
    origin = "hallmark.local/audit/release"
    note = sign_checkpoint_note(ckpt, origin, signer)
    cosigned = note + "\u2014 witness.example/w1 " + base64.b64encode(b"\x01\x02\x03\x04" + b"s" * 64).decode() + "\n"
    assert independent_open(cosigned.encode(), origin, signer.public_key_pem())[1] == 3
    assert open_checkpoint_note(cosigned, origin, signer.public_key_pem()).size == 3


def test_key_id_and_verifier_key(signer: LocalSigner) -> None:
    pem = signer.public_key_pem()
    key = serialization.load_pem_public_key(pem)
    spki = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert note_key_id(pem) == hashlib.sha256(spki).digest()[:4]
    name, kid, blob = verifier_key("hallmark.local/audit/release", pem).split("+", 2)
    assert name == "hallmark.local/audit/release" and kid == note_key_id(pem).hex()
    assert base64.b64decode(blob) == b"\x02" + spki
