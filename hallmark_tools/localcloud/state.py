"""``hallmark local serve --state DIR``: the local cloud's state and KMS keys across restarts.

At a clean stop (SIGINT/SIGTERM: the in-flight requests have finished, the queues have drained,
then the cloud starts nothing new and the handlers still running finish: ``LocalCloud.quiesce``) :meth:`LocalState.save` writes ``DIR/state.json`` (atomically: a temporary file,
then a rename):

* every KMS key of the topology: its key id, ARN, symmetric key material and, for a signing key,
  its P-256 private key (a local development key, kept in DIR with mode 0600; never in the repo);
* every item of every table (DynamoDB JSON, binary values base64);
* every object version of every bucket, with its version id, metadata, checksum and object-lock
  settings (pinned artifacts are read by version id, so ids must survive);
* the messages still queued (none after a clean drain, normally).

At the next boot with the same DIR the cloud provisions the topology as always, then
:meth:`adopt_key` gives each new KMS key its saved id, ARN and material (before anything else
refers to the key, so state machines, aliases and the handlers' environment see the saved ARN),
and :meth:`restore` puts the items, objects and messages back, without firing S3 notifications
(nothing is re-released). The audit chains continue where they stopped and verify with the
public keys exported before the restart.

What does not survive: Step Functions executions still running at the stop (a package waiting
in ``AwaitingApproval``, an emergency upgrade's ratification wait). ``hallmark local serve``
names them when it saves; a decision that would resume one after the restart is recorded and
answered 409 ``execution_lost`` (what to do: submit the package again), not a 500. A state file written by another moto version or topology is refused
at boot with the reason (fail closed: nothing is half-restored).
"""

from __future__ import annotations

import base64
import json
import os
import pickle
import time
from pathlib import Path
from typing import Any

FORMAT = "hallmark.localstate/1"
STATE_FILE = "state.json"
S3_FILE = "s3.pickle"  # moto's own (picklable) object versions: bytes, version ids, lock settings


class StateError(Exception):
    """The saved state cannot be restored into this cloud (said why)."""


def _moto_version() -> str:
    from importlib.metadata import version

    return version("moto")


def _encode(value: Any) -> Any:
    if isinstance(value, bytes | bytearray):
        return {"$b64": base64.b64encode(bytes(value)).decode()}
    if isinstance(value, dict):
        return {k: _encode(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_encode(v) for v in value]
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"$b64"}:
            return base64.b64decode(value["$b64"])
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


def _kms_backend() -> Any:
    from moto.kms.models import kms_backends

    from hallmark_tools.localcloud.cloud import ACCOUNT, REGION

    return kms_backends[ACCOUNT][REGION]


def _s3_backend() -> Any:
    from moto.s3.models import s3_backends

    from hallmark_tools.localcloud.cloud import ACCOUNT

    return s3_backends[ACCOUNT]["global"]


