"""`hallmark local serve`: the HTTP API on 127.0.0.1, each request turned into an API Gateway
v2 event for the same handlers (through LocalCloud.api); GET /openapi.json serves the API's
OpenAPI document (hallmark_tools.openapi)."""

from __future__ import annotations

import json
import socket
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from hallmark.http import MAX_BODY_BYTES
from hallmark_tools.localcloud.cloud import LocalCloud

READ_TIMEOUT_S = 30  # a client that announces more bytes than it sends is cut off, not waited on forever


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_server(cloud: LocalCloud, port: int) -> ThreadingHTTPServer:
    openapi: list[bytes] = []  # built at the first GET /openapi.json, from the cloud's handler modules

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        timeout = READ_TIMEOUT_S  # socket timeout of every read (StreamRequestHandler)
        disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms delayed-ACK stall

        def _openapi(self) -> None:
            status, body = 200, openapi[0] if openapi else b""
            if not openapi:
                from hallmark_tools.openapi import openapi_json

                try:
                    body = openapi_json(cloud.topology, lambda fn: cloud.handler_module(fn.name))
                    openapi.append(body)
                except Exception as exc:  # e.g. a route the topology declares and no handler registers
                    status, body = 500, json.dumps({"error": {"code": "openapi_failed", "message": str(exc),
                                                              "details": {}}}).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _refuse(self, status: int, code: str, message: str, details: dict[str, Any] | None = None) -> None:
            """A JSON error, then the connection closes: the unread body (if any) is never read."""
            body = json.dumps({"error": {"code": code, "message": message, "details": details or {}}}).encode()
            self.close_connection = True
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.send_header("connection", "close")
            self.end_headers()
            self.wfile.write(body)

        def _body(self) -> tuple[bool, bytes | None]:
            """(ok, body). Refused at once, before reading a byte of it: a body API Gateway would
            refuse too (over the API's limit: 413), a length that is not a number (400), or a
            chunked body (411: API Gateway's HTTP API needs a length here as well)."""
            if self.headers.get("transfer-encoding"):
                self._refuse(411, "length_required", "send the body with a Content-Length")
                return False, None
            raw = (self.headers.get("content-length") or "0").strip()
            if not raw.isascii() or not raw.isdigit() or len(self.headers.get_all("content-length") or []) > 1:
                self._refuse(400, "bad_content_length", "Content-Length must be one non-negative integer")
                return False, None
            length = int(raw)
            if length > MAX_BODY_BYTES:
                self._refuse(413, "payload_too_large", f"request body exceeds {MAX_BODY_BYTES} bytes",
                             {"contentLength": length, "maxBytes": MAX_BODY_BYTES})
                return False, None
            if not length:
                return True, None
            try:
                body = self.rfile.read(length)
            except TimeoutError:
                body = b""
            if len(body) != length:
                self._refuse(400, "incomplete_body", "the body is shorter than its Content-Length",
                             {"contentLength": length, "received": len(body)})
                return False, None
            return True, body

        def _serve(self) -> None:
            ok, body = self._body()
            if not ok:
                return
            if self.command == "GET" and self.path.partition("?")[0] == "/openapi.json":
                self._openapi()  # the API's OpenAPI document, unauthenticated
                return
            headers = {k: v for k, v in self.headers.items()}
            resp = cloud.api(self.command, self.path, body=body, headers=headers)
            self.send_response(resp.status)
            for k, v in resp.headers.items():
                self.send_header(k, v)
            self.send_header("content-length", str(len(resp.body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(resp.body)

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve

        def __getattr__(self, name: str) -> Any:
            # Any other method (HEAD, OPTIONS, TRACE, QUERY, ...) goes to the API too, where an
            # unrouted one answers 404 JSON as API Gateway does, not BaseHTTPRequestHandler's 501.
            if name.startswith("do_"):
                return self._serve
            raise AttributeError(name)

        def log_message(self, format: str, *args: Any) -> None:
            if not cloud.quiet:
                super().log_message(format, *args)

    return ThreadingHTTPServer(("127.0.0.1", port), Handler)
