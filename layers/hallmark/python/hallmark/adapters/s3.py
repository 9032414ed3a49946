"""S3 adapters of the scoring ports: ``S3BlobStore`` (one bucket as a ``BlobStore``, what the Batch
job and the scoring functions read and write through) and ``S3Objects`` (read any bucket/key,
optionally at a version: the manifest repository and released artifacts).

Only boto3 and the standard library are imported here: the GPU job's image (gpu_batch/Dockerfile)
ships this module without Powertools.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=5, read_timeout=60)
_MISSING = frozenset({"NoSuchKey", "404", "NotFound", "NoSuchVersion"})


def _missing(exc: ClientError) -> bool:
    return str(exc.response.get("Error", {}).get("Code", "")) in _MISSING


class S3BlobStore:
    """A flat key -> bytes store over one bucket (``hallmark.scoring.ports.BlobStore``)."""

    def __init__(self, bucket: str, client: Any | None = None) -> None:
        self.bucket = bucket
        self.s3 = client if client is not None else boto3.client("s3", config=_CONFIG)

    def get(self, key: str) -> bytes:
        try:
            return bytes(self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read())
        except ClientError as exc:
            if _missing(exc):
                raise KeyError(key) from exc
            raise

    def get_range(self, key: str, start: int, length: int) -> bytes:
        """``length`` bytes from ``start`` (fewer at the end of the object); ``KeyError`` if absent."""
        try:
            resp = self.s3.get_object(Bucket=self.bucket, Key=key, Range=f"bytes={start}-{start + length - 1}")
        except ClientError as exc:
            if _missing(exc):
                raise KeyError(key) from exc
            raise
        return bytes(resp["Body"].read())

    def put(self, key: str, data: bytes) -> None:
        self.write(key, data)

    def write(self, key: str, data: bytes, *, content_type: str | None = None,
              metadata: Mapping[str, str] | None = None) -> str | None:
        """Write the object; returns its version id (``None`` on an unversioned bucket)."""
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Key": key, "Body": data}
        if content_type:
            kwargs["ContentType"] = content_type
        if metadata:
            kwargs["Metadata"] = dict(metadata)
        version = self.s3.put_object(**kwargs).get("VersionId")
        return str(version) if version else None

    def delete(self, key: str) -> None:
        self.s3.delete_object(Bucket=self.bucket, Key=key)


def read_object(s3: Any, bucket: str, key: str, version_id: str | None = None,
                max_bytes: int | None = None) -> tuple[bytes, str | None]:
    """The one S3 read: the object's bytes (at ``version_id`` if given) and its version id.

    ``KeyError`` if the object (or that version) does not exist; ``ValueError`` if it is larger
    than ``max_bytes`` (by its Content-Length, and by what is read: at most ``max_bytes + 1``)."""
    kwargs: dict[str, Any] = {"Bucket": bucket, "Key": key}
    if version_id:
        kwargs["VersionId"] = version_id
    try:
        resp = s3.get_object(**kwargs)
    except ClientError as exc:
        if _missing(exc):
            raise KeyError(f"s3://{bucket}/{key}") from exc
        raise
    body = resp["Body"]
    too_large = f"s3://{bucket}/{key} is larger than {max_bytes} bytes"
    if max_bytes is not None and int(resp.get("ContentLength", 0)) > max_bytes:
        body.close()
        raise ValueError(too_large)
    data = body.read() if max_bytes is None else body.read(max_bytes + 1)
    if max_bytes is not None and len(data) > max_bytes:
        raise ValueError(too_large)
    return bytes(data), resp.get("VersionId")


class S3Objects:
    """Reads objects of any bucket the function may read (``hallmark.scoring.models.ObjectReader``)."""

    def __init__(self, client: Any | None = None) -> None:
        self.s3 = client if client is not None else boto3.client("s3", config=_CONFIG)

    def read(self, bucket: str, key: str, version_id: str | None = None, max_bytes: int | None = None) -> bytes:
        return read_object(self.s3, bucket, key, version_id, max_bytes)[0]
