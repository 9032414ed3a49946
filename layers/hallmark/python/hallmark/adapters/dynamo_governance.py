"""Governance repositories on the `state` table.

Items: approvers ``pk=approver#<id>``; subjects ``pk=<kind>#<id>``; claimed nonces
``pk=nonce#<approver>#<nonce>``. Saving a subject and claiming its nonce is one
TransactWriteItems (a version condition on the subject, attribute_not_exists on the nonce), so
a replayed nonce or a concurrent decision changes nothing.
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from hallmark.errors import Conflict, DomainError
from hallmark.governance.models import ApprovalSubject, Approver, SubjectKind, subject_from_dict
from hallmark.governance.ports import NonceClaim

SK = "DOC"


def _item(pk: str, kind: str, version: int, doc: dict[str, Any]) -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": SK}, "kind": {"S": kind}, "version": {"N": str(version)},
            "doc": {"S": json.dumps(doc, sort_keys=True)}}


def _reasons(exc: ClientError) -> list[str]:
    return [r.get("Code", "None") for r in exc.response.get("CancellationReasons", [])]


class DynamoApproverRepository:
    def __init__(self, client: Any, table_name: str) -> None:
        self.client = client
        self.table = table_name

    def get(self, approver_id: str) -> Approver | None:
        item = self.client.get_item(TableName=self.table, Key={"pk": {"S": f"approver#{approver_id}"}, "sk": {"S": SK}},
                                    ConsistentRead=True).get("Item")
        return Approver.model_validate(json.loads(item["doc"]["S"])) if item else None

    def list_active(self) -> list[Approver]:
        out: list[Approver] = []
        kwargs: dict[str, Any] = {"TableName": self.table, "FilterExpression": "kind = :k",
                                  "ExpressionAttributeValues": {":k": {"S": "approver"}}}
        while True:
            page = self.client.scan(**kwargs)
            out += [Approver.model_validate(json.loads(i["doc"]["S"])) for i in page.get("Items", [])]
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return sorted((a for a in out if a.active), key=lambda a: a.approver_id)

    def put(self, approver: Approver, *, expected_version: int | None) -> None:
        item = _item(f"approver#{approver.approver_id}", "approver", approver.version, approver.to_json_dict())
        if expected_version is None:
            cond: dict[str, Any] = {"ConditionExpression": "attribute_not_exists(pk)"}
        else:
            cond = {"ConditionExpression": "version = :v",
                    "ExpressionAttributeValues": {":v": {"N": str(expected_version)}}}
        try:
            self.client.put_item(TableName=self.table, Item=item, **cond)
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                raise Conflict("approver changed concurrently", {"approverId": approver.approver_id}) from exc
            raise


class DynamoApprovalRepository:
    def __init__(self, client: Any, table_name: str) -> None:
        self.client = client
        self.table = table_name

    def get(self, kind: SubjectKind, subject_id: str) -> ApprovalSubject | None:
        item = self.client.get_item(TableName=self.table, Key={"pk": {"S": f"{kind}#{subject_id}"}, "sk": {"S": SK}},
                                    ConsistentRead=True).get("Item")
        return subject_from_dict(json.loads(item["doc"]["S"])) if item else None

    def create(self, subject: ApprovalSubject) -> None:
        try:
            self.client.put_item(TableName=self.table, ConditionExpression="attribute_not_exists(pk)",
                                 Item=_item(f"{subject.kind}#{subject.subject_id}", subject.kind, subject.version,
                                            subject.to_json_dict()))
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                raise Conflict(f"{subject.kind} {subject.subject_id!r} already exists", {"id": subject.subject_id}) from exc
            raise

    def save(self, subject: ApprovalSubject, *, expected_version: int, nonce: NonceClaim | None = None) -> None:
        items: list[dict[str, Any]] = [{"Put": {
            "TableName": self.table,
            "Item": _item(f"{subject.kind}#{subject.subject_id}", subject.kind, subject.version, subject.to_json_dict()),
            "ConditionExpression": "version = :v",
            "ExpressionAttributeValues": {":v": {"N": str(expected_version)}},
        }}]
        if nonce is not None:
            items.append({"Put": {
                "TableName": self.table,
                "Item": {"pk": {"S": f"nonce#{nonce.approver_id}#{nonce.nonce}"}, "sk": {"S": "NONCE"},
                         "kind": {"S": "nonce"}, "subject": {"S": f"{subject.kind}#{subject.subject_id}"}},
                "ConditionExpression": "attribute_not_exists(pk)",
            }})
        try:
            self.client.transact_write_items(TransactItems=items)
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "TransactionCanceledException":
                raise
            reasons = _reasons(exc)
            if len(reasons) > 1 and reasons[1] == "ConditionalCheckFailed":
                raise DomainError("nonce_reused", "nonce already used by this approver",
                                  details={"nonce": nonce.nonce if nonce else None}) from exc
            raise Conflict(f"{subject.kind} {subject.subject_id!r} changed concurrently",
                           {"expected": expected_version}) from exc

    def nonce_used(self, approver_id: str, nonce: str) -> bool:
        item = self.client.get_item(TableName=self.table, Key={"pk": {"S": f"nonce#{approver_id}#{nonce}"},
                                                              "sk": {"S": "NONCE"}}, ConsistentRead=True).get("Item")
        return item is not None
