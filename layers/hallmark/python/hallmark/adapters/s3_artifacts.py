"""``ArtifactStore`` over one S3 bucket (``hallmark.release.ports``).

Write-once uses S3 conditional writes (``If-None-Match: *``); presigned PUTs sign
``Content-Length`` and ``x-amz-checksum-sha256``, so S3 itself refuses other bytes.
"""

from __future__ import annotations

import base64
from typing import Any

from botocore.exceptions import ClientError

from hallmark.adapters.s3 import read_object
from hallmark.release.ports import ArtifactMissing, ArtifactTooLarge, StoredObject

_EXISTS = frozenset({"PreconditionFailed", "412", "ConditionalRequestConflict", "409"})


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


class S3ArtifactStore:
    def __init__(self, s3: Any, bucket: str) -> None:
        self._s3 = s3
        self._bucket = bucket

    @property
    def bucket(self) -> str:
        return self._bucket

    def read(self, key: str, version_id: str | None = None, max_bytes: int | None = None) -> StoredObject:
        try:
            data, version = read_object(self._s3, self._bucket, key, version_id, max_bytes)
        except KeyError as exc:
            raise ArtifactMissing(str(exc.args[0])) from exc
        except ValueError as exc:
            raise ArtifactTooLarge(str(exc)) from exc
        return StoredObject(data, version)

    def put_once(self, key: str, data: bytes) -> str | None:
        try:
            put = self._s3.put_object(Bucket=self._bucket, Key=key, Body=data, IfNoneMatch="*",
                                      ContentType="application/octet-stream")
            return put.get("VersionId")
        except ClientError as exc:
            if _code(exc) not in _EXISTS:
                raise
        head = self._s3.head_object(Bucket=self._bucket, Key=key)
        return head.get("VersionId")

    def put(self, key: str, data: bytes, content_type: str) -> None:
        self._s3.put_object(Bucket=self._bucket, Key=key, Body=data, ContentType=content_type)

    def presign_get(self, key: str, version_id: str | None, ttl_seconds: int) -> str:
        params: dict[str, Any] = {"Bucket": self._bucket, "Key": key}
        if version_id:
            params["VersionId"] = version_id
        return str(self._s3.generate_presigned_url("get_object", Params=params, ExpiresIn=ttl_seconds))

    def presign_put(self, key: str, size: int, sha256_hex: str, ttl_seconds: int) -> tuple[str, dict[str, str]]:
        checksum = base64.b64encode(bytes.fromhex(sha256_hex)).decode()
        url = self._s3.generate_presigned_url(
            "put_object",
            Params={"Bucket": self._bucket, "Key": key, "ContentLength": size, "ChecksumSHA256": checksum},
            ExpiresIn=ttl_seconds,
        )
        return str(url), {"x-amz-checksum-sha256": checksum, "content-length": str(size)}
