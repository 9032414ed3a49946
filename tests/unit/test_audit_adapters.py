"""The AWS adapters of the audit log and signing, on moto: KmsSigner (ECC_NIST_P256 keys),
DynamoAuditStore (one table, transactional conditional appends) and SqsAuditEmitter (FIFO).

moto 5.2.1 notes (checked here): KMS ignores ``MessageType=DIGEST`` (KmsSigner detects and
falls back to RAW); ``GetPublicKey`` returns the bare key id where AWS returns the ARN;
DynamoDB ``TransactWriteItems`` deep-copies the whole table per call (O(table) per append)
and restores that copy on a cancelled transaction, so it is not atomic across threads: the
threaded test serializes every call on the test side (races between reading the head and
the conditional write still happen and are asserted). 3 threads x 300 events take ~5 min
on moto, so that size runs with HALLMARK_SLOW_TESTS=1; the default run does 3 x 40.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import math
import os
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, utils
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from moto import mock_aws
from securesystemslib.dsse import Envelope
from securesystemslib.signer import SSlibKey

from hallmark.adapters.dynamo_audit_store import DynamoAuditStore
from hallmark.adapters.kms_signer import KmsSigner, KmsSigningError
from hallmark.adapters.sqs_audit_emitter import SqsAuditEmitter, parse_audit_message
from hallmark.audit.checkpoints import CheckpointPolicy
from hallmark.audit.events import GENESIS, AuditEvent, UnknownEventType
from hallmark.audit.log import AuditLog
from hallmark.audit.replay import verify_export
from hallmark.audit.store import CheckpointConflict, CheckpointRecord, HeadMoved
from hallmark.dsse import IN_TOTO_PAYLOAD_TYPE, sign_envelope, verify_envelope
from hallmark.signing import load_public_key, public_key_pem, verify_signature
from tests.fakes.audit import InMemoryAuditStore
from tests.fakes.signing import LocalSigner

REGION = "us-east-1"
TS = "2026-11-22T20:11:00.000Z"


@pytest.fixture()
def aws() -> Iterator[None]:
    with mock_aws():
        yield


@pytest.fixture()
def kms(aws: None) -> Any:
    return boto3.client("kms", region_name=REGION)


@pytest.fixture()
def key_id(kms: Any) -> str:
    meta = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY", Description="audit")["KeyMetadata"]
    return str(meta["KeyId"])


@pytest.fixture()
def table(aws: None) -> Any:
    ddb = boto3.resource("dynamodb", region_name=REGION)
    return ddb.create_table(
        TableName="audit",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )


def _event(seq: int, prev: str, eid: str | None = None, chain: str = "release", **data: Any) -> AuditEvent:
    return AuditEvent.create(
        id=eid or f"e{seq}", chain=chain, seq=seq, ts=TS, type="PackageSubmitted", actor="a", subject="s",
        data=data, prevHash=prev,
    )  # fmt: skip


def _client_error(code: str, op: str = "Sign", **extra: Any) -> ClientError:
    response: Any = {"Error": {"Code": code, "Message": code}, **extra}
    return ClientError(response, op)


# ---- KMS -------------------------------------------------------------------------------------
class CountingKms:
    def __init__(self, real: Any) -> None:
        self.real = real
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def get_public_key(self, **kw: Any) -> Any:
        self.calls.append(("get_public_key", kw))
        return self.real.get_public_key(**kw)

    def sign(self, **kw: Any) -> Any:
        self.calls.append(("sign", kw))
        return self.real.sign(**kw)


def test_kms_signer_signs_and_caches_the_public_key(kms: Any, key_id: str) -> None:
    counting = CountingKms(kms)
    signer = KmsSigner(counting, key_id)  # type: ignore[arg-type]
    # GetPublicKey's KeyId: the key ARN on AWS, the bare id on moto
    assert signer.key_id == kms.get_public_key(KeyId=key_id)["KeyId"]
    pem = signer.public_key_pem()
    assert pem.startswith(b"-----BEGIN PUBLIC KEY-----")
    der = kms.get_public_key(KeyId=key_id)["PublicKey"]
    assert load_public_key(pem).public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo) == der
    sig = signer.sign(b"checkpoint bytes")
    assert verify_signature(pem, b"checkpoint bytes", sig)
    assert not verify_signature(pem, b"other bytes", sig)
    signer.sign(b"again")
    assert [c[0] for c in counting.calls].count("get_public_key") == 1
    assert [c[1]["MessageType"] for c in counting.calls if c[0] == "sign"] == ["RAW", "RAW"]


def test_kms_signer_large_messages_on_moto_fall_back_to_raw(kms: Any, key_id: str) -> None:
    counting = CountingKms(kms)
    signer = KmsSigner(counting, key_id)  # type: ignore[arg-type]
    big = b"x" * 10_000
    sig = signer.sign(big)
    assert verify_signature(signer.public_key_pem(), big, sig)
    # DIGEST first (what real KMS needs beyond 4 KiB); moto ignores MessageType, so the
    # signature does not verify and the signer retries RAW, which moto accepts at any size.
    assert [c[1]["MessageType"] for c in counting.calls if c[0] == "sign"] == ["DIGEST", "RAW"]
    always_raw = CountingKms(kms)
    KmsSigner(always_raw, key_id, raw_max_bytes=None).sign(big)  # type: ignore[arg-type]
    assert [c[1]["MessageType"] for c in always_raw.calls if c[0] == "sign"] == ["RAW"]


class DigestKms:
    """KMS with real DIGEST semantics (sign the given SHA-256 as a pre-hash), for the DIGEST path."""

    def __init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.types: list[str] = []

    def get_public_key(self, **kw: Any) -> Any:
        der = self.key.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
        return {
            "KeyId": "arn:aws:kms:us-east-1:111122223333:key/fake",
            "PublicKey": der,
            "KeySpec": "ECC_NIST_P256",
            "KeyUsage": "SIGN_VERIFY",
        }

    def sign(self, *, KeyId: str, Message: bytes, MessageType: str, SigningAlgorithm: str) -> Any:
        self.types.append(MessageType)
        if MessageType == "RAW" and len(Message) > 4096:
            raise _client_error("ValidationException")
        algo: Any = utils.Prehashed(hashes.SHA256()) if MessageType == "DIGEST" else hashes.SHA256()
        return {"Signature": self.key.sign(Message, ec.ECDSA(algo)), "KeyId": KeyId}


def test_kms_signer_digest_path_with_real_kms_semantics() -> None:
    fake = DigestKms()
    signer = KmsSigner(fake, "alias/audit")  # type: ignore[arg-type]
    big = bytes(range(256)) * 40
    sig = signer.sign(big)
    assert fake.types == ["DIGEST"]
    assert verify_signature(public_key_pem(fake.key.public_key()), big, sig)
    assert signer.key_id == "arn:aws:kms:us-east-1:111122223333:key/fake"


class FailingKms(DigestKms):
    def __init__(self, code: str) -> None:
        super().__init__()
        self.code = code

    def sign(self, **kw: Any) -> Any:
        raise _client_error(self.code)


def test_kms_errors(kms: Any) -> None:
    with pytest.raises(KmsSigningError) as err:
        KmsSigner(kms, "1234abcd-12ab-34cd-56ef-1234567890ab").sign(b"x")
    assert err.value.code == "NotFoundException" and not err.value.retriable
    # throttling and transient faults propagate unchanged, for Lambda / SQS to retry
    for code in ("ThrottlingException", "KMSInternalException", "DependencyTimeoutException"):
        with pytest.raises(ClientError) as raw:
            KmsSigner(FailingKms(code), "k").sign(b"x")  # type: ignore[arg-type]
        assert raw.value.response["Error"]["Code"] == code
    with pytest.raises(KmsSigningError):
        KmsSigner(FailingKms("DisabledException"), "k").sign(b"x")  # type: ignore[arg-type]
    rsa = kms.create_key(KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
    with pytest.raises(KmsSigningError):
        KmsSigner(kms, rsa).public_key_pem()


def test_kms_signed_dsse_and_checkpoints_verify_offline(kms: Any, key_id: str) -> None:
    signer = KmsSigner(kms, key_id)
    env = sign_envelope(b'{"_type":"https://in-toto.io/Statement/v1"}', IN_TOTO_PAYLOAD_TYPE, signer)
    pem = signer.public_key_pem()
    assert verify_envelope(env, pem)
    key = SSlibKey.from_crypto(load_public_key(pem), keyid=signer.key_id)
    Envelope.from_dict(json.loads(json.dumps(env))).verify([key], 1)

    log = AuditLog(InMemoryAuditStore(), signer, CheckpointPolicy(4, math.inf))
    for i in range(10):
        log.append("release", f"e{i}", TS, "PackageSubmitted", "a", "s", {"i": i})
    events, ckpts = log.export("release")
    assert [json.loads(c)["keyId"] for c in ckpts] == [signer.key_id] * 2
    assert verify_export(events, ckpts, pem).ok


# ---- DynamoDB --------------------------------------------------------------------------------
def test_dynamo_store_append_read_and_conditions(table: Any) -> None:
    store = DynamoAuditStore(table)
    assert store.head("release") is None and store.get("release", "e1") is None
    data: dict[str, Any] = {
        "f": 0.1,
        "big": 2**53 - 1,
        "neg": -7,
        "s": 'é "q" \n',
        "l": [1.5, None, True],
        "d": {"z": 1},
    }
    e1 = store.append(_event(1, GENESIS, **data))
    assert store.head("release") == (1, e1.hash)
    back = store.get("release", "e1")
    assert back == e1 and back.data == data and back.compute_hash() == e1.hash
    item = table.get_item(Key={"pk": "CHAIN#release", "sk": "EVENT#000000000001"})["Item"]
    assert isinstance(item["data"], str) and json.loads(item["data"]) == data
    assert table.get_item(Key={"pk": "CHAIN#release", "sk": "ID#e1"})["Item"]["seq"] == 1
    assert table.get_item(Key={"pk": "CHAIN#release", "sk": "HEAD"})["Item"]["hash"] == e1.hash

    with pytest.raises(HeadMoved):
        store.append(_event(1, GENESIS, eid="other"))  # seq 1 taken
    with pytest.raises(HeadMoved):
        store.append(_event(2, "f" * 64))  # wrong prevHash
    with pytest.raises(HeadMoved):
        store.append(_event(3, e1.hash))  # gap
    e2 = store.append(_event(2, e1.hash))
    # the id is already on the chain: the stored event comes back, nothing else changes
    assert store.append(_event(3, e2.hash, eid="e1")) == e1
    assert store.head("release") == (2, e2.hash)
    assert table.get_item(Key={"pk": "CHAIN#release", "sk": "EVENT#000000000003"}).get("Item") is None
    assert [e.seq for e in store.events("release")] == [1, 2]
    assert [e.seq for e in store.events("release", 2)] == [2]
    assert list(store.events("release", 3)) == []
    assert list(store.events("market")) == []


def test_dynamo_store_checkpoints(table: Any) -> None:
    store = DynamoAuditStore(table)
    assert store.latest_checkpoint("release") is None
    c1 = {"chain": "release", "seq": 5, "merkleRoot": "a" * 64}
    store.put_checkpoint(CheckpointRecord(c1, ("b" * 64, "c" * 64)), None)
    with pytest.raises(CheckpointConflict):
        store.put_checkpoint(CheckpointRecord({"chain": "release", "seq": 6}, ()), None)
    with pytest.raises(CheckpointConflict):
        store.put_checkpoint(CheckpointRecord({"chain": "release", "seq": 9}, ()), 4)
    with pytest.raises(CheckpointConflict):
        store.put_checkpoint(CheckpointRecord({"chain": "release", "seq": 5}, ()), 5)
    store.put_checkpoint(CheckpointRecord({"chain": "release", "seq": 9}, ()), 5)
    latest = store.latest_checkpoint("release")
    assert latest is not None and latest.seq == 9
    assert store.get_checkpoint("release", 5) == c1
    assert [c["seq"] for c in store.checkpoints("release")] == [5, 9]


def test_dynamo_store_maps_transaction_failures(table: Any) -> None:
    class Client:
        def __init__(self, error: ClientError) -> None:
            self.error = error

        def transact_write_items(self, **kw: Any) -> None:
            raise self.error

    conflict = _client_error(
        "TransactionCanceledException",
        "TransactWriteItems",
        CancellationReasons=[{"Code": "None"}, {"Code": "None"}, {"Code": "TransactionConflict"}],
    )
    with pytest.raises(HeadMoved):
        DynamoAuditStore(table, client=Client(conflict)).append(_event(1, GENESIS))
    throttled = _client_error("ThrottlingException", "TransactWriteItems")
    with pytest.raises(ClientError):
        DynamoAuditStore(table, client=Client(throttled)).append(_event(1, GENESIS))
    limit = _client_error(
        "TransactionCanceledException",
        "TransactWriteItems",
        CancellationReasons=[{"Code": "None"}, {"Code": "None"}, {"Code": "ThrottlingError"}],
    )
    with pytest.raises(ClientError):
        DynamoAuditStore(table, client=Client(limit)).append(_event(1, GENESIS))


def test_audit_log_on_dynamo_exports_a_verifiable_chain(table: Any) -> None:
    signer = LocalSigner.generate(key_id="audit-key")
    log = AuditLog(DynamoAuditStore(table), signer, CheckpointPolicy(7, math.inf))
    for i in range(1, 23):
        log.append("release", f"id-{i}", TS, "ValidationPassed", "v", f"pkg-{i}", {"i": i, "score": i / 3})
    assert log.append("release", "id-3", TS, "ValidationPassed", "v", "x", {}).seq == 3  # duplicate delivery
    log.checkpoint_now("release")
    events, ckpts = log.export("release")
    assert len(events) == 22 and [json.loads(c)["seq"] for c in ckpts] == [7, 14, 21, 22]
    assert verify_export(events, ckpts, signer.public_key_pem()).ok
    assert log.inclusion_proof("release", 9).verify(signer.public_key_pem())
    assert log.consistency_proof("release", 7, 22).verify(signer.public_key_pem())


class SerializedTable:
    """Serializes every DynamoDB call (moto's transactions are not atomic across threads)."""

    def __init__(self, table: Any, lock: threading.Lock) -> None:
        self._table, self._lock = table, lock
        self.name = table.name
        self.meta = type("Meta", (), {"client": SerializedClient(table.meta.client, lock)})()

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._table, name)

        def call(*a: Any, **kw: Any) -> Any:
            with self._lock:
                return attr(*a, **kw)

        return call


