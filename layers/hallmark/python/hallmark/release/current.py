"""The manifest repository's "current" pointer per package name: what is published now.

Publishing moves it forward; an emergency upgrade that is not ratified moves it back."""

from __future__ import annotations

import json
from typing import Any


def pointer_key(name: str) -> str:
    return f"current/{name}.json"


def read_pointer(s3: Any, bucket: str, name: str) -> dict[str, Any] | None:
    try:
        body = s3.get_object(Bucket=bucket, Key=pointer_key(name))["Body"].read()
    except s3.exceptions.NoSuchKey:
        return None
    doc: dict[str, Any] = json.loads(body)
    return doc


def write_pointer(s3: Any, bucket: str, name: str, pointer: dict[str, Any]) -> None:
    s3.put_object(Bucket=bucket, Key=pointer_key(name), Body=json.dumps(pointer, sort_keys=True).encode(),
                  ContentType="application/json")
