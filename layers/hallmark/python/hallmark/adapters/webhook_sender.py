"""Adapters of the webhook flow: ``KmsSecretCipher`` (subscriber secrets encrypted under the
``webhooks`` KMS key, the subscriber id as encryption context) and ``WebhookPoster`` (one HTTPS POST
with the signed headers to the address vetted just before, pinned; no redirects followed)."""

from __future__ import annotations

import http.client
import socket
import ssl
from dataclasses import dataclass
from typing import Any

from hallmark.errors import DomainError
from hallmark.netguard import UNRESOLVED, Resolver, Target, vet_url


class KmsSecretCipher:
    """``hallmark.scoring.webhooks.SecretCipher`` over a symmetric KMS key (secrets are < 4 KiB)."""

    def __init__(self, kms: Any, key_id: str) -> None:
        self.kms = kms
        self.key_id = key_id

    def encrypt(self, plaintext: bytes, context: dict[str, str]) -> bytes:
        return bytes(self.kms.encrypt(KeyId=self.key_id, Plaintext=plaintext, EncryptionContext=context)["CiphertextBlob"])

    def decrypt(self, ciphertext: bytes, context: dict[str, str]) -> bytes:
        return bytes(self.kms.decrypt(KeyId=self.key_id, CiphertextBlob=ciphertext, EncryptionContext=context)["Plaintext"])


@dataclass(frozen=True)
class PostResult:
    status: int  # 0: no HTTP answer (network error, timeout, refused destination)
    detail: str
    refused: bool = False  # the destination is not a public address (now): never sent

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


def system_resolver(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (the ``hallmark.netguard.Resolver`` port over the OS)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    return sorted({str(info[4][0]) for info in infos})


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Connects to the vetted address, never to what the name resolves to now."""

    def __init__(self, target: Target, timeout: float) -> None:
        super().__init__(target.host, target.port, timeout=timeout)
        self._address = target.address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """TLS to the vetted address; SNI and the certificate check use the URL's host name."""

    def __init__(self, target: Target, timeout: float, context: ssl.SSLContext) -> None:
        super().__init__(target.host, target.port, timeout=timeout, context=context)
        self._address = target.address
        self._tls = context

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._tls.wrap_socket(sock, server_hostname=self.host)


@dataclass(frozen=True)
class WebhookPoster:
    """One POST per delivery: the URL is vetted again now (``hallmark.netguard.vet_url``, every
    address its name resolves to), then the connection goes to that vetted address. No redirect is
    followed (http.client follows none: a 3xx is a failed delivery)."""

    resolve: Resolver
    allow_loopback: bool = False

    def post(self, url: str, body: str, headers: dict[str, str], timeout_s: float) -> PostResult:
        try:
            target = vet_url(url, self.resolve, allow_loopback=self.allow_loopback)
        except DomainError as exc:
            return PostResult(0, f"{exc.code}: {exc.message} {exc.details}"[:200], refused=exc.code != UNRESOLVED)
        conn: http.client.HTTPConnection = (
            _PinnedHTTPSConnection(target, timeout_s, ssl.create_default_context()) if target.scheme == "https"
            else _PinnedHTTPConnection(target, timeout_s))
        try:
            conn.request("POST", target.path, body=body.encode("utf-8"),
                         headers={**headers, "content-type": headers.get("content-type", "application/json")})
            resp = conn.getresponse()
            resp.read(64 * 1024)
            return PostResult(int(resp.status), "" if 200 <= resp.status < 300 else str(resp.reason)[:200])
        except (http.client.HTTPException, TimeoutError, OSError) as exc:
            return PostResult(0, f"{type(exc).__name__}: {exc}"[:200])
        finally:
            conn.close()

