"""Download a presigned URL with a byte cap (the sealed smoke function's only way to its package).

``requests`` (not ``urllib``): in the local cloud, moto intercepts it, so a presigned S3 URL
works in-process exactly as it does against S3.
"""

from __future__ import annotations

from typing import Final

import requests

_CHUNK: Final = 1024 * 1024


class FetchError(Exception):
    """The URL could not be fetched within the cap; the message says why (no URL in it)."""


def fetch_capped(url: str, cap: int, *, timeout_s: float = 30.0) -> bytes:
    """GET ``url`` (``http``/``https``, no redirects) and return at most ``cap + 1`` bytes.

    Reading one byte past the cap lets the caller tell "exactly the declared size" from "more".
    """
    if not url.startswith(("https://", "http://")):
        raise FetchError("the package URL must be http(s)")
    try:
        with requests.get(url, stream=True, timeout=(5.0, timeout_s), allow_redirects=False) as resp:
            if resp.status_code != 200:
                raise FetchError(f"the package URL answered HTTP {resp.status_code}")
            body = bytearray()
            for chunk in resp.iter_content(_CHUNK):
                body += chunk
                if len(body) > cap:
                    del body[cap + 1 :]
                    break
            return bytes(body)
    except requests.RequestException as exc:
        raise FetchError(f"the package could not be downloaded: {type(exc).__name__}") from None
