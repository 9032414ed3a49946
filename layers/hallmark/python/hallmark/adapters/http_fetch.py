"""``UrlFetcher``: the advisory sync's ``Fetcher`` port over HTTPS, bounded in time and size.

Only ``https://`` URLs are fetched (``file://`` too when ``allow_file`` is set: the local
cloud serves the OSV archives it builds from committed records that way, offline). A
response is refused, before its body is kept, when it is not 200, when its declared
``Content-Length`` exceeds ``max_bytes``, or once more than ``max_bytes`` arrived; a stalled
server fails on ``timeout_s`` per socket operation and on ``deadline_s`` in all.
"""

from __future__ import annotations

import time
import urllib.request
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit
from urllib.request import url2pathname

_CHUNK: Final = 1024 * 1024


class FetchError(RuntimeError):
    """A fetch refused or failed; the message says why (never the body)."""


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None  # a redirect elsewhere is an error, not followed


class UrlFetcher:
    def __init__(
        self,
        *,
        timeout_s: float = 30.0,
        deadline_s: float = 600.0,
        max_bytes: int = 1024**3,
        allow_file: bool = False,
    ) -> None:
        self.timeout_s = timeout_s
        self.deadline_s = deadline_s
        self.max_bytes = max_bytes
        self.allow_file = allow_file
        self._opener = urllib.request.build_opener(_NoRedirect)

    def fetch(self, url: str) -> bytes:
        scheme = urlsplit(url).scheme
        if scheme == "file" and self.allow_file:
            return self._file(url)
        if scheme != "https":
            raise FetchError(f"refusing to fetch {url!r}: only https:// URLs")
        started = time.monotonic()
        request = urllib.request.Request(url, headers={"User-Agent": "hallmark-advisories-sync"})
        try:
            with self._opener.open(request, timeout=self.timeout_s) as resp:
                if resp.status != 200:
                    raise FetchError(f"{url} answered HTTP {resp.status}")
                declared = resp.headers.get("Content-Length")
                if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
                    raise FetchError(f"{url} is {declared} bytes, more than the {self.max_bytes} allowed")
                chunks: list[bytes] = []
                size = 0
                while chunk := resp.read(_CHUNK):
                    size += len(chunk)
                    if size > self.max_bytes:
                        raise FetchError(f"{url} sent more than the {self.max_bytes} bytes allowed")
                    if time.monotonic() - started > self.deadline_s:
                        raise FetchError(f"{url} took longer than {self.deadline_s:g} s")
                    chunks.append(chunk)
                if declared is not None and declared.isdigit() and size != int(declared):
                    raise FetchError(f"{url} ended after {size} of {declared} bytes (truncated)")
                return b"".join(chunks)
        except FetchError:
            raise
        except OSError as exc:  # URLError, HTTPError, timeouts, resets
            raise FetchError(f"{url} could not be fetched: {type(exc).__name__}: {exc}") from exc

    def _file(self, url: str) -> bytes:
        path = Path(url2pathname(urlsplit(url).path))
        try:
            if path.stat().st_size > self.max_bytes:
                raise FetchError(f"{url} is larger than the {self.max_bytes} bytes allowed")
            return path.read_bytes()
        except OSError as exc:
            raise FetchError(f"{url} could not be read: {type(exc).__name__}") from exc
