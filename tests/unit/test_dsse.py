"""DSSE envelopes: PAE to the byte, sign/verify, interop with securesystemslib both ways,
in-toto Statement v1 and manifestSignatureId."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
from typing import Any

import pytest
import rfc8785
from cryptography.hazmat.primitives.asymmetric import ec
from securesystemslib.dsse import Envelope
from securesystemslib.exceptions import VerificationError
from securesystemslib.signer import CryptoSigner, SSlibKey

from hallmark.dsse import (
    IN_TOTO_PAYLOAD_TYPE,
    IN_TOTO_STATEMENT_TYPE,
    DsseError,
    in_toto_statement,
    manifest_signature_id,
    pae,
    sign_envelope,
    verify_envelope,
)
from hallmark.signing import load_public_key, verify_signature
from tests.fakes.signing import LocalSigner

DIGEST = hashlib.sha256(b"artifact").hexdigest()


@pytest.fixture(scope="module")
def signer() -> LocalSigner:
    return LocalSigner.generate(key_id="manifest-key")


def _statement() -> dict[str, Any]:
    return in_toto_statement(
        [{"name": "pkg-1.0.0.tar.gz", "digest": {"sha256": DIGEST}}],
        "https://hallmark.dev/manifest/v1",
        {"manifestId": "m-1", "type": "release", "impact": "LOW", "timestamp": "2026-11-22T20:11:00.000Z"},
    )


def _envelope(signer: LocalSigner) -> dict[str, Any]:
    return sign_envelope(rfc8785.dumps(_statement()), IN_TOTO_PAYLOAD_TYPE, signer)


def test_pae_matches_the_spec_example() -> None:
    # https://github.com/secure-systems-lab/dsse/blob/master/protocol.md (test vector)
    assert pae("http://example.com/HelloWorld", b"hello world") == (
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )
    assert pae("", b"") == b"DSSEv1 0  0 "
    # LEN counts bytes, not characters
    assert pae("t\u00e9", b"\xff") == b"DSSEv1 3 t\xc3\xa9 1 \xff"


def test_envelope_shape_and_roundtrip(signer: LocalSigner) -> None:
    env = _envelope(signer)
    assert set(env) == {"payload", "payloadType", "signatures"}
    assert env["payloadType"] == IN_TOTO_PAYLOAD_TYPE
    assert env["signatures"][0]["keyid"] == "manifest-key"
    payload = verify_envelope(env, signer.public_key_pem(), expected_payload_type=IN_TOTO_PAYLOAD_TYPE)
    assert json.loads(payload) == _statement()
    # the signature is over PAE(type, payload), checkable with the bare key
    sig = base64.b64decode(env["signatures"][0]["sig"])
    assert verify_signature(signer.public_key_pem(), pae(IN_TOTO_PAYLOAD_TYPE, payload), sig)


def test_tampering_and_wrong_key_fail(signer: LocalSigner) -> None:
    env = _envelope(signer)
    statement = _statement()
    statement["predicate"]["impact"] = "CRITICAL"
    tampered = dict(env, payload=base64.b64encode(rfc8785.dumps(statement)).decode())
    with pytest.raises(DsseError):
        verify_envelope(tampered, signer.public_key_pem())
    with pytest.raises(DsseError):
        verify_envelope(dict(env, payloadType="application/json"), signer.public_key_pem())
    with pytest.raises(DsseError):
        verify_envelope(env, LocalSigner.generate().public_key_pem())
    with pytest.raises(DsseError):
        verify_envelope(env, signer.public_key_pem(), expected_payload_type="text/plain")
    with pytest.raises(DsseError):
        verify_envelope(dict(env, payload="not base64!"), signer.public_key_pem())
    with pytest.raises(DsseError):
        verify_envelope(dict(env, signatures=[]), signer.public_key_pem())


def test_securesystemslib_verifies_our_envelope(signer: LocalSigner) -> None:
    env = _envelope(signer)
    key = SSlibKey.from_crypto(load_public_key(signer.public_key_pem()), keyid=signer.key_id)
    parsed = Envelope.from_dict(copy.deepcopy(env))
    assert parsed.pae() == pae(env["payloadType"], base64.b64decode(env["payload"]))
    accepted = parsed.verify([key], 1)
    assert set(accepted) == {signer.key_id}

    statement = _statement()
    statement["subject"][0]["digest"]["sha256"] = "0" * 64
    tampered = Envelope.from_dict(
        copy.deepcopy(dict(env, payload=base64.b64encode(rfc8785.dumps(statement)).decode()))
    )
    with pytest.raises(VerificationError):
        tampered.verify([key], 1)

    other = SSlibKey.from_crypto(
        load_public_key(LocalSigner.generate().public_key_pem()), keyid=signer.key_id
    )
    with pytest.raises(VerificationError):
        Envelope.from_dict(copy.deepcopy(env)).verify([other], 1)


def test_we_verify_a_securesystemslib_envelope() -> None:
    private = ec.generate_private_key(ec.SECP256R1())
    their_signer = CryptoSigner(private)
    env = Envelope(rfc8785.dumps(_statement()), IN_TOTO_PAYLOAD_TYPE, {})
    env.sign(their_signer)
    pem = LocalSigner(private).public_key_pem()
    assert json.loads(verify_envelope(env.to_dict(), pem)) == _statement()


def test_in_toto_statement_v1() -> None:
    st = _statement()
    assert st["_type"] == IN_TOTO_STATEMENT_TYPE == "https://in-toto.io/Statement/v1"
    assert st["subject"] == [{"name": "pkg-1.0.0.tar.gz", "digest": {"sha256": DIGEST}}]
    assert st["predicateType"] == "https://hallmark.dev/manifest/v1"
    for bad in (
        [],
        [{"name": "", "digest": {"sha256": DIGEST}}],
        [{"name": "a", "digest": {}}],
        [{"name": "a", "digest": {"sha256": DIGEST.upper()}}],
        [{"name": "a", "digest": {"sha256": "abc"}}],
    ):
        with pytest.raises(ValueError):
            in_toto_statement(bad, "https://x", {})


def test_manifest_signature_id(signer: LocalSigner) -> None:
    env = _envelope(signer)
    expected = "manifest-key:" + hashlib.sha256(rfc8785.dumps(env)).hexdigest()
    assert manifest_signature_id(env) == expected
    # any change to the envelope (even the signature text) changes the id
    other = sign_envelope(rfc8785.dumps(_statement()), IN_TOTO_PAYLOAD_TYPE, signer)  # ECDSA: new nonce
    assert manifest_signature_id(other) != expected
    with pytest.raises(DsseError):
        manifest_signature_id({"payload": "", "payloadType": "x", "signatures": []})
