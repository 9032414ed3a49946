"""The local stand-in for the HTTP API's JWT authorizer: an ES256 issuer whose key is made at
first use under $HALLMARK_HOME (never in the repo), shared by `hallmark local token` and
`hallmark local serve` so a token printed by one is accepted by the other."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

ISSUER = "https://hallmark.local/issuer"
AUDIENCE = "hallmark-api"


def hallmark_home() -> Path:
    return Path(os.environ.get("HALLMARK_HOME", Path.home() / ".hallmark"))


class LocalIssuer:
    def __init__(self, home: Path | None = None) -> None:
        self.path = (home or hallmark_home()) / "local-issuer.pem"
        self._key = self._load_or_create()

    def _load_or_create(self) -> ec.EllipticCurvePrivateKey:
        if self.path.exists():
            key = serialization.load_pem_private_key(self.path.read_bytes(), password=None)
            assert isinstance(key, ec.EllipticCurvePrivateKey)
            return key
        self.path.parent.mkdir(parents=True, exist_ok=True)
        key = ec.generate_private_key(ec.SECP256R1())
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(pem)
        return key

    def token(self, sub: str, roles: list[str], ttl_s: int = 3600) -> str:
        now = int(time.time())
        claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": sub, "roles": roles, "iat": now, "exp": now + ttl_s}
        return jwt.encode(claims, self._key, algorithm="ES256")

    def verify(self, token: str) -> dict[str, Any]:
        """Raises jwt.InvalidTokenError on any problem (signature, issuer, audience, expiry, and a
        missing ``exp``/``sub``: as API Gateway's JWT authorizer, a token without an expiry is refused)."""
        claims: dict[str, Any] = jwt.decode(
            token, self._key.public_key(), algorithms=["ES256"], audience=AUDIENCE, issuer=ISSUER,
            options={"require": ["exp", "iss", "aud", "sub"]},
        )
        return claims
