"""`hallmark local serve`: the HTTP API on 127.0.0.1, each request turned into an API Gateway
v2 event for the same handlers (through LocalCloud.api); GET /openapi.json serves the API's
OpenAPI document (hallmark_tools.openapi)."""

from __future__ import annotations

import json
import socket
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from hallmark_tools.localcloud.cloud import LocalCloud


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_server(cloud: LocalCloud, port: int) -> ThreadingHTTPServer:
    openapi: list[bytes] = []  # built at the first GET /openapi.json, from the cloud's handler modules

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
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

        def _serve(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else None
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
