"""Execution environments as Lambda has them (issue 25): one invocation per environment, each
environment its own module instance, throttling past the function's reserved concurrency, and
the function's timeout enforced with the late result discarded.

Before: one module per function shared by every thread; Powertools' resolver on it holds the
current event, so concurrent submissions were stored under another caller's identity or body,
and valid tokens were refused."""

from __future__ import annotations

import dataclasses
import hashlib
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from hallmark_tools import samples
from hallmark_tools.localcloud import shapes
from hallmark_tools.localcloud.cloud import LocalCloud
from hallmark_tools.localcloud.environments import HandlerError, Throttled, TimedOut
from hallmark_tools.topology import TOPOLOGY, Function

CLIENTS = 64

# The real topology, with health limited to one environment, and a function with a 1 s timeout
# running health's code (invoked directly, no route).
TOPO = dataclasses.replace(TOPOLOGY, functions=(
    *(dataclasses.replace(f, reserved_concurrency=1) if f.name == "health" else f for f in TOPOLOGY.functions),
    Function("sleeper", "health's code with a 1 s timeout", code="health", timeout=1, reserved_concurrency=2),
))


@pytest.fixture(scope="module")
def cloud() -> Iterator[LocalCloud]:
    with LocalCloud(TOPO) as c:
        yield c


def _health_event() -> dict[str, Any]:
    return shapes.http_api_event(method="GET", path="/health", route_key="GET /health", path_parameters={},
                                 query={}, raw_query="", headers={}, body=None, claims=None)


def _submit_all(cloud: LocalCloud, round_: str) -> list[str]:
    """CLIENTS submitters at once, each with its own identity and body; what each saw that was
    not its own."""
    start = threading.Barrier(CLIENTS)
    problems: list[str] = []

    def client(i: int) -> None:
        sub, name = f"user-{round_}-{i}", f"envpkg-{round_}-{i}"
        token = cloud.token("submitter", sub)
        body = samples.submission(name, "1.0.0", b"x" * (i + 1),
                                  sha256=hashlib.sha256(f"{round_}/{i}".encode()).hexdigest())
        start.wait()
        resp = cloud.api("POST", "/packages", token=token, json_body=body)
        if resp.status != 201:
            problems.append(f"{sub}: POST -> {resp.status} {resp.body[:200]!r}")
            return
        created = resp.json()
        if created["uploadHeaders"]["x-amz-checksum-sha256"] != _b64(body["sha256"]):
            problems.append(f"{sub}: upload checksum of another body")
        got = cloud.api("GET", f"/packages/{created['packageId']}", token=token)
        if got.status != 200:
            problems.append(f"{sub}: GET -> {got.status} {got.body[:200]!r}")
            return
        doc = got.json()
        if doc["submittedBy"] != sub:
            problems.append(f"{sub}: stored as submitted by {doc['submittedBy']}")
        if (doc["meta"]["name"], doc["meta"]["sha256"], doc["meta"]["size"]) != (name, body["sha256"], i + 1):
            problems.append(f"{sub}: stored with another body {doc['meta']}")

    threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return problems


def _b64(hex_digest: str) -> str:
    import base64

    return base64.b64encode(bytes.fromhex(hex_digest)).decode()


def test_64_concurrent_submitters_each_see_only_their_own_identity_and_body(cloud: LocalCloud) -> None:
    problems = _submit_all(cloud, "a")
    assert problems == []
    pool = cloud.pool("packages_api")
    assert pool.busy == 0 and 1 < pool.cold_starts <= pool.limit  # several environments, reused warm


def test_a_function_at_its_reserved_concurrency_is_throttled_429_and_recovers(cloud: LocalCloud) -> None:
    entered, release = threading.Event(), threading.Event()

    def hold(event: dict[str, Any]) -> None:
        entered.set()
        release.wait(30)

    cloud.faults["health"] = hold
    holder = threading.Thread(target=lambda: cloud.api("GET", "/health"))
    try:
        holder.start()
        assert entered.wait(30)
        throttled = cloud.api("GET", "/health")
        assert throttled.status == 429
        assert throttled.json()["error"]["code"] == "throttled"
        assert throttled.json()["error"]["details"] == {
            "function": "health", "limit": 1, "reason": "ReservedFunctionConcurrentInvocationLimitExceeded"}
        with pytest.raises(Throttled):
            cloud.invoke("health", _health_event())
    finally:
        del cloud.faults["health"]
        release.set()
        holder.join()
    recovered = cloud.api("GET", "/health")
    assert recovered.status == 200 and recovered.json()["status"] == "ok"
    assert cloud.pool("health").cold_starts == 1  # one environment, reused