class LocalState:
    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.saved: dict[str, Any] | None = None
        self._objects: dict[str, list[tuple[str, list[Any]]]] = {}
        path = self.directory / STATE_FILE
        if path.exists():
            try:
                saved = json.loads(path.read_text())
            except ValueError as exc:
                raise StateError(f"{path} is not a saved local cloud state: {exc}") from None
            if not isinstance(saved, dict) or saved.get("format") != FORMAT:
                raise StateError(f"{path} is not a {FORMAT} state file")
            if saved.get("moto") != _moto_version():
                raise StateError(f"{path} was saved by moto {saved.get('moto')}, this is moto {_moto_version()}: "
                                 "start with another --state directory")
            objects = self.directory / S3_FILE
            if objects.exists():
                self._objects = pickle.loads(objects.read_bytes())
            self.saved = saved

    @property
    def restoring(self) -> bool:
        return self.saved is not None

    # ------------------------------------------------------------------ boot
    def adopt_key(self, name: str, meta: dict[str, Any]) -> dict[str, Any]:
        """The just-created key ``meta`` takes the saved key ``name``'s id, ARN and material."""
        saved = (self.saved or {}).get("kms", {}).get(name)
        if saved is None:
            return meta
        backend = _kms_backend()
        key = backend.keys.pop(meta["KeyId"])
        if key.key_spec != saved["spec"]:
            raise StateError(f"key {name}: saved as {saved['spec']}, the topology declares {key.key_spec}")
        key.id, key.arn = saved["id"], saved["arn"]
        key.key_material = base64.b64decode(saved["material"])
        if saved.get("privateKey"):
            from cryptography.hazmat.primitives import serialization

            key.private_key.private_key = serialization.load_pem_private_key(saved["privateKey"].encode(), None)
        backend.keys[key.id] = key
        return {**meta, "KeyId": key.id, "Arn": key.arn}

    def restore(self, cloud: Any) -> dict[str, int]:
        """Put the saved items, objects and messages into the freshly provisioned ``cloud``."""
        if self.saved is None:
            return {}
        ddb, sqs = cloud.client("dynamodb"), cloud.client("sqs")
        counts = {"items": 0, "objects": 0, "messages": 0}
        for table, items in self.saved.get("tables", {}).items():
            for start in range(0, len(items), 25):
                chunk = [{"PutRequest": {"Item": _decode(i)}} for i in items[start:start + 25]]
                pending: dict[str, Any] = {table: chunk}
                while pending:
                    pending = ddb.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
            counts["items"] += len(items)
        backend = _s3_backend()
        for bucket_name, keys in self._objects.items():
            bucket = backend.get_bucket(bucket_name)
            for key_name, versions in keys:
                bucket.keys.setlist(key_name, versions)
                counts["objects"] += len(versions)
        for queue, messages in self.saved.get("queues", {}).items():
            url = sqs.get_queue_url(QueueName=queue)["QueueUrl"]
            for m in messages:
                extra = {k: v for k, v in (("MessageGroupId", m.get("group")),
                                           ("MessageDeduplicationId", m.get("dedup"))) if v}
                sqs.send_message(QueueUrl=url, MessageBody=m["body"], **extra)
            counts["messages"] += len(messages)
        return counts

    # ------------------------------------------------------------------ stop
    def save(self, cloud: Any, drain_timeout_s: float = 30.0) -> dict[str, Any]:
        """Write the cloud's state to DIR (after the queues drained, up to ``drain_timeout_s``)."""
        from cryptography.hazmat.primitives import serialization

        sqs = cloud.client("sqs")
        queues = {cloud.physical_name("queue", n) for q in cloud.topology.queues for n in (q.name, q.dlq_name)}
        deadline = time.monotonic() + drain_timeout_s
        while time.monotonic() < deadline and self._queued(sqs, queues):
            time.sleep(0.2)
        # nothing new starts (no scheduled checkpointer run halfway through the snapshot)
        cloud.quiesce(timeout=max(5.0, deadline - time.monotonic()))
        kms, backend = cloud.client("kms"), _kms_backend()
        keys: dict[str, Any] = {}
        for spec in cloud.topology.keys:
            key = backend.keys[kms.describe_key(KeyId=f"alias/hallmark-{spec.name}")["KeyMetadata"]["KeyId"]]
            private = getattr(key.private_key, "private_key", None)
            pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption()).decode() if key.key_spec != "SYMMETRIC_DEFAULT" \
                and private is not None else None
            keys[spec.name] = {"id": key.id, "arn": key.arn, "spec": key.key_spec,
                               "material": base64.b64encode(key.key_material).decode(), "privateKey": pem}
        ddb = cloud.client("dynamodb")
        tables: dict[str, list[Any]] = {}
        for spec in cloud.topology.tables:
            name = cloud.physical_name("table", spec.name)
            items: list[Any] = []
            for page in ddb.get_paginator("scan").paginate(TableName=name, ConsistentRead=True):
                items += [_encode(i) for i in page.get("Items", [])]
            tables[name] = items
        s3 = _s3_backend()
        from hallmark_tools.topology import env_name

        objects = {bucket: list(s3.get_bucket(bucket).keys.iterlists())
                   for bucket in (cloud.resources[env_name("bucket", b.name)] for b in cloud.topology.buckets)}
        pending = self._messages(queues)
        running = self._running_executions(cloud)
        doc = {"format": FORMAT, "moto": _moto_version(), "savedAt": time.time(), "kms": keys, "tables": tables,
               "queues": pending, "lostExecutions": running}
        self.directory.mkdir(parents=True, exist_ok=True)
        os.chmod(self.directory, 0o700)
        self._write(S3_FILE, pickle.dumps(objects))
        self._write(STATE_FILE, json.dumps(doc).encode())
        return {"items": sum(len(v) for v in tables.values()),
                "objects": sum(len(v) for keys_ in objects.values() for _, v in keys_),
                "messages": sum(len(v) for v in pending.values()), "lostExecutions": running}

    def _write(self, name: str, data: bytes) -> None:
        tmp = self.directory / f".{name}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.directory / name)

    @staticmethod
    def _queued(sqs: Any, queues: set[str]) -> bool:
        for name in queues:
            url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
            attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[
                "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
            if name.removesuffix(".fifo").endswith("-dlq"):
                continue  # dead letters stay until an operator redrives them
            if int(attrs["ApproximateNumberOfMessages"]) or int(attrs["ApproximateNumberOfMessagesNotVisible"]):
                return True
        return False

    @staticmethod
    def _messages(queues: set[str]) -> dict[str, list[dict[str, Any]]]:
        from moto.sqs.models import sqs_backends

        from hallmark_tools.localcloud.cloud import ACCOUNT, REGION

        backend = sqs_backends[ACCOUNT][REGION]
        out: dict[str, list[dict[str, Any]]] = {}
        for name in queues:
            queue = backend.queues.get(name)
            messages = [{"body": m.body, "group": m.group_id, "dedup": m.deduplication_id}
                        for m in getattr(queue, "_messages", [])]
            if messages:
                out[name] = messages
        return out

    @staticmethod
    def _running_executions(cloud: Any) -> list[str]:
        sfn = cloud.client("stepfunctions")
        running: list[str] = []
        for sm in cloud.topology.state_machines:
            arn = cloud.arns[("state_machine", sm.name)]
            for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=arn, statusFilter="RUNNING"):
                running += [e["executionArn"] for e in page.get("executions", [])]
        return running
