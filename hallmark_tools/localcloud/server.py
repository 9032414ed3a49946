"""`hallmark local serve`: the HTTP API on 127.0.0.1, each request turned into an API Gateway
v2 event for the same handlers (through LocalCloud.api); GET /openapi.json serves the API's
OpenAPI document (hallmark_tools.openapi)."""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from hallmark.http import MAX_BODY_BYTES
from hallmark_tools.localcloud.cloud import LocalCloud

READ_TIMEOUT_S = 30  # a client that announces more bytes than it sends is cut off, not waited on forever
LISTEN_BACKLOG = 256  # 64+ clients connecting at once are queued by the kernel, not dropped or reset
DRAIN_TIMEOUT_S = 60  # on SIGINT/SIGTERM, in-flight requests get this long to finish


class LocalApiServer(ThreadingHTTPServer):
    """A thread per connection (keep-alive), a listen backlog sized for a team, and a drain:
    :meth:`drain` stops taking requests, lets the ones in flight finish (each answered with
    ``Connection: close``), and closes the idle keep-alive connections."""

    request_queue_size = LISTEN_BACKLOG
    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(address, handler)
        self.draining = False
        self._state = threading.Condition()
        self._busy: set[socket.socket] = set()
        self._idle: set[socket.socket] = set()

    def connection_idle(self, conn: socket.socket) -> bool:
        """Between requests on ``conn``; False when draining (the connection should close)."""
        with self._state:
            self._busy.discard(conn)
            self._state.notify_all()
            if self.draining:
                return False
            self._idle.add(conn)
            return True

    def connection_busy(self, conn: socket.socket) -> None:
        with self._state:
            self._idle.discard(conn)
            self._busy.add(conn)

    def connection_closed(self, conn: socket.socket) -> None:
        with self._state:
            self._idle.discard(conn)
            self._busy.discard(conn)
            self._state.notify_all()

    def in_flight(self) -> int:
        with self._state:
            return len(self._busy)

    def drain(self, timeout_s: float = DRAIN_TIMEOUT_S) -> bool:
        """After ``shutdown()``: finish the requests in flight, close idle connections, close the
        socket. True when every in-flight request finished within ``timeout_s``."""
        with self._state:
            self.draining = True
            for conn in list(self._idle):  # a client between requests: its next read sees EOF
                _shut(conn)
            self._idle.clear()
            finished = self._state.wait_for(lambda: not self._busy, timeout_s)
        self.server_close()
        return finished


def _shut(conn: socket.socket) -> None:
    with contextlib.suppress(OSError):
        conn.shutdown(socket.SHUT_RDWR)


def serve_until_signal(server: LocalApiServer, drain_timeout_s: float = DRAIN_TIMEOUT_S) -> bool:
    """Serve until SIGINT or SIGTERM (from the main thread), then drain: the requests in flight
    are answered before this returns (and the local cloud stops behind them)."""
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    loop = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, name="local-api")
    loop.start()
    try:
        while not stop.wait(0.5) and loop.is_alive():
            pass
    finally:
        server.shutdown()  # no new connections or requests from here
        loop.join()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return server.drain(drain_timeout_s)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_server(cloud: LocalCloud, port: int) -> LocalApiServer:
    openapi: list[bytes] = []  # built at the first GET /openapi.json, from the cloud's handler modules

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        timeout = READ_TIMEOUT_S  # socket timeout of every read (StreamRequestHandler)
        disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms delayed-ACK stall
        server: LocalApiServer

        def handle_one_request(self) -> None:
            if not self.server.connection_idle(self.connection):
                self.close_connection = True  # draining: no further request on this connection
                return
            try:
                super().handle_one_request()
            finally:
                if self.server.draining:
                    self.close_connection = True

        def parse_request(self) -> bool:
            # the request line has arrived: from here this connection has a request in flight
            self.server.connection_busy(self.connection)
            return super().parse_request()

        def finish(self) -> None:
            try:
                super().finish()
            finally:
                self.server.connection_closed(self.connection)

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

        def _page(self) -> None:
            from hallmark_tools.dashboard import deployments_page

            status, body = deployments_page(cloud)
            self.send_response(status)
            self.send_header("content-type", "text/html; charset=utf-8" if status == 200 else "application/json")
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
            if self.command == "GET" and self.path.partition("?")[0] == "/ui/deployments":
                self._page()  # the deployments dashboard (hallmark_tools.dashboard)
                return
            headers = {k: v for k, v in self.headers.items()}
            resp = cloud.api(self.command, self.path, body=body, headers=headers)
            self.send_response(resp.status)
            for k, v in resp.headers.items():
                self.send_header(k, v)
            if self.server.draining:
                self.close_connection = True
                self.send_header("connection", "close")
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

    return LocalApiServer(("127.0.0.1", port), Handler)