def test_a_timed_out_invocation_fails_and_its_late_result_never_lands(cloud: LocalCloud) -> None:
    entered, release = threading.Event(), threading.Event()

    def stall(event: dict[str, Any]) -> None:
        entered.set()
        release.wait(30)  # past the function's 1 s timeout, then the handler returns a result

    pool = cloud.pool("sleeper")
    cloud.faults["sleeper"] = stall
    try:
        with pytest.raises(TimedOut) as raised:
            cloud.invoke("sleeper", _health_event())
    finally:
        del cloud.faults["sleeper"]
    assert raised.value.error_type == "Sandbox.Timedout"
    assert "Task timed out after 1.00 seconds" in raised.value.message
    assert entered.is_set() and pool.busy == 0 and pool.retired == 1  # its slot is free at once
    release.set()
    cloud.wait_idle(timeout=30)  # the late handler has finished: its result was dropped
    assert [rid for fn, rid in cloud.discarded if fn == "sleeper"] == [raised.value.request_id]
    # the retired environment is never reused: the next invocation is a cold start, and answers itself
    before = pool.cold_starts
    result = cloud.invoke("sleeper", _health_event())
    assert result["statusCode"] == 200 and pool.cold_starts == before + 1


def test_a_handler_error_reaches_the_caller_and_the_environment_stays_usable(cloud: LocalCloud) -> None:
    def boom(event: dict[str, Any]) -> None:
        raise RuntimeError("injected")

    cloud.faults["sleeper"] = boom
    try:
        with pytest.raises(HandlerError) as raised:
            cloud.invoke("sleeper", _health_event())
    finally:
        del cloud.faults["sleeper"]
    assert (raised.value.error_type, raised.value.message) == ("RuntimeError", "injected")
    assert cloud.invoke("sleeper", _health_event())["statusCode"] == 200


def test_environments_do_not_share_module_globals(cloud: LocalCloud) -> None:
    pool = cloud.pool("sleeper")
    a, b = pool.acquire(), pool.acquire()
    try:
        assert a.module is not b.module and a.module.app is not b.module.app
        with pytest.raises(Throttled):  # its reserved concurrency is 2
            pool.acquire()
    finally:
        pool.release(a)
        pool.release(b)


def test_reserved_concurrency_is_validated() -> None:
    with pytest.raises(ValueError):
        Function("f", "d", reserved_concurrency=-1)
    assert all(f.reserved_concurrency is None or f.reserved_concurrency >= 0 for f in TOPOLOGY.functions)


def test_a_throttled_lambda_invoke_is_a_429_too_many_requests_for_step_functions(cloud: LocalCloud) -> None:
    """Step Functions tasks and other Lambda API callers see Lambda's own throttle error, which
    Step Functions names Lambda.TooManyRequestsException (the ASL retries it)."""
    import json

    import boto3
    from botocore.config import Config
    from botocore.exceptions import ClientError

    pool = cloud.pool("sleeper")
    held = [pool.acquire(), pool.acquire()]
    lam = boto3.client("lambda", region_name="us-east-1", config=Config(retries={"total_max_attempts": 1}))
    try:
        with pytest.raises(ClientError) as raised:
            lam.invoke(FunctionName="sleeper", Payload=json.dumps(_health_event()).encode())
    finally:
        for env in held:
            pool.release(env)
    err = raised.value.response
    assert err["Error"]["Code"] == "TooManyRequestsException"
    assert err["ResponseMetadata"]["HTTPStatusCode"] == 429
    answered = lam.invoke(FunctionName="sleeper", Payload=json.dumps(_health_event()).encode())
    assert "FunctionError" not in answered and json.loads(answered["Payload"].read())["statusCode"] == 200


def test_a_route_reads_its_own_event_while_another_environment_resolves(cloud: LocalCloud) -> None:
    """Powertools keeps the event being resolved on its class (one per process): while one
    environment's route runs, another environment resolving a request must not change what the
    first one reads as ``app.current_event`` (before: it read the other request's)."""
    from hallmark_tools.localcloud.cloud import LambdaContext

    pool = cloud.pool("sleeper")
    a, b = pool.new_module(), pool.new_module()  # two fresh environments' modules (no route run yet)
    entered, gate = threading.Event(), threading.Event()
    seen: list[str] = []

    def pause(app: Any, next_middleware: Any) -> Any:
        entered.set()
        gate.wait(30)
        seen.append(app.current_event.request_context.request_id)
        return next_middleware(app)

    a.app.use([pause])
    first, second = _health_event(), _health_event()
    runs = threading.Thread(target=lambda: a.handler(first, LambdaContext("sleeper", 128, 1)))
    try:
        runs.start()
        assert entered.wait(30)
        assert b.handler(second, LambdaContext("sleeper", 128, 1))["statusCode"] == 200
    finally:
        gate.set()
        runs.join()
    assert seen == [first["requestContext"]["requestId"]]
