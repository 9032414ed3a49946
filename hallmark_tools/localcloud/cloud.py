"""The local cloud: the declared topology provisioned on moto, in-process.

moto runs the real ASL files (``execute_state_machine``), real KMS ECDSA keys, DynamoDB, S3,
SQS and EventBridge. Its Docker-free Lambda only echoes payloads, so the local cloud dispatches
every invocation (Step Functions tasks, EventBridge targets, SQS event-source mappings, API
calls) to the same handler functions in ``functions/<name>/app.py`` with AWS's event shapes.

This module is the lifecycle, the invocation of a handler in an execution environment
(``environments``) and the HTTP API; along its seams:

- ``provision``: the topology created on moto (and ``batch``: the GPU runner's Batch stand-in);
- ``dispatch``: SQS event-source mappings, scheduled rules, EventBridge rule targets;
- ``faults``: ``inject_error`` and the chaos injector's AWS-call hooks (``chaos``: what to inject);
- ``patches``: moto and Powertools patched while a cloud runs (moto's Lambda routed here).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import parse_qsl

import boto3
import jwt
from moto import mock_aws

from hallmark_tools.localcloud import deployments, dispatch, faults, patches, provision, shapes
from hallmark_tools.localcloud.auth import LocalIssuer
from hallmark_tools.localcloud.chaos import Chaos
from hallmark_tools.localcloud.environments import (
    HandlerError,
    Invocation,
    Pool,
    Throttled,
    TimedOut,
)
from hallmark_tools.localcloud.faults import InjectedFault
from hallmark_tools.localcloud.function_env import scoped
from hallmark_tools.localcloud.state import LocalState
from hallmark_tools.topology import TOPOLOGY, Function, Topology, env_for, env_name, route_env
from hallmark_tools.topology.deployment import DEPLOYERS

__all__ = ["REGION", "ROOT", "ApiResponse", "HandlerError", "InjectedFault", "LambdaContext", "LocalCloud"]

ROOT = provision.ROOT
REGION = provision.REGION
ACCOUNT = shapes.ACCOUNT
MOTO_CONFIG: dict[str, Any] = {
    "stepfunctions": {"execute_state_machine": True},
    "lambda": {"use_docker": False},
    "batch": {"use_docker": False},
}



@dataclass
class ApiResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@dataclass
class LambdaContext:
    function_name: str
    memory_limit_in_mb: int
    timeout_s: int
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = "local"
    _deadline: float = 0.0

    def __post_init__(self) -> None:
        self.invoked_function_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{self.function_name}"
        self.log_group_name = f"/aws/lambda/{self.function_name}"
        self._deadline = time.monotonic() + self.timeout_s

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))




def _route_regex(path: str) -> re.Pattern[str]:
    parts = []
    for seg in path.strip("/").split("/"):
        m = re.fullmatch(r"\{(\w+)(\+?)\}", seg)
        if m:
            parts.append(f"(?P<{m.group(1)}>{'.+' if m.group(2) else '[^/]+'})")
        else:
            parts.append(re.escape(seg))
    return re.compile("^/" + "/".join(parts) + "/?$")


class LocalCloud:
    """Use as a context manager::

        with LocalCloud() as cloud:
            cloud.api("GET", "/health").json()
    """

    def __init__(
        self,
        topology: Topology = TOPOLOGY,
        *,
        env: dict[str, str] | None = None,
        serve_port: int | None = None,
        retry_delay_s: int = 0,
        schedule_every_s: float = 5.0,
        quiet: bool = True,
        seed_advisories: bool = True,
        chaos: Chaos | None = None,
        isolate_env: bool = False,
        state: LocalState | None = None,
    ) -> None:
        self.state = state  # saved state and keys to restore at boot (localcloud.state); None: start empty
        self.chaos = chaos  # faults on the asynchronous paths (localcloud.chaos); None: none
        self.isolate_env = isolate_env  # each function sees only its topology.env_for (localcloud.function_env)
        self.schedule_every_s = schedule_every_s  # scheduled rules fire this often locally
        self.topology = topology
        self.extra_env = env or {}
        self.serve_port = serve_port
        self.retry_delay_s = retry_delay_s
        self.quiet = quiet
        self.resources: dict[str, str] = {}
        self.arns: dict[tuple[str, str], str] = {}
        self.issuer = LocalIssuer()
        self._mock: Any = None
        self._server: Any = None
        self._pools: dict[str, Pool] = {}  # per function: its execution environments
        self._inspect: dict[str, ModuleType] = {}  # one module per function to read routes from
        self._module_lock = threading.Lock()
        self._running = 0  # worker threads running a handler (late ones included)
        self.discarded: list[tuple[str, str]] = []  # (function, request id) of late results dropped
        self.poisoned: set[str] = set()  # SQS message ids chaos makes fail until dead-lettered
        self._stop = threading.Event()
        self._pump: threading.Thread | None = None
        self._inflight = 0
        self._inflight_lock = threading.Lock()
        self._saved_env: dict[str, str | None] = {}
        self.invocations: list[tuple[str, float]] = []
        self.faults: dict[str, Callable[[dict[str, Any]], None]] = {}
        self.seed_advisories = seed_advisories
        self._advisory_dir: Any = None
        self._routes = [
            (r.method, _route_regex(r.path), r, f.name) for f in topology.functions for r in f.routes
        ]

    # ---------------------------------------------------------------- lifecycle
    def __enter__(self) -> LocalCloud:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        if patches.active() is not None:
            raise RuntimeError("a LocalCloud is already running in this process")
        self._set_env(
            {
                "AWS_DEFAULT_REGION": REGION,
                "AWS_REGION": REGION,
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_SESSION_TOKEN": "testing",
                "POWERTOOLS_TRACE_DISABLED": "true",
                "POWERTOOLS_METRICS_NAMESPACE": "Hallmark",
                "POWERTOOLS_LOG_LEVEL": os.environ.get("POWERTOOLS_LOG_LEVEL", "WARNING" if self.quiet else "INFO"),
                "HALLMARK_ENV": "local",
                # the advisory set: seeded at boot through the advisories_sync function (see
                # _seed_advisories); the validator re-reads the pointer on every validation
                "ADVISORY_SET_CACHE_SECONDS": "0",
            }
        )
        patches.install_patches()
        if self.quiet:
            # moto's Step Functions engine logs every Fail state (a Rejected package) as an error.
            import logging
            import warnings

            logging.getLogger("moto").setLevel(logging.CRITICAL)
            warnings.filterwarnings("ignore", message="No application metrics to publish")
        from hallmark.adapters import runtime

        runtime.reset()  # cached clients/signers of a previous boot point at old resources
        self._mock = mock_aws(config=MOTO_CONFIG)  # type: ignore[call-overload]
        self._mock.start()
        if self.serve_port is not None:
            from moto.server import ThreadedMotoServer

            self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.serve_port, verbose=False)
            self._server.start()
            endpoint = f"http://127.0.0.1:{self.serve_port}"
            # presigned URLs handed to callers must be reachable by another process (curl)
            self._set_env({"AWS_ENDPOINT_URL_S3": endpoint, "MOTO_PORT": str(self.serve_port)})
        patches.activate(self)
        try:
            self._provision()
            if self.state is not None:
                self.state.restore(self)
            self._install_chaos_hooks()
            self._set_env(self.resources)
            self._set_env(route_env(self.topology.functions))
            self._set_env(self.extra_env)
            self._seed_advisories()
        except Exception:
            self.stop()
            raise
        self._pump = threading.Thread(target=self._pump_loop, name="localcloud-sqs-pump", daemon=True)
        self._pump.start()

    def quiesce(self, timeout: float = 30.0) -> None:
        """Start no new work (scheduled rules, queue polls, event retries) and wait for the
        handlers still running: the state is then consistent (``localcloud.state`` saves it)."""
        self._stop.set()
        if self._pump is not None:
            self._pump.join(timeout=timeout)
        self._wait_handlers_quiet(timeout=timeout)

    def stop(self) -> None:
        self._stop.set()
        if self._pump is not None:
            self._pump.join(timeout=10)
        self._wait_executions_quiet()
        if self._server is not None:
            self._server.stop()
            self._server = None
        self._remove_chaos_hooks()
        if self._mock is not None:
            self._mock.stop()
            self._mock = None
        for k, v in self._saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        self._saved_env.clear()
        if self._advisory_dir is not None:
            self._advisory_dir.cleanup()
            self._advisory_dir = None
        for pool in self._pools.values():
            pool.close()
        self._pools.clear()
        self._inspect.clear()
        patches.remove_patches()
        patches.activate(None)

    def _seed_advisories(self) -> None:
        """Serve OSV-style ``<Ecosystem>/all.zip`` archives built from the committed real records
        (events/advisories/osv-sample.json) as ``file://`` URLs, and run the advisories_sync
        function once: the packages bucket then holds a set that went through the deployed
        fetch/parse/sha256/pointer/audit path, offline. The scheduled rule keeps re-syncing it."""
        from hallmark.release.advisories import ECOSYSTEMS, build_osv_archive

        if "ADVISORY_OSV_BASE_URL" not in self.extra_env:
            import tempfile

            records = json.loads((ROOT / "events" / "advisories" / "osv-sample.json").read_text())
            self._advisory_dir = tempfile.TemporaryDirectory(prefix="hallmark-osv-")
            base = Path(self._advisory_dir.name)
            for ecosystem in ECOSYSTEMS:
                mine = [r for r in records if any(
                    (a.get("package") or {}).get("ecosystem") == ecosystem for a in r.get("affected") or [])]
                (base / ecosystem).mkdir()
                (base / ecosystem / "all.zip").write_bytes(build_osv_archive(mine))
            self._set_env({"ADVISORY_OSV_BASE_URL": base.as_uri()})
        if self.seed_advisories and any(f.name == "advisories_sync" for f in self.topology.functions):
            self.invoke("advisories_sync", {"source": "localcloud.boot"})

    def _set_env(self, values: dict[str, str]) -> None:
        for k, v in values.items():
            self._saved_env.setdefault(k, os.environ.get(k))
            os.environ[k] = v

    # ---------------------------------------------------------------- clients
    def client(self, service: str) -> Any:
        return boto3.client(service, region_name=REGION)  # type: ignore[call-overload]

    # ---------------------------------------------------------------- provisioning (localcloud.provision)
    def physical_name(self, kind: str, name: str) -> str:
        return provision.physical_name(self.topology, kind, name)

    _provision = provision.provision
    render_asl = provision.render_asl

    # ---------------------------------------------------------------- invocation
    def pool(self, name: str) -> Pool:
        """The execution environments of function ``name`` (see ``localcloud.environments``)."""
        with self._module_lock:
            if name not in self._pools:
                self._pools[name] = Pool.of(self.topology.function(name), ROOT)
            return self._pools[name]

    def handler_module(self, name: str) -> ModuleType:
        """A module instance of the function's code that no invocation runs in (to read its routes,
        e.g. for the OpenAPI document): invocations each get an environment of their own."""
        with self._module_lock:
            module = self._inspect.get(name)
        if module is None:
            module = self.pool(name).new_module()
            with self._module_lock:
                module = self._inspect.setdefault(name, module)
        return module

    def invoke(self, name: str, event: Any, *, source: str = "direct") -> Any:
        """Run a function's handler in-process, in an execution environment of its own, as Lambda
        would: raises Throttled past the function's concurrency, TimedOut past its timeout (the
        late result is discarded), HandlerError for anything the handler raised."""
        fn = self.topology.function(name)
        with self._inflight_lock:
            self._inflight += 1
        started = time.perf_counter()
        try:
            return self._run_in_environment(fn, event, source)
        finally:
            self.invocations.append((name, time.perf_counter() - started))
            with self._inflight_lock:
                self._inflight -= 1

    def function_env(self, fn: Function) -> tuple[dict[str, str], frozenset[str]]:
        """(what ``fn`` sees: its ``topology.env_for``, with the local cloud's own process settings
        winning; what it must not see: every other provisioned resource and route variable)."""
        hidden = frozenset(self.resources) | frozenset(route_env(self.topology.functions))
        own = env_for(fn, lambda kind, name: self.resources[env_name(kind, name)], self.topology.functions)
        if fn.name in DEPLOYERS:  # what cdk/deployment.py adds to the deployer functions on AWS
            own.update({k: self.resources[k] for k in deployments.DEPLOYER_ENV if k in self.resources})
        for k in own:
            if k in self._saved_env and k not in hidden and k in os.environ:
                own[k] = os.environ[k]  # e.g. ADVISORY_SET_CACHE_SECONDS=0, a test's override
        return own, hidden

    def _run_in_environment(self, fn: Function, event: Any, source: str) -> Any:
        pool = self.pool(fn.name)
        # localcloud.function_env: opt-in (LocalCloud(isolate_env=True)); the whole suite passed with it
        # once, but the deployment flow stalled in "requested" in some runs with it on (issue 19, item 8)
        own_env, hidden_env = self.function_env(fn) if self.isolate_env else ({}, frozenset())
        try:
            with scoped(own_env, hidden_env):
                env = pool.acquire()  # Throttled past the limit
        except HandlerError:
            raise
        except Exception as exc:  # the module failed to load: Lambda's init error
            raise HandlerError("Runtime.ImportModuleError", f"{type(exc).__name__}: {exc}") from exc
        ctx = LambdaContext(fn.name, fn.memory, fn.timeout)
        inv = Invocation()
        fault = self.faults.get(fn.name)

        def work() -> None:
            result: Any = None
            error: BaseException | None = None
            faults.INVOCATION.source = source
            try:
                with scoped(own_env, hidden_env):
                    if fault is not None:
                        fault(event)
                    result = json.loads(json.dumps(env.module.handler(event, ctx), default=str))
            except BaseException as exc:  # settled below, re-raised in the caller's thread
                error = exc
            finally:
                env.invocations += 1
                if not inv.finish(result, error):
                    # the caller was told "Task timed out": this result goes nowhere
                    self.discarded.append((fn.name, ctx.aws_request_id))
                with self._inflight_lock:
                    self._running -= 1

        with self._inflight_lock:
            self._running += 1
        threading.Thread(target=work, name=f"lambda-{fn.name}-env{env.number}", daemon=True).start()
        if not inv.wait(fn.timeout):
            pool.abandon(env)  # the environment is never reused; its slot is free again
            raise TimedOut(ctx.aws_request_id, fn.timeout)
        pool.release(env)
        if inv.error is None:
            return inv.result
        error = inv.error
        if isinstance(error, HandlerError):
            raise error
        if not self.quiet:
            traceback.print_exception(error)
        raise HandlerError(type(error).__name__, str(error)) from error

    # ---------------------------------------------------------------- HTTP API
    def api(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        json_body: Any = None,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> ApiResponse:
        """One request through the HTTP API: route match, JWT authorizer, v2 event, handler."""
        hdrs = dict(headers or {})
        if token:
            hdrs["authorization"] = f"Bearer {token}"
        if json_body is not None:
            body = json.dumps(json_body).encode()
            hdrs.setdefault("content-type", "application/json")
        raw_path, _, raw_query = path.partition("?")
        for m, regex, route, fn_name in self._routes:
            match = regex.match(raw_path)
            if m != method.upper() or not match:
                continue
            claims: dict[str, Any] | None = None
            if not route.public:
                claims = self._authorize({k.lower(): v for k, v in hdrs.items()})
                if claims is None:
                    return _json_response(401, {"message": "Unauthorized", "error": {
                        "code": "unauthorized", "message": "a valid bearer token is required", "details": {}}})
            event = shapes.http_api_event(
                method=method.upper(),
                path=raw_path,
                route_key=route.key,
                path_parameters=match.groupdict(),
                query=dict(parse_qsl(raw_query)),
                raw_query=raw_query,
                headers=hdrs,
                body=body,
                claims=claims,
            )
            try:
                result = self.invoke(fn_name, event, source="api")
            except Throttled as exc:
                return _json_response(429, {"message": "Too Many Requests", "error": {
                    "code": "throttled", "message": f"{fn_name} is at its concurrency limit ({exc.limit}); retry",
                    "details": {"function": fn_name, "limit": exc.limit, "reason": exc.reason}}},
                    {"retry-after": "1"})
            except HandlerError as exc:
                # API Gateway answers a bare 500; the traceback goes where CloudWatch Logs would have it
                if self.quiet and exc.__cause__ is not None:
                    print(f"{method.upper()} {raw_path}: handler {fn_name} raised\n"
                          + "".join(traceback.format_exception(exc.__cause__)), file=sys.stderr, flush=True)
                return _json_response(500, {"message": "Internal Server Error", "error": {
                    "code": "internal", "message": exc.error_type, "details": {}}})
            return _from_lambda_proxy(result)
        return _json_response(404, {"message": "Not Found", "error": {
            "code": "route_not_found", "message": f"no route for {method.upper()} {raw_path}", "details": {}}})

    def _authorize(self, headers: dict[str, str]) -> dict[str, Any] | None:
        auth = headers.get("authorization", "")
        if not auth.lower().startswith("bearer "):
            return None
        try:
            return self.issuer.verify(auth[7:].strip())
        except jwt.InvalidTokenError:
            return None

    def token(self, role: str, sub: str | None = None, roles: list[str] | None = None) -> str:
        return self.issuer.token(sub or f"{role}-1", roles or [role])

    # ---------------------------------------------------------------- dispatch (localcloud.dispatch)
    _pump_loop = dispatch.pump_loop
    deliver_rule_target = dispatch.deliver_rule_target

    # ---------------------------------------------------------------- waiting
    def queue_depth(self, queue: str) -> int:
        attrs = self.client("sqs").get_queue_attributes(
            QueueUrl=self.resources[env_name("queue", queue)],
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])

    def wait_idle(self, timeout: float = 60.0) -> None:
        """Until every triggered queue is empty and no handler runs (twice in a row)."""
        queues = [fn.queue.queue for fn in self.topology.functions if fn.queue]
        deadline = time.monotonic() + timeout
        calm = 0
        while time.monotonic() < deadline:
            idle = self._inflight == 0 and self._running == 0 and all(self.queue_depth(q) == 0 for q in queues)
            calm = calm + 1 if idle else 0
            if calm >= 3:
                return
            time.sleep(0.05)
        raise TimeoutError("local cloud did not become idle")

    def wait_execution(
        self, arn: str, timeout: float = 60.0, until: tuple[str, ...] = ("SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")
    ) -> dict[str, Any]:
        sfn = self.client("stepfunctions")
        deadline = time.monotonic() + timeout
        while True:
            desc: dict[str, Any] = sfn.describe_execution(executionArn=arn)
            if desc["status"] in until:
                return desc
            if time.monotonic() > deadline:
                raise TimeoutError(f"execution {arn} still {desc['status']}")
            time.sleep(0.05)

    def executions(self, state_machine: str) -> list[dict[str, Any]]:
        sfn = self.client("stepfunctions")
        out: list[dict[str, Any]] = sfn.list_executions(
            stateMachineArn=self.arns[("state_machine", state_machine)]
        )["executions"]
        return out

    def _wait_executions_quiet(self) -> None:
        # Let running executions reach a stable point so their threads do not outlive the mock.
        with contextlib.suppress(Exception):
            self._wait_handlers_quiet(timeout=5)

    def _wait_handlers_quiet(self, timeout: float) -> None:
        """Until no handler runs (best effort: gives up after ``timeout`` seconds)."""
        deadline = time.monotonic() + timeout
        while (self._inflight or self._running) and time.monotonic() < deadline:
            time.sleep(0.05)

    # ---------------------------------------------------------------- faults (localcloud.faults)
    _install_chaos_hooks = faults.install_chaos_hooks
    _remove_chaos_hooks = faults.remove_chaos_hooks
    inject_error = faults.inject_error


def _json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> ApiResponse:
    return ApiResponse(status, {"content-type": "application/json", **(headers or {})}, json.dumps(body).encode())


def _from_lambda_proxy(result: Any) -> ApiResponse:
    if not isinstance(result, dict) or "statusCode" not in result:
        return ApiResponse(200, {"content-type": "application/json"}, json.dumps(result).encode())
    body = result.get("body") or ""
    raw = __import__("base64").b64decode(body) if result.get("isBase64Encoded") else body.encode()
    headers = {k.lower(): str(v) for k, v in (result.get("headers") or {}).items()}
    return ApiResponse(int(result["statusCode"]), headers, raw)

