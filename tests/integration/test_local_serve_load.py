"""`hallmark local serve` holds a team (issue 25): 64 concurrent keep-alive clients, each with its
own identity and body, see only their own and are never reset or refused; SIGTERM lets the
requests in flight finish before the server exits."""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hallmark_tools import samples
from hallmark_tools.localcloud.auth import LocalIssuer
from hallmark_tools.localcloud.cloud import LocalCloud
from hallmark_tools.localcloud.server import free_port, make_server, serve_until_signal
from hallmark_tools.topology import TOPOLOGY, Topology

CLIENTS = 64


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Path]]:
    home = tmp_path_factory.mktemp("home")
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "hallmark_tools.cli", "local", "serve", "--port", str(port)],
                            env={**os.environ, "HALLMARK_HOME": str(home)},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 90
    while True:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/health")
            if conn.getresponse().status == 200:
                conn.close()
                break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError(proc.stdout.read().decode() if proc.stdout else "serve exited") from None
            time.sleep(0.2)
    yield port, home
    proc.send_signal(signal.SIGTERM)  # drains, stops the cloud, exits 0
    assert proc.wait(timeout=60) == 0


def _call(conn: http.client.HTTPConnection, method: str, path: str, token: str,
          body: Any = None) -> tuple[int, Any, str | None]:
    data = json.dumps(body).encode() if body is not None else None
    conn.request(method, path, body=data, headers={"authorization": f"Bearer {token}",
                                                    "content-type": "application/json"})
    resp = conn.getresponse()
    return resp.status, json.loads(resp.read()), resp.getheader("connection")


def test_64_keep_alive_clients_see_only_their_own_identity_and_body(served: tuple[int, Path]) -> None:
    port, home = served
    issuer = LocalIssuer(home)
    start = threading.Barrier(CLIENTS)
    problems: list[str] = []

    def client(i: int) -> None:
        sub, name = f"team-{i}", f"teampkg-{i}"
        token = issuer.token(sub, ["submitter"])
        sha = hashlib.sha256(f"team/{i}".encode()).hexdigest()
        body = samples.submission(name, "1.0.0", b"y" * (i + 1), sha256=sha)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        try:
            start.wait()
            conn.connect()
            sock = conn.sock
            status, created, _ = _call(conn, "POST", "/packages", token, body)
            if status != 201:
                problems.append(f"{sub}: POST -> {status} {created}")
                return
            for _ in range(2):  # status reads on the same connection
                status, doc, connection = _call(conn, "GET", f"/packages/{created['packageId']}", token)
                if status != 200:
                    problems.append(f"{sub}: GET -> {status} {doc}")
                    return
                if doc["submittedBy"] != sub or (doc["meta"]["name"], doc["meta"]["sha256"]) != (name, sha):
                    problems.append(f"{sub}: saw {doc['submittedBy']} {doc['meta']['name']}")
                if connection == "close" or conn.sock is not sock:
                    problems.append(f"{sub}: the connection was not kept alive")
        except OSError as exc:  # a reset, a refused connection, a timeout
            problems.append(f"{sub}: {type(exc).__name__}: {exc}")
        finally:
            conn.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert problems == []


HEALTH_ONLY = Topology(functions=(TOPOLOGY.function("health"),), queues=(), tables=(), buckets=(), keys=(),
                       rules=(), state_machines=())


def test_sigterm_finishes_the_requests_in_flight_then_stops() -> None:
    entered, release = threading.Event(), threading.Event()
    answers: list[tuple[int, str | None, bytes]] = []
    idle_closed: list[bool] = []

    def hold(event: dict[str, Any]) -> None:
        entered.set()
        release.wait(60)

    with LocalCloud(HEALTH_ONLY) as cloud:
        port = free_port()
        server = make_server(cloud, port)
        idle = http.client.HTTPConnection("127.0.0.1", port, timeout=60)  # keep-alive, idle at the signal

        def in_flight() -> None:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            conn.request("GET", "/health")
            resp = conn.getresponse()
            answers.append((resp.status, resp.getheader("connection"), resp.read()))
            conn.close()

        def operator() -> None:
            idle.request("GET", "/health")
            idle.getresponse().read()
            cloud.faults["health"] = hold
            client = threading.Thread(target=in_flight)
            client.start()
            entered.wait(60)
            os.kill(os.getpid(), signal.SIGTERM)
            deadline = time.monotonic() + 60
            while not server.draining and time.monotonic() < deadline:
                time.sleep(0.02)
            try:  # the idle connection was closed by the drain: its next request gets no answer
                idle.request("GET", "/health")
                idle.getresponse()
                idle_closed.append(False)
            except (OSError, http.client.HTTPException):
                idle_closed.append(True)
            release.set()  # only now does the in-flight request finish
            client.join(60)

        helper = threading.Thread(target=operator)
        helper.start()
        finished = serve_until_signal(server, drain_timeout_s=60)  # returns after the drain
        helper.join(60)
        del cloud.faults["health"]
    assert finished
    assert len(answers) == 1
    status, connection, body = answers[0]
    assert status == 200 and json.loads(body)["status"] == "ok" and connection == "close"
    assert idle_closed == [True]
