"""Envelope encryption of deliveries: aws-encryption-sdk over moto's KMS (GenerateDataKey /
Decrypt with a symmetric key), key commitment required, context bound to the order."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws

from hallmark.adapters.encryption import EnvelopeEncryptor
from hallmark.errors import DomainError
from hallmark.market import encryption_context

ARTIFACT = b"\x00artifact bytes\xff" * 1000


@pytest.fixture()
def kms_key(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    for k, v in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                 "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(k, v)
    with mock_aws():
        kms = boto3.client("kms", region_name="us-east-1")
        meta = kms.create_key(KeySpec="SYMMETRIC_DEFAULT", KeyUsage="ENCRYPT_DECRYPT")["KeyMetadata"]
        yield meta["Arn"]


def ctx(order: str = "ord-1") -> dict[str, str]:
    return encryption_context(order, "buyer-1", "sha256:" + "ab" * 32)


def test_roundtrip(kms_key: str) -> None:
    enc = EnvelopeEncryptor(kms_key)
    ciphertext = enc.encrypt(ARTIFACT, ctx())
    assert ARTIFACT not in ciphertext
    assert enc.decrypt(ciphertext, ctx()) == ARTIFACT
    # a fresh data key per message
    assert enc.encrypt(ARTIFACT, ctx()) != ciphertext
    assert len(hashlib.sha256(ciphertext).hexdigest()) == 64


def test_another_orders_context_fails(kms_key: str) -> None:
    enc = EnvelopeEncryptor(kms_key)
    ciphertext = enc.encrypt(ARTIFACT, ctx("ord-1"))
    for expected in (ctx("ord-2"), {**ctx(), "buyer": "someone-else"}, {**ctx(), "extra": "x"}):
        with pytest.raises(DomainError) as err:
            enc.decrypt(ciphertext, expected)
        assert (err.value.code, err.value.http_status) == ("context_mismatch", 403)


@pytest.mark.parametrize("where", ["header", "middle", "tail", "truncate"])
def test_tampered_ciphertext_fails(kms_key: str, where: str) -> None:
    enc = EnvelopeEncryptor(kms_key)
    ciphertext = bytearray(enc.encrypt(ARTIFACT, ctx()))
    if where == "truncate":
        ciphertext = ciphertext[:-40]
    else:
        index = {"header": 40, "middle": len(ciphertext) // 2, "tail": len(ciphertext) - 10}[where]
        ciphertext[index] ^= 0x01
    with pytest.raises(DomainError) as err:
        enc.decrypt(bytes(ciphertext), ctx())
    assert err.value.code == "decryption_failed"


def test_another_key_cannot_decrypt(kms_key: str) -> None:
    ciphertext = EnvelopeEncryptor(kms_key).encrypt(ARTIFACT, ctx())
    other = boto3.client("kms", region_name="us-east-1").create_key()["KeyMetadata"]["Arn"]
    with pytest.raises(DomainError) as err:
        EnvelopeEncryptor(other).decrypt(ciphertext, ctx())
    assert err.value.code == "decryption_failed"


def test_reserved_context_keys_refused(kms_key: str) -> None:
    with pytest.raises(DomainError):
        EnvelopeEncryptor(kms_key).encrypt(b"x", {"aws-crypto-public-key": "x"})
    with pytest.raises(DomainError):
        encryption_context("", "b", "d")
