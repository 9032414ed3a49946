"""Ceremony and witness repositories on the `state` table, conditional on a version.

Items (``sk = "DOC"``, the JSON document in ``doc`` as in ``dynamo_docs``):

- ``witness#<id>``: a registered witness (``kind=witness``, ``version``).
- ``ceremony#<id>``: a ceremony without its provenance (``kind=ceremony``, ``version``,
  ``status``, ``signatureId`` once signed; ``taskToken`` and ``callbackClaimed`` while the
  execution waits for witnesses). Saves are ``UpdateItem``/``Update`` so that the task
  token, kept outside the document, survives them.
- ``provenance#<signatureId>``: the signed provenance record with its DSSE envelope
  (``kind=provenance``, ``ceremonyId``): the one stored copy; a ceremony read joins it back.
- ``artifact-tier#<id>``: an artifact's current tier (``kind=artifact``, ``tier``).

Saving a ceremony, its provenance and the artifacts' new tiers is one ``TransactWriteItems``:
a version condition on the ceremony, and on each artifact its current tier
(``attribute_not_exists`` for none), so a concurrent change writes nothing (``Conflict``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from botocore.exceptions import ClientError

from hallmark.ceremony.models import ArtifactProvenance, Ceremony, ProvenanceAttestation, Witness
from hallmark.ceremony.ports import TierAward
from hallmark.errors import Conflict, NotFound

SK = "DOC"


def ceremony_key(ceremony_id: str) -> dict[str, str]:
    return {"pk": f"ceremony#{ceremony_id}", "sk": SK}


def provenance_key(signature_id: str) -> dict[str, str]:
    return {"pk": f"provenance#{signature_id}", "sk": SK}


def artifact_key(artifact_id: str) -> dict[str, str]:
    return {"pk": f"artifact-tier#{artifact_id}", "sk": SK}


def witness_key(witness_id: str) -> dict[str, str]:
    return {"pk": f"witness#{witness_id}", "sk": SK}


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _reasons(exc: ClientError) -> list[str]:
    return [str(r.get("Code", "None")) for r in exc.response.get("CancellationReasons", [])]


class DynamoWitnessRepository:
    """``WitnessRepository`` on the state table (boto3 ``Table`` resource)."""

    def __init__(self, table: Any) -> None:
        self.table = table

    def get(self, witness_id: str) -> Witness | None:
        item = self.table.get_item(Key=witness_key(witness_id), ConsistentRead=True).get("Item")
        return Witness.model_validate(json.loads(item["doc"])) if item else None

    def put(self, witness: Witness, *, expected_version: int | None) -> None:
        item = {**witness_key(witness.witness_id), "kind": "witness", "version": witness.version,
                "doc": json.dumps(witness.to_json_dict(), sort_keys=True)}
        if expected_version is None:
            cond: dict[str, Any] = {"ConditionExpression": "attribute_not_exists(pk)"}
        else:
            cond = {"ConditionExpression": "version = :v", "ExpressionAttributeValues": {":v": expected_version}}
        try:
            self.table.put_item(Item=item, **cond)
        except ClientError as exc:
            if _code(exc) == "ConditionalCheckFailedException":
                raise Conflict("witness changed concurrently", {"witnessId": witness.witness_id}) from exc
            raise


class DynamoCeremonyRepository:
    """``CeremonyRepository`` and ``TaskTokens`` on the state table (boto3 ``Table`` resource)."""

    def __init__(self, table: Any) -> None:
        self.table = table
        self.client = table.meta.client  # the resource's client: plain Python values in and out
        self.name = str(table.name)

    # ------------------------------------------------------------------ ceremonies
    def get(self, ceremony_id: str) -> Ceremony | None:
        item = self.table.get_item(Key=ceremony_key(ceremony_id), ConsistentRead=True).get("Item")
        if not item:
            return None
        doc: dict[str, Any] = json.loads(item["doc"])
        signature_id = item.get("signatureId")
        doc["provenance"] = self._attestation(str(signature_id)) if signature_id else None
        return Ceremony.model_validate(doc)

    def create(self, ceremony: Ceremony) -> None:
        item = {**ceremony_key(ceremony.ceremony_id), "kind": "ceremony", "version": ceremony.version,
                "status": ceremony.status, "doc": self._doc(ceremony)}
        try:
            self.table.put_item(Item=item, ConditionExpression="attribute_not_exists(pk)")
        except ClientError as exc:
            if _code(exc) == "ConditionalCheckFailedException":
                raise Conflict(f"ceremony {ceremony.ceremony_id!r} already exists", {"id": ceremony.ceremony_id}) from exc
            raise

    def save(self, ceremony: Ceremony, *, expected_version: int, awards: Sequence[TierAward] = ()) -> None:
        update = self._ceremony_update(ceremony, expected_version)
        items: list[dict[str, Any]] = [{"Update": update}]
        if ceremony.provenance is not None:
            items.append({"Put": self._provenance_put(ceremony.ceremony_id, ceremony.provenance)})
        items += [{"Put": self._award_put(award)} for award in awards]
        try:
            if len(items) == 1:
                self.client.update_item(**update)
            else:
                self.client.transact_write_items(TransactItems=items)
        except ClientError as exc:
            code = _code(exc)
            if code not in ("ConditionalCheckFailedException", "TransactionCanceledException"):
                raise
            reasons = _reasons(exc)
            failed_awards = [a.record.artifact_id for a, r in zip(awards, reasons[len(items) - len(awards):],
                                                                   strict=False) if r == "ConditionalCheckFailed"]
            if failed_awards:
                raise Conflict("artifact tier changed concurrently", {"artifacts": failed_awards}) from exc
            if self.table.get_item(Key=ceremony_key(ceremony.ceremony_id)).get("Item") is None:
                raise NotFound("ceremony", ceremony.ceremony_id) from exc
            raise Conflict("ceremony changed concurrently", {"id": ceremony.ceremony_id,
                                                             "expected": expected_version}) from exc

    def artifact(self, artifact_id: str) -> ArtifactProvenance | None:
        item = self.table.get_item(Key=artifact_key(artifact_id), ConsistentRead=True).get("Item")
        return ArtifactProvenance.model_validate(json.loads(item["doc"])) if item else None

    def provenance(self, signature_id: str) -> ProvenanceAttestation | None:
        doc = self._attestation(signature_id)
        return ProvenanceAttestation.model_validate(doc) if doc else None

    def provenance_item(self, signature_id: str) -> dict[str, Any] | None:
        """The stored provenance item as it is (``ceremonyId``, ``doc``) for readers."""
        item: dict[str, Any] | None = self.table.get_item(Key=provenance_key(signature_id),
                                                          ConsistentRead=True).get("Item")
        return item

    # ------------------------------------------------------------------ task tokens
    def attach_task_token(self, ceremony_id: str, token: str) -> None:
        try:
            self.table.update_item(Key=ceremony_key(ceremony_id), UpdateExpression="SET taskToken = :t REMOVE callbackClaimed",
                                   ConditionExpression="attribute_exists(pk)", ExpressionAttributeValues={":t": token})
        except ClientError as exc:
            if _code(exc) == "ConditionalCheckFailedException":
                raise NotFound("ceremony", ceremony_id) from exc
            raise

    def claim_task_token(self, ceremony_id: str) -> str | None:
        try:
            resp = self.table.update_item(
                Key=ceremony_key(ceremony_id), UpdateExpression="SET callbackClaimed = :yes",
                ConditionExpression="attribute_exists(taskToken) AND #status = :witnessed"
                                    " AND attribute_not_exists(callbackClaimed)",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={":yes": True, ":witnessed": "Witnessed"},
                ReturnValues="ALL_NEW",
            )
        except ClientError as exc:
            if _code(exc) == "ConditionalCheckFailedException":
                return None
            raise
        return str(resp["Attributes"]["taskToken"])

    def release_task_token(self, ceremony_id: str) -> None:
        self.table.update_item(Key=ceremony_key(ceremony_id), UpdateExpression="REMOVE callbackClaimed")

    # ------------------------------------------------------------------ internals
    @staticmethod
    def _doc(ceremony: Ceremony) -> str:
        doc = ceremony.to_json_dict()
        doc.pop("provenance", None)  # stored once, in its own item
        return json.dumps(doc, sort_keys=True)

    def _attestation(self, signature_id: str) -> dict[str, Any] | None:
        item = self.provenance_item(signature_id)
        return dict(json.loads(item["doc"])) if item else None

    def _ceremony_update(self, ceremony: Ceremony, expected_version: int) -> dict[str, Any]:
        sets = ["doc = :doc", "version = :new", "#status = :status"]
        values: dict[str, Any] = {":doc": self._doc(ceremony), ":new": ceremony.version, ":status": ceremony.status,
                                  ":expected": expected_version}
        if ceremony.provenance is not None:
            sets.append("signatureId = :sig")
            values[":sig"] = ceremony.provenance.signature_id
        return {
            "TableName": self.name, "Key": ceremony_key(ceremony.ceremony_id),
            "UpdateExpression": "SET " + ", ".join(sets),
            "ConditionExpression": "attribute_exists(pk) AND version = :expected",
            "ExpressionAttributeNames": {"#status": "status"}, "ExpressionAttributeValues": values,
        }

    def _provenance_put(self, ceremony_id: str, attestation: ProvenanceAttestation) -> dict[str, Any]:
        return {
            "TableName": self.name,
            "Item": {**provenance_key(attestation.signature_id), "kind": "provenance", "ceremonyId": ceremony_id,
                     "tier": str(attestation.record.get("tier")),
                     "doc": json.dumps(attestation.to_json_dict(), sort_keys=True)},
            # written once per signature; a later save of the same ceremony rewrites the same item
            "ConditionExpression": "attribute_not_exists(pk) OR ceremonyId = :cid",
            "ExpressionAttributeValues": {":cid": ceremony_id},
        }

    def _award_put(self, award: TierAward) -> dict[str, Any]:
        record = award.record
        put: dict[str, Any] = {
            "TableName": self.name,
            "Item": {**artifact_key(record.artifact_id), "kind": "artifact", "tier": record.tier,
                     "version": record.version, "doc": json.dumps(record.to_json_dict(), sort_keys=True)},
        }
        if award.from_tier is None:
            put["ConditionExpression"] = "attribute_not_exists(pk)"
        else:
            put["ConditionExpression"] = "tier = :from"
            put["ExpressionAttributeValues"] = {":from": award.from_tier}
        return put


# ---------------------------------------------------------------------- composition for handlers
