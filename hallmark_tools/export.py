"""Exports for auditors: public keys (PEM), signed manifests, audit chains as JSON Lines.

Works against any AWS endpoint the boto3 session reaches (the local cloud or a deployment):
resource names come from the same environment variables the handlers read."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import boto3
from cryptography.hazmat.primitives import serialization

from hallmark_tools.topology import TOPOLOGY, env_name


def export_keys(out: Path, kms: Any = None) -> dict[str, Path]:
    """keys/<purpose>.pem for every signing key (SubjectPublicKeyInfo)."""
    kms = kms or boto3.client("kms")
    out.mkdir(parents=True, exist_ok=True)
    written = {}
    for key in TOPOLOGY.keys:
        if not key.signing:
            continue
        key_id = os.environ.get(env_name("key", key.name), f"alias/hallmark-{key.name}")
        der = kms.get_public_key(KeyId=key_id)["PublicKey"]
        pem = serialization.load_der_public_key(der).public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        path = out / f"{key.name}.pem"
        path.write_bytes(pem)
        written[key.name] = path
    return written


def export_manifests(out: Path, s3: Any = None) -> list[Path]:
    """manifests/<name>-<version>-<packageId>.dsse.json from the manifest repository bucket."""
    s3 = s3 or boto3.client("s3")
    bucket = os.environ[env_name("bucket", "manifests")]
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="manifests/"):
        for obj in page.get("Contents", []):
            envelope = json.loads(s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read())
            path = out / obj["Key"].removeprefix("manifests/").replace("/", "-")
            path.write_text(json.dumps(envelope, indent=2) + "\n")
            written.append(path)
    return written


def export_audit(out: Path, checkpoint: bool = True) -> dict[str, tuple[Path, Path]]:
    """audit/<chain>.events.jsonl and .checkpoints.jsonl for every chain with events; with
    ``checkpoint`` the tail is covered by a fresh signed checkpoint first."""
    from hallmark.adapters.runtime import audit_chains, audit_log

    log = audit_log()
    out.mkdir(parents=True, exist_ok=True)
    written = {}
    for chain in audit_chains():
        if log.store.head(chain) is None:
            continue
        if checkpoint:
            log.checkpoint_now(chain)
        written[chain] = log.write_export(chain, out)
    return written
