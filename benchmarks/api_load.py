"""The local HTTP API under a team's load: ``--clients`` concurrent clients (default 32), each with
its own identity and one keep-alive connection, send a fixed number of mixed requests (one
``POST /packages`` submission for every ``--reads`` ``GET /packages/{id}`` status reads of the
client's own packages) to ``hallmark local serve`` (a separate process, as a user runs it).

Baseline in the same run: the same requests, by the same number of client threads, through the
handlers in-process (``LocalCloud.api``: route match, JWT authorizer, API Gateway v2 event,
execution environment, handler), without HTTP. The ratio served/in-process says what the HTTP
edge (sockets, parsing, a thread per connection) costs on top of the handlers.

Every answer is checked: a submission must be 201, a read 200 with the client's own identity;
anything else (429, 401, a reset) is counted as an error and reported.

    python benchmarks/api_load.py [--requests 640] [--clients 32] [--reads 3]

The last line is ``RESULT served_rps=.. inprocess_rps=.. ratio=.. served_p50_ms=.. served_p95_ms=..
served_p99_ms=.. inprocess_p50_ms=.. inprocess_p95_ms=.. inprocess_p99_ms=.. errors=..``.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hallmark_tools import samples
from hallmark_tools.localcloud.auth import LocalIssuer
from hallmark_tools.localcloud.cloud import LocalCloud
from hallmark_tools.localcloud.server import free_port

# (method, path, token, body) -> (status, json body)
Send = Callable[[str, str, str, Any], tuple[int, Any]]


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def plan(total: int, clients: int, reads: int) -> list[list[str]]:
    """Per client its sequence of requests: "submit" or "read" (a read of its latest package)."""
    mix = ["submit"] + ["read"] * reads
    return [[mix[j % len(mix)] for j in range(i, total, clients)] for i in range(clients)]


def run(label: str, make_send: Callable[[], Send], callers: list[tuple[str, str]],
        steps: list[list[str]]) -> dict[str, Any]:
    """Each client i runs steps[i] as callers[i] (sub, token) on its own connection."""
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(len(steps) + 1)

    def client(i: int) -> None:
        send = make_send()
        mine: list[float] = []
        latest: str | None = None
        sub, token = callers[i]
        start.wait()
        for n, step in enumerate(steps[i]):
            if step == "read" and latest is None:
                step = "submit"
            t0 = time.perf_counter()
            try:
                if step == "submit":
                    name = f"load-{label}-{i}-{n}"
                    sha = hashlib.sha256(name.encode()).hexdigest()
                    status, body = send("POST", "/packages", token,
                                        samples.submission(name, "1.0.0", b"z" * (n + 1), sha256=sha))
                    ok = status == 201
                    if ok:
                        latest = body["packageId"]
                else:
                    status, body = send("GET", f"/packages/{latest}", token, None)
                    ok = status == 200 and body.get("submittedBy") == sub
            except OSError as exc:
                status, body, ok = 0, f"{type(exc).__name__}: {exc}", False
            mine.append(time.perf_counter() - t0)
            if not ok:
                with lock:
                    errors.append(f"{sub} {step}: {status} {str(body)[:160]}")
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(len(steps))]
    for t in threads:
        t.start()
    start.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    return {"rps": len(latencies) / wall, "p50": pct(latencies, 50), "p95": pct(latencies, 95),
            "p99": pct(latencies, 99), "n": len(latencies), "wall": wall, "errors": errors}


def http_sender(port: int) -> Callable[[], Send]:
    def make() -> Send:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

        def send(method: str, path: str, token: str, body: Any) -> tuple[int, Any]:
            data = json.dumps(body).encode() if body is not None else None
            conn.request(method, path, body=data,
                         headers={"authorization": f"Bearer {token}", "content-type": "application/json"})
            resp = conn.getresponse()
            return resp.status, json.loads(resp.read())

        return send

    return make


def served(steps: list[list[str]], clients: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="hallmark-bench-home-") as home:
        port = free_port()
        proc = subprocess.Popen([sys.executable, "-m", "hallmark_tools.cli", "local", "serve", "--port", str(port)],
                                env={**os.environ, "HALLMARK_HOME": home},
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 120
            while True:
                try:
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                    conn.request("GET", "/health")
                    if conn.getresponse().status == 200:
                        break
                except OSError:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        raise SystemExit("hallmark local serve did not start") from None
                    time.sleep(0.2)
            issuer = LocalIssuer(Path(home))
            warm = [(f"warm-{i}", issuer.token(f"warm-{i}", ["submitter"])) for i in range(2)]
            run("warm", http_sender(port), warm, [s[:2] for s in steps[:2]])  # the first environments
            callers = [(f"served-{i}", issuer.token(f"served-{i}", ["submitter"])) for i in range(clients)]
            return run("served", http_sender(port), callers, steps)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)


def in_process(steps: list[list[str]], clients: int) -> dict[str, Any]:
    with LocalCloud() as cloud:
        def make() -> Send:
            def send(method: str, path: str, token: str, body: Any) -> tuple[int, Any]:
                resp = cloud.api(method, path, token=token, json_body=body)
                return resp.status, resp.json()

            return send

        warm = [(f"warm-{i}", cloud.token("submitter", f"warm-{i}")) for i in range(2)]
        run("warm", make, warm, [s[:2] for s in steps[:2]])
        callers = [(f"inprocess-{i}", cloud.token("submitter", f"inprocess-{i}")) for i in range(clients)]
        return run("inprocess", make, callers, steps)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=640)
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--reads", type=int, default=3, help="status reads per submission")
    args = ap.parse_args()
    steps = plan(args.requests, args.clients, args.reads)
    results = {"served": served(steps, args.clients), "inprocess": in_process(steps, args.clients)}
    for label, r in results.items():
        print(f"{label:>9}: {r['n']} requests in {r['wall']:.2f} s = {r['rps']:.0f}/s; "
              f"p50 {r['p50'] * 1000:.1f} ms, p95 {r['p95'] * 1000:.1f} ms, p99 {r['p99'] * 1000:.1f} ms; "
              f"{len(r['errors'])} errors")
        for e in r["errors"][:5]:
            print(f"           {e}")
    s, i = results["served"], results["inprocess"]
    errors = len(s["errors"]) + len(i["errors"])
    print(f"RESULT served_rps={s['rps']:.1f} inprocess_rps={i['rps']:.1f} ratio={s['rps'] / i['rps']:.3f} "
          f"served_p50_ms={s['p50'] * 1000:.1f} served_p95_ms={s['p95'] * 1000:.1f} served_p99_ms={s['p99'] * 1000:.1f} "
          f"inprocess_p50_ms={i['p50'] * 1000:.1f} inprocess_p95_ms={i['p95'] * 1000:.1f} "
          f"inprocess_p99_ms={i['p99'] * 1000:.1f} errors={errors}")


if __name__ == "__main__":
    main()