class SerializedClient(SerializedTable):
    def __init__(self, client: Any, lock: threading.Lock) -> None:
        self._table, self._lock = client, lock


_MOTO_STRESS = pytest.mark.skipif(
    not os.environ.get("HALLMARK_SLOW_TESTS"),
    reason="about 5 minutes and 5 GB on moto (it deep-copies the table per transaction): HALLMARK_SLOW_TESTS=1",
)


@pytest.mark.parametrize("per_thread", [40, pytest.param(300, marks=[pytest.mark.slow, _MOTO_STRESS])])
def test_three_threads_on_moto_make_one_chain(table: Any, per_thread: int) -> None:
    signer = LocalSigner.generate()
    lock = threading.Lock()
    store = DynamoAuditStore(SerializedTable(table, lock))
    lost = [0]
    original = store.append

    def counting_append(event: AuditEvent) -> AuditEvent:
        try:
            return original(event)
        except HeadMoved:
            lost[0] += 1
            raise

    store.append = counting_append  # type: ignore[method-assign]
    log = AuditLog(store, signer, CheckpointPolicy(50, math.inf))

    def work(t: int) -> None:
        for i in range(per_thread):
            log.append("ceremony", f"t{t}-{i}", TS, "WitnessAdded", f"w{t}", "c-1", {"t": t, "i": i})

    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    try:
        threads = [threading.Thread(target=work, args=(t,)) for t in range(3)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
    finally:
        sys.setswitchinterval(old)
    events = list(store.events("ceremony"))
    assert [e.seq for e in events] == list(range(1, 3 * per_thread + 1))
    assert len({e.id for e in events}) == 3 * per_thread
    assert all(b.prevHash == a.hash for a, b in itertools.pairwise(events))
    assert lost[0] > 0, "the threads never raced"
    log.checkpoint_now("ceremony")
    ev_lines, ck_lines = log.export("ceremony")
    assert verify_export(ev_lines, ck_lines, signer.public_key_pem()).ok


# ---- SQS -------------------------------------------------------------------------------------
@pytest.fixture()
def queue(aws: None) -> tuple[Any, str]:
    sqs = boto3.client("sqs", region_name=REGION)
    url = sqs.create_queue(QueueName="audit.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    return sqs, url


def _receive(sqs: Any, url: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    while True:
        msgs = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, MessageSystemAttributeNames=["All"]
        ).get("Messages", [])
        if not msgs:
            return out
        for m in msgs:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
        out += msgs


def test_sqs_emitter_message_shape(queue: tuple[Any, str]) -> None:
    sqs, url = queue
    emitter = SqsAuditEmitter(sqs, url, clock=lambda: datetime(2026, 11, 22, 20, 11, tzinfo=UTC))
    eid = emitter.emit(
        chain="release", type="PackageSubmitted", actor="alice", subject="pkg-1", data={"size": 3}
    )
    assert len(eid) == 36  # uuid4
    msgs = _receive(sqs, url)
    assert len(msgs) == 1
    body = json.loads(msgs[0]["Body"])
    assert body == {
        "id": eid,
        "chain": "release",
        "ts": "2026-11-22T20:11:00.000Z",
        "type": "PackageSubmitted",
        "actor": "alice",
        "subject": "pkg-1",
        "data": {"size": 3},
    }
    assert msgs[0]["Attributes"]["MessageGroupId"] == "release"
    assert msgs[0]["Attributes"]["MessageDeduplicationId"] == eid
    assert parse_audit_message(msgs[0]["Body"]) == body


def test_sqs_emitter_deterministic_ids_deduplicate(queue: tuple[Any, str]) -> None:
    sqs, url = queue
    emitter = SqsAuditEmitter(sqs, url)
    for _ in range(3):  # a retried step emits the same event id
        assert (
            emitter.emit(
                chain="governance",
                type="ApprovalRecorded",
                actor="a1",
                subject="u-1",
                data={},
                event_id="exec-1:approve:a1",
            )
            == "exec-1:approve:a1"
        )
    emitter.emit(
        chain="governance",
        type="ApprovalRecorded",
        actor="a2",
        subject="u-1",
        data={},
        event_id="exec-1:approve:a2",
    )
    odd = "exec 1/é"  # not a valid SQS deduplication id: its SHA-256 is used
    emitter.emit(
        chain="governance", type="ApprovalRecorded", actor="a3", subject="u-1", data={}, event_id=odd
    )
    msgs = _receive(sqs, url)
    assert [json.loads(m["Body"])["actor"] for m in msgs] == ["a1", "a2", "a3"]
    assert msgs[2]["Attributes"]["MessageDeduplicationId"] == hashlib.sha256(odd.encode()).hexdigest()
    # the writer side: a redelivered message is appended once
    log = AuditLog(InMemoryAuditStore(), LocalSigner.generate())
    for m in [*msgs, msgs[0]]:
        body = parse_audit_message(m["Body"])
        log.append(
            body["chain"], body["id"], body["ts"], body["type"], body["actor"], body["subject"], body["data"]
        )
    assert [e.actor for e in log.store.events("governance")] == ["a1", "a2", "a3"]


def test_sqs_emitter_rejects_bad_input(queue: tuple[Any, str]) -> None:
    sqs, url = queue
    emitter = SqsAuditEmitter(sqs, url)
    with pytest.raises(UnknownEventType):
        emitter.emit(chain="release", type="Nope", actor="a", subject="s", data={})
    with pytest.raises(ValueError):
        emitter.emit(chain="bad chain", type="PackageSubmitted", actor="a", subject="s", data={})
    with pytest.raises(ValueError):
        parse_audit_message('{"id": "x"}')
    assert _receive(sqs, url) == []


def test_signature_base64_is_der(kms: Any, key_id: str) -> None:
    signer = KmsSigner(kms, key_id)
    sig = signer.sign(b"m")
    r, s = utils.decode_dss_signature(sig)
    assert r > 0 and s > 0
    assert base64.b64decode(base64.b64encode(sig)) == sig
