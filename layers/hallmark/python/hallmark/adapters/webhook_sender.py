"""Adapters of the webhook flow: ``KmsSecretCipher`` (subscriber secrets encrypted under the
``webhooks`` KMS key, the subscriber id as encryption context) and ``post_webhook`` (one HTTPS POST
with the signed headers, no redirects followed)."""

from __future__ import annotations

import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any


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
    status: int  # 0: no HTTP answer (network error, timeout)
    detail: str

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # a webhook is not followed elsewhere: a 3xx is a failed delivery


_OPENER = urllib.request.build_opener(_NoRedirect)


def post_webhook(url: str, body: str, headers: dict[str, str], timeout_s: float) -> PostResult:
    request = urllib.request.Request(url, data=body.encode("utf-8"), headers=headers, method="POST")
    try:
        with _OPENER.open(request, timeout=timeout_s) as resp:
            return PostResult(int(resp.status), "")
    except urllib.error.HTTPError as exc:
        return PostResult(int(exc.code), str(exc.reason)[:200])
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        return PostResult(0, f"{type(exc).__name__}: {exc}"[:200])
