"""The privacy vault's ports on AWS: subject records in the state table, data keys from KMS.

Items (state table, ``sk = "PRIVACY"``): ``pk = "subject#<id>"`` holds the pseudonym and the
KMS-wrapped data key; ``pk = "pseudonym#<psn>"`` the reverse link (for readers and bundles).
Erasure deletes both. DynamoDB point-in-time recovery keeps deleted items restorable for its
window (up to 35 days): docs/privacy.md says what that means and what to set.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from hallmark.privacy.vault import SubjectRecord

SK = "PRIVACY"
CONTEXT = {"purpose": "hallmark/privacy/data-key"}


class DynamoSubjectStore:
    def __init__(self, table: Any) -> None:
        self.table = table

    def get(self, subject_id: str) -> SubjectRecord | None:
        item = self.table.get_item(Key={"pk": f"subject#{subject_id}", "sk": SK}, ConsistentRead=True).get("Item")
        if not item:
            return None
        raw = item["wrappedKey"]  # boto3's Binary (``.value``) or bytes
        return SubjectRecord(subject_id, str(item["pseudonym"]), bytes(getattr(raw, "value", raw)))

    def by_pseudonym(self, pseudonym: str) -> SubjectRecord | None:
        item = self.table.get_item(Key={"pk": f"pseudonym#{pseudonym}", "sk": SK}, ConsistentRead=True).get("Item")
        if not item:
            return None
        record = self.get(str(item["subjectId"]))
        return record if record is not None and record.pseudonym == pseudonym else None

    def create(self, record: SubjectRecord) -> SubjectRecord:
        try:
            self.table.put_item(Item={"pk": f"subject#{record.subject_id}", "sk": SK, "kind": "privacy-subject",
                                      "pseudonym": record.pseudonym, "wrappedKey": record.wrapped_key},
                                ConditionExpression="attribute_not_exists(pk)")
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            stored = self.get(record.subject_id)
            if stored is None:  # erased in between: refuse rather than guess
                raise
            return stored
        self.table.put_item(Item={"pk": f"pseudonym#{record.pseudonym}", "sk": SK, "kind": "privacy-pseudonym",
                                  "subjectId": record.subject_id})
        return record

    def delete(self, record: SubjectRecord) -> None:
        self.table.delete_item(Key={"pk": f"pseudonym#{record.pseudonym}", "sk": SK})
        self.table.delete_item(Key={"pk": f"subject#{record.subject_id}", "sk": SK})


class KmsDataKeys:
    """256-bit data keys from KMS ``GenerateDataKey``, unwrapped by ``Decrypt`` (same key, same context)."""

    def __init__(self, kms: Any, key_id: str) -> None:
        self._kms = kms
        self._key_id = key_id

    def generate(self) -> tuple[bytes, bytes]:
        out = self._kms.generate_data_key(KeyId=self._key_id, KeySpec="AES_256", EncryptionContext=CONTEXT)
        return bytes(out["Plaintext"]), bytes(out["CiphertextBlob"])

    def unwrap(self, wrapped: bytes) -> bytes:
        return bytes(self._kms.decrypt(CiphertextBlob=wrapped, KeyId=self._key_id,
                                       EncryptionContext=CONTEXT)["Plaintext"])


_TOKEN = "A-Za-z0-9._@-"  # as hallmark.privacy.personal: ':' separates tokens (wallet:<id>:EUR)
WITHDRAWN_KINDS = frozenset({"proof"})  # the person's signed purchase proofs: rewriting would forge them, so they go
#: signed records that attest for others (a ceremony's provenance names its witnesses): kept as signed
RETAINED_PREFIXES = ("provenance#", "ceremony#")


class DynamoStateRecords:
    """``StateRecords`` on the state table: a full scan (an erasure is rare and governed), each item
    naming the person rewritten with the pseudonym in its place (keys included: a moved item is
    written anew and the old one deleted), their signed purchase proofs deleted, signed ceremony
    records (which attest for others) kept."""

    def __init__(self, table: Any) -> None:
        self.table = table

    def scrub(self, subject_id: str, pseudonym: str) -> int:
        import re

        pattern = re.compile(f"(?<![{_TOKEN}]){re.escape(subject_id)}(?![{_TOKEN}])")

        def sub(value: Any) -> Any:
            if isinstance(value, str):
                return pattern.sub(pseudonym, value)
            if isinstance(value, dict):
                return {sub(k): sub(v) for k, v in value.items()}
            if isinstance(value, list):
                return [sub(v) for v in value]
            return value

        def names(value: Any) -> bool:
            if isinstance(value, str):
                return pattern.search(value) is not None
            if isinstance(value, dict):
                return any(names(k) or names(v) for k, v in value.items())
            if isinstance(value, list):
                return any(names(v) for v in value)
            return False

        changed = 0
        kwargs: dict[str, Any] = {"ConsistentRead": True}
        while True:
            page = self.table.scan(**kwargs)
            for item in page.get("Items", []):
                if item.get("sk") == SK or str(item.get("pk", "")).startswith(RETAINED_PREFIXES) or not names(item):
                    continue
                key = {"pk": item["pk"], "sk": item["sk"]}
                if item.get("kind") in WITHDRAWN_KINDS:
                    self.table.delete_item(Key=key)
                else:
                    new = sub(item)
                    self.table.put_item(Item=new)
                    if (new["pk"], new["sk"]) != (key["pk"], key["sk"]):
                        self.table.delete_item(Key=key)
                changed += 1
            if "LastEvaluatedKey" not in page:
                return changed
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
