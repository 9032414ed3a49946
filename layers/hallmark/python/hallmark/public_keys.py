"""The public half of every signing key, as `GET /keys` publishes it and `hallmark keys export`
writes it: what a third party needs to verify manifests, checkpoints and proofs offline.

Each entry: ``purpose`` (manifest | audit | proof), ``keyId`` (the id the signatures name, e.g. a
checkpoint's ``keyId``), ``algorithm`` (``ECDSA_P256_SHA256``: DER ECDSA signatures over SHA-256),
``pem`` (SubjectPublicKeyInfo) and ``fingerprint`` (lowercase hex SHA-256 of the DER
SubjectPublicKeyInfo, the same value ``hallmark.signing.public_key_fingerprint`` computes).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

from hallmark.ports import Signer
from hallmark.signing import load_public_key, public_key_fingerprint

__all__ = ["ALGORITHM", "PURPOSE_PATTERN", "describe_keys"]

ALGORITHM: Final = "ECDSA_P256_SHA256"
PURPOSE_PATTERN: Final = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")


def describe_keys(signers: Mapping[str, Signer]) -> list[dict[str, Any]]:
    """One public description per purpose (sorted); refuses a key that is not P-256."""
    out = []
    for purpose in sorted(signers):
        if not PURPOSE_PATTERN.match(purpose):
            raise ValueError(f"bad key purpose {purpose!r}")
        signer = signers[purpose]
        pem = signer.public_key_pem()
        load_public_key(pem)  # ValueError unless an EC P-256 SubjectPublicKeyInfo
        out.append({
            "purpose": purpose,
            "keyId": signer.key_id,
            "algorithm": ALGORITHM,
            "pem": pem.decode("ascii"),
            "fingerprint": public_key_fingerprint(pem),
        })
    return out
