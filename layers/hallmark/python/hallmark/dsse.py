"""DSSE envelopes (https://github.com/secure-systems-lab/dsse) over in-toto Statement v1.

Wire shape (``envelope.md`` of the DSSE spec, JSON encoding)::

    {"payload": "<standard base64 of the payload bytes>",
     "payloadType": "application/vnd.in-toto+json",
     "signatures": [{"keyid": "<signer key id>", "sig": "<standard base64 of the DER signature>"}]}

The signature is ECDSA P-256/SHA-256 over ``PAE(payloadType, payload)`` where
``PAE(type, body) = "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body``, ``LEN`` being the
ASCII decimal byte length and ``SP`` one space (0x20). The payload of a manifest is the
RFC 8785 canonical JSON of an in-toto Statement v1.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping, Sequence
from typing import Any, Final

from hallmark.canonical import canonical_bytes, sha256_hex
from hallmark.ports import Signer
from hallmark.signing import verify_signature

__all__ = [
    "IN_TOTO_PAYLOAD_TYPE",
    "IN_TOTO_STATEMENT_TYPE",
    "DsseError",
    "in_toto_statement",
    "manifest_signature_id",
    "pae",
    "sign_envelope",
    "verify_envelope",
]

IN_TOTO_PAYLOAD_TYPE: Final = "application/vnd.in-toto+json"
IN_TOTO_STATEMENT_TYPE: Final = "https://in-toto.io/Statement/v1"

_HEX64 = re.compile(r"^[0-9a-f]{64}$")


class DsseError(ValueError):
    """An envelope that is malformed or does not verify."""


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 Pre-Authentication Encoding of ``payload`` with ``payload_type``."""
    type_bytes = payload_type.encode("utf-8")
    return b"DSSEv1 %d %b %d %b" % (len(type_bytes), type_bytes, len(payload), payload)


def _b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _b64decode(text: Any, what: str) -> bytes:
    if not isinstance(text, str):
        raise DsseError(f"{what} must be a base64 string")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise DsseError(f"{what} is not valid base64") from exc


def sign_envelope(payload_bytes: bytes, payload_type: str, signer: Signer) -> dict[str, Any]:
    """Sign ``payload_bytes`` as a DSSE envelope with one signature by ``signer``."""
    signature = signer.sign(pae(payload_type, payload_bytes))
    return {
        "payload": _b64encode(payload_bytes),
        "payloadType": payload_type,
        "signatures": [{"keyid": signer.key_id, "sig": _b64encode(signature)}],
    }


def verify_envelope(
    envelope: Mapping[str, Any],
    public_key_pem: bytes,
    *,
    expected_payload_type: str | None = None,
) -> bytes:
    """Return the payload bytes if one of the envelope's signatures verifies with the key.

    ``keyid`` is an unauthenticated hint in DSSE and is not used to pick the key. Raises
    :class:`DsseError` when the envelope is malformed, the payload type is not the one
    expected, or no signature verifies.
    """
    if not isinstance(envelope, Mapping):
        raise DsseError("envelope must be a JSON object")
    payload_type = envelope.get("payloadType")
    if not isinstance(payload_type, str):
        raise DsseError("payloadType must be a string")
    if expected_payload_type is not None and payload_type != expected_payload_type:
        raise DsseError(f"payloadType is {payload_type!r}, expected {expected_payload_type!r}")
    payload = _b64decode(envelope.get("payload"), "payload")
    signatures = envelope.get("signatures")
    if not isinstance(signatures, list) or not signatures:
        raise DsseError("signatures must be a non-empty list")
    message = pae(payload_type, payload)
    for entry in signatures:
        if not isinstance(entry, Mapping):
            raise DsseError("each signature must be an object")
        sig = _b64decode(entry.get("sig"), "sig")
        if verify_signature(public_key_pem, message, sig):
            return payload
    raise DsseError("no signature in the envelope verifies with the given public key")


def in_toto_statement(
    subjects: Sequence[Mapping[str, Any]],
    predicate_type: str,
    predicate: Mapping[str, Any],
) -> dict[str, Any]:
    """An in-toto Statement v1: ``{_type, subject, predicateType, predicate}``.

    Each subject is ``{"name": str, "digest": {"sha256": <64 lowercase hex>, ...}}``.
    """
    if not subjects:
        raise ValueError("a statement needs at least one subject")
    out_subjects: list[dict[str, Any]] = []
    for subject in subjects:
        name = subject.get("name")
        digest = subject.get("digest")
        if not isinstance(name, str) or not name:
            raise ValueError("subject name must be a non-empty string")
        if not isinstance(digest, Mapping) or not isinstance(digest.get("sha256"), str):
            raise ValueError(f"subject {name!r} needs digest.sha256")
        if not _HEX64.match(digest["sha256"]):
            raise ValueError(f"subject {name!r}: digest.sha256 must be 64 lowercase hex characters")
        out_subjects.append({"name": name, "digest": {str(k): str(v) for k, v in digest.items()}})
    if not predicate_type:
        raise ValueError("predicate_type must be a non-empty URI")
    return {
        "_type": IN_TOTO_STATEMENT_TYPE,
        "subject": out_subjects,
        "predicateType": predicate_type,
        "predicate": dict(predicate),
    }


def manifest_signature_id(envelope: Mapping[str, Any]) -> str:
    """``manifestSignatureId`` of a signed manifest envelope.

    Construction (exact): ``f"{keyid}:{sha256_hex(RFC8785(envelope))}"`` where ``keyid`` is the
    ``keyid`` of the envelope's first signature and ``RFC8785(envelope)`` is the canonical
    JSON of the whole envelope object as emitted by :func:`sign_envelope` (``payload``,
    ``payloadType`` and ``signatures``, base64 strings as they are). Example shape:
    ``arn:aws:kms:eu-west-1:111122223333:key/...:3b1f...e9`` (the hash is the last 64 hex).
    """
    signatures = envelope.get("signatures")
    if not isinstance(signatures, list) or not signatures or not isinstance(signatures[0], Mapping):
        raise DsseError("envelope has no signatures")
    keyid = signatures[0].get("keyid")
    if not isinstance(keyid, str) or not keyid:
        raise DsseError("the first signature has no keyid")
    return f"{keyid}:{sha256_hex(canonical_bytes(dict(envelope)))}"
