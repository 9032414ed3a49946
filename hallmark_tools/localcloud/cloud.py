"""The local cloud: the declared topology provisioned on moto, in-process.

moto runs the real ASL files (``execute_state_machine``), real KMS ECDSA keys, DynamoDB, S3,
SQS and EventBridge. Its Docker-free Lambda only echoes payloads, so this module dispatches
every invocation (Step Functions tasks, EventBridge targets, SQS event-source mappings, API
calls) to the same handler functions in ``functions/<name>/app.py`` with AWS's event shapes.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import sys
import threading
import time
import traceback
import uuid
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import parse_qsl

import boto3
import jwt
from moto import mock_aws
from moto.awslambda.exceptions import LambdaClientError
from moto.awslambda.models import LambdaFunction
from moto.awslambda_simple.models import LambdaSimpleBackend
from moto.core.config import default_user_config
from moto.events.models import Rule as MotoRule
from moto.utilities.arns import parse_arn

from hallmark_tools.localcloud import shapes
from hallmark_tools.localcloud.auth import LocalIssuer
from hallmark_tools.localcloud.batch import install_batch_patches
from hallmark_tools.localcloud.chaos import Chaos
from hallmark_tools.localcloud.environments import (
    HandlerError,
    Invocation,
    Pool,
    Throttled,
    TimedOut,
)
from hallmark_tools.localcloud.state import LocalState
from hallmark_tools.topology import (
    BUS_NAME,
    TOPOLOGY,
    Function,
    Topology,
    env_name,
    resolve_pattern,
    route_env,
)

ROOT = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
ACCOUNT = shapes.ACCOUNT
MOTO_CONFIG: dict[str, Any] = {
    "stepfunctions": {"execute_state_machine": True},
    "lambda": {"use_docker": False},
    "batch": {"use_docker": False},
}
_ACTIVE: LocalCloud | None = None
_CHAOS_CODES = {"dynamodb": "ProvisionedThroughputExceededException", "kms": "ThrottlingException"}
_INVOCATION = threading.local()  # .source of the invocation the current worker thread runs ("api", ...)
_RESTORE: list[tuple[Any, str, Any]] = []  # (owner, attribute, original) of every moto patch


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


@dataclass
class InjectedFault:
    """One fault installed by :meth:`LocalCloud.inject_error`; ``injected`` counts the calls it failed."""

    service: str
    operation: str
    code: str
    times: int | None
    when: Callable[[dict[str, Any]], bool] | None
    injected: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def take(self, params: dict[str, Any]) -> bool:
        with self._lock:
            if self.times is not None and self.injected >= self.times:
                return False
            if self.when is not None and not self.when(params):
                return False
            self.injected += 1
            return True


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
        state: LocalState | None = None,
    ) -> None:
        self.state = state  # saved state and keys to restore at boot (localcloud.state); None: start empty
        self.chaos = chaos  # faults on the asynchronous paths (localcloud.chaos); None: none
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
        global _ACTIVE
        if _ACTIVE is not None:
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
        _install_patches()
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
        _ACTIVE = self
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

    def stop(self) -> None:
        global _ACTIVE
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
        _remove_patches()
        _ACTIVE = None

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

    # ---------------------------------------------------------------- provisioning
    def physical_name(self, kind: str, name: str) -> str:
        base = f"hallmark-{name}"
        if kind == "queue" and any(q.fifo and name in (q.name, q.dlq_name) for q in self.topology.queues):
            return base + ".fifo"
        return base

    def _provision(self) -> None:
        t = self.topology
        iam, kms, ddb, s3, sqs, events, sfn, lam = (
            self.client(s) for s in ("iam", "kms", "dynamodb", "s3", "sqs", "events", "stepfunctions", "lambda")
        )
        role = iam.create_role(
            RoleName="hallmark-local",
            AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
        )["Role"]["Arn"]
        for key in t.keys:
            spec = {"KeySpec": "ECC_NIST_P256", "KeyUsage": "SIGN_VERIFY"} if key.signing else {}
            meta = kms.create_key(Description=f"hallmark {key.name}", **spec)["KeyMetadata"]
            if self.state is not None:
                meta = self.state.adopt_key(key.name, meta)  # the saved key's id, ARN and material
            kms.create_alias(AliasName=f"alias/hallmark-{key.name}", TargetKeyId=meta["KeyId"])
            self.resources[env_name("key", key.name)] = meta["Arn"]
            self.arns[("key", key.name)] = meta["Arn"]
        for table in t.tables:
            attrs = [{"AttributeName": table.partition_key, "AttributeType": "S"}]
            schema = [{"AttributeName": table.partition_key, "KeyType": "HASH"}]
            if table.sort_key:
                attrs.append({"AttributeName": table.sort_key, "AttributeType": "S"})
                schema.append({"AttributeName": table.sort_key, "KeyType": "RANGE"})
            name = self.physical_name("table", table.name)
            desc = ddb.create_table(
                TableName=name, AttributeDefinitions=attrs, KeySchema=schema, BillingMode="PAY_PER_REQUEST"
            )["TableDescription"]
            if table.ttl_attribute:
                ddb.update_time_to_live(
                    TableName=name,
                    TimeToLiveSpecification={"Enabled": True, "AttributeName": table.ttl_attribute},
                )
            self.resources[env_name("table", table.name)] = name
            self.arns[("table", table.name)] = desc["TableArn"]
        for bucket in t.buckets:
            name = f"hallmark-{bucket.name}-{ACCOUNT}"
            s3.create_bucket(Bucket=name, ObjectLockEnabledForBucket=bucket.object_lock)
            if bucket.versioned or bucket.object_lock:
                s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
            if bucket.eventbridge:
                s3.put_bucket_notification_configuration(
                    Bucket=name, NotificationConfiguration={"EventBridgeConfiguration": {}}
                )
            self.resources[env_name("bucket", bucket.name)] = name
            self.arns[("bucket", bucket.name)] = f"arn:aws:s3:::{name}"
        for queue in t.queues:
            fifo_attrs: dict[str, str] = {"FifoQueue": "true"} if queue.fifo else {}
            dlq_url = sqs.create_queue(
                QueueName=self.physical_name("queue", queue.dlq_name), Attributes=fifo_attrs
            )["QueueUrl"]
            dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
                "QueueArn"
            ]
            queue_attrs: dict[str, str] = {
                **fifo_attrs,
                "VisibilityTimeout": str(queue.visibility_timeout),
                "RedrivePolicy": json.dumps(
                    {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": queue.max_receive_count}
                ),
            }
            if queue.fifo and queue.content_based_dedup:
                queue_attrs["ContentBasedDeduplication"] = "true"
            url = sqs.create_queue(QueueName=self.physical_name("queue", queue.name), Attributes=queue_attrs)["QueueUrl"]
            arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            self.resources[env_name("queue", queue.name)] = url
            self.resources[env_name("queue", queue.dlq_name)] = dlq_url
            self.arns[("queue", queue.name)] = arn
            self.arns[("queue", queue.dlq_name)] = dlq_arn
        events.create_event_bus(Name=BUS_NAME)
        self.resources[env_name("bus", BUS_NAME)] = BUS_NAME
        zipped = io.BytesIO()
        with zipfile.ZipFile(zipped, "w") as zf:
            zf.writestr("app.py", "def handler(event, context):\n    return event\n")
        for fn in t.functions:
            arn = lam.create_function(
                FunctionName=fn.name,
                Runtime="python3.12",
                Role=role,
                Handler=fn.handler,
                Code={"ZipFile": zipped.getvalue()},
                Timeout=fn.timeout,
                MemorySize=fn.memory,
            )["FunctionArn"]
            self.arns[("function", fn.name)] = arn
        for sm in t.state_machines:
            self.arns[("state_machine", sm.name)] = (
                f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:hallmark-{sm.name}"
            )
            self.resources[env_name("state_machine", sm.name)] = self.arns[("state_machine", sm.name)]
        for sm in t.state_machines:
            sfn.create_state_machine(
                name=f"hallmark-{sm.name}", definition=self.render_asl(sm.name), roleArn=role, type="STANDARD"
            )
        for rule in t.rules:
            bus = BUS_NAME if rule.bus == "hallmark" else "default"
            if rule.schedule:
                events.put_rule(Name=f"hallmark-{rule.name}", EventBusName=bus, ScheduleExpression=rule.schedule)
            else:
                pattern = resolve_pattern(rule.pattern, lambda kind, name: self.resources[env_name(kind, name)])
                events.put_rule(Name=f"hallmark-{rule.name}", EventBusName=bus, EventPattern=json.dumps(pattern))
            target: dict[str, Any] = {"Id": "1", "Arn": self.arns[(rule.target.kind, rule.target.name)]}
            if rule.target.message_group:
                target["SqsParameters"] = {"MessageGroupId": rule.target.message_group}
            events.put_targets(Rule=f"hallmark-{rule.name}", EventBusName=bus, Targets=[target])

    def render_asl(self, name: str) -> str:
        sm = next(s for s in self.topology.state_machines if s.name == name)
        text = (ROOT / "statemachines" / sm.asl).read_text()
        for placeholder, (kind, value) in sm.substitutions.items():
            if kind == "literal":
                resolved = value
            elif kind == "queue":
                resolved = self.resources[env_name("queue", value)]
            elif kind == "table":
                resolved = self.resources[env_name("table", value)]
            else:
                resolved = self.arns[(kind, value)]
            text = text.replace("${" + placeholder + "}", resolved)
        leftover = re.findall(r"\$\{(\w+)\}", text)
        if leftover:
            raise ValueError(f"{sm.asl}: unresolved substitutions {leftover}")
        return text

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

    def _run_in_environment(self, fn: Function, event: Any, source: str) -> Any:
        pool = self.pool(fn.name)
        try:
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
            _INVOCATION.source = source
            try:
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

    # ---------------------------------------------------------------- SQS event-source mappings
    def _pump_loop(self) -> None:
        sqs = self.client("sqs")
        mappings = [(fn, fn.queue) for fn in self.topology.functions if fn.queue]
        scheduled = [r for r in self.topology.rules if r.schedule and r.target.kind == "function"]
        next_tick = time.monotonic() + self.schedule_every_s
        while not self._stop.is_set():
            busy = False
            if scheduled and time.monotonic() >= next_tick:
                next_tick = time.monotonic() + self.schedule_every_s
                for rule in scheduled:
                    self._tick(rule.name, rule.target.name)
            for fn, trig in mappings:
                assert trig is not None
                try:
                    busy |= self._deliver_batch(sqs, fn, trig.queue, trig.batch_size)
                except Exception:  # the pump must survive anything a handler does
                    if not self.quiet:
                        traceback.print_exc()
            if not busy:
                self._stop.wait(0.02)

    def _tick(self, rule: str, function: str) -> None:
        event = {"version": "0", "id": str(uuid.uuid4()), "detail-type": "Scheduled Event", "source": "aws.events",
                 "account": ACCOUNT, "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "region": REGION,
                 "resources": [f"arn:aws:events:{REGION}:{ACCOUNT}:rule/hallmark-{rule}"], "detail": {}}
        try:
            self.invoke(function, event)
        except HandlerError:
            if not self.quiet:
                traceback.print_exc()

    def _deliver_batch(self, sqs: Any, fn: Function, queue: str, batch_size: int) -> bool:
        url = self.resources[env_name("queue", queue)]
        msgs = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=min(batch_size, 10), AttributeNames=["All"], WaitTimeSeconds=0
        ).get("Messages", [])
        if not msgs:
            return False
        with self._inflight_lock:
            self._inflight += 1
        try:
            event = {"Records": [shapes.sqs_record(m, self.arns[("queue", queue)], REGION) for m in msgs]}
            chaos = self.chaos
            try:
                if chaos is not None and chaos.roll("queue_error"):
                    raise HandlerError("ChaosError", "injected before the handler ran")
                result = self.invoke(fn.name, event, source="sqs") or {}
                if chaos is not None and chaos.roll("queue_late"):
                    raise HandlerError("Sandbox.Timedout", "injected: the handler ran, its result is discarded")
                failed = {f["itemIdentifier"] for f in result.get("batchItemFailures", [])}
                if chaos is not None and chaos.roll("queue_duplicate"):
                    with contextlib.suppress(HandlerError):  # the same records once more: at least once
                        self.invoke(fn.name, event, source="sqs")
            except HandlerError:
                failed = {m["MessageId"] for m in msgs}
            for m in msgs:
                if m["MessageId"] in failed:
                    sqs.change_message_visibility(
                        QueueUrl=url, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=self.retry_delay_s
                    )
                else:
                    sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
        finally:
            with self._inflight_lock:
                self._inflight -= 1
        return True

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

    # ---------------------------------------------------------------- fault injection
    def _install_chaos_hooks(self) -> None:
        """Chaos ``aws_throttle``: DynamoDB and KMS calls made by a handler that is not serving an
        API request fail throttled (as when botocore's own retries are spent), at a tenth of the
        chaos rate (a step makes many calls, and each failure costs a whole task or batch)."""
        chaos = self.chaos
        if chaos is None or "aws_throttle" not in chaos.kinds:
            return
        from botocore.awsrequest import AWSResponse, HTTPHeaders

        if boto3.DEFAULT_SESSION is None:
            boto3.setup_default_session()
        events = boto3.DEFAULT_SESSION.events  # type: ignore[union-attr]

        def hook(service: str) -> Callable[..., Any]:
            def before(**_: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
                source = getattr(_INVOCATION, "source", None)
                if source in (None, "api") or not chaos.roll("aws_throttle", scale=0.1):
                    return None
                code = _CHAOS_CODES[service]
                return (AWSResponse("https://localcloud.invalid/", 400, HTTPHeaders(), None),
                        {"Error": {"Code": code, "Message": "injected by LocalCloud chaos"},
                         "ResponseMetadata": {"HTTPStatusCode": 400, "HTTPHeaders": {}}})
            return before

        for service in _CHAOS_CODES:
            events.register(f"before-call.{service}", hook(service), unique_id=f"localcloud-chaos-{service}")

    def _remove_chaos_hooks(self) -> None:
        if self.chaos is None or boto3.DEFAULT_SESSION is None:
            return
        for service in _CHAOS_CODES:
            boto3.DEFAULT_SESSION.events.unregister(  # type: ignore[union-attr]
                f"before-call.{service}", unique_id=f"localcloud-chaos-{service}")

    @contextlib.contextmanager
    def inject_error(
        self,
        service: str,
        operation: str,
        code: str,
        *,
        times: int | None = 1,
        when: Callable[[dict[str, Any]], bool] | None = None,
        after_call: bool = False,
        status: int = 400,
        message: str = "injected by LocalCloud.inject_error",
    ) -> Iterator[InjectedFault]:
        """Make boto3 calls ``service.operation`` (e.g. "kms", "Sign") fail with the AWS error ``code``.

        The next ``times`` matching calls (every one with ``times=None``) raise the ``ClientError``
        botocore raises for that code, as if its own retries were spent; ``when(params)`` narrows
        the calls (the operation's API parameters). With ``after_call`` the call is made first and
        the error raised after it succeeded: a write that committed, then a crash or a lost response.

        Installed on the default boto3 session (``before-call`` / ``after-call`` events), which the
        handlers' clients are made from; the handlers' cached clients are rebuilt on the way in and
        out (``runtime.reset()``) so that they see it, and only they.
        """
        import boto3
        from botocore.awsrequest import AWSResponse, HTTPHeaders
        from botocore.exceptions import ClientError

        from hallmark.adapters import runtime

        fault = InjectedFault(service, operation, code, times, when)
        error = {"Error": {"Code": code, "Message": message},
                 "ResponseMetadata": {"HTTPStatusCode": status, "HTTPHeaders": {}}}
        key = "localcloud_fault_params"

        def remember(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
            context[key] = params

        def before(context: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
            if after_call or not fault.take(context.get(key) or {}):
                return None
            return AWSResponse("https://localcloud.invalid/", status, HTTPHeaders(), None), json.loads(json.dumps(error))

        def after(http_response: Any, context: dict[str, Any], **_: Any) -> None:
            if after_call and http_response.status_code < 300 and fault.take(context.get(key) or {}):
                raise ClientError(json.loads(json.dumps(error)), operation)  # type: ignore[arg-type]

        if boto3.DEFAULT_SESSION is None:
            boto3.setup_default_session()
        events = boto3.DEFAULT_SESSION.events  # type: ignore[union-attr]
        uid = f"localcloud-fault-{id(fault)}"
        hooks: tuple[tuple[str, Callable[..., Any]], ...] = (
            ("before-parameter-build", remember), ("before-call", before), ("after-call", after))
        for event, handler in hooks:
            events.register(f"{event}.{service}.{operation}", handler, unique_id=f"{uid}-{event}")  # type: ignore[arg-type]
        # A handler already running may be building the cached clients from the session as it was
        # (without the hooks) and would store them after the reset: let those finish first.
        self._wait_handlers_quiet(timeout=30)
        runtime.reset()
        try:
            yield fault
        finally:
            for event, _handler in hooks:
                events.unregister(f"{event}.{service}.{operation}", unique_id=f"{uid}-{event}")
            fault.times = fault.injected  # clients made meanwhile keep the hooks: exhaust them
            runtime.reset()

    # ---------------------------------------------------------------- EventBridge targets
    def deliver_rule_target(self, target: dict[str, Any], event: dict[str, Any]) -> None:
        arn = parse_arn(target["Arn"])
        payload = shapes.normalize_eventbridge(event)
        if arn.service == "lambda":
            name = arn.resource_id

            def run() -> None:
                attempt = throttles = 0
                chaos = self.chaos
                while attempt < 3 and not self._stop.is_set():  # async invoke: Lambda retries twice
                    try:
                        if chaos is not None and chaos.roll("event_error"):
                            raise HandlerError("ChaosError", "injected before the handler ran")
                        self.invoke(name, payload, source="events")
                        if chaos is not None and chaos.roll("event_duplicate"):
                            with contextlib.suppress(HandlerError):  # EventBridge is at least once
                                self.invoke(name, payload, source="events")
                        return
                    except Throttled:
                        # Lambda keeps a throttled async event queued and retries it (up to 6 h):
                        # a throttle is no attempt
                        throttles += 1
                        time.sleep(min(1.0, 0.02 * throttles))
                    except HandlerError:
                        attempt += 1
                        time.sleep(0.05 * attempt)

            threading.Thread(target=run, daemon=True).start()
        elif arn.service == "states":
            # A name derived from the event keeps a redelivered event from starting a second
            # execution (moto reuses one event id for every S3 notification, so hash it all).
            name = str(uuid.uuid5(uuid.NAMESPACE_URL, json.dumps(payload, sort_keys=True)))
            sfn = self.client("stepfunctions")
            sfn.start_execution(stateMachineArn=target["Arn"], name=name, input=json.dumps(payload))
            if self.chaos is not None and self.chaos.roll("event_duplicate"):
                with contextlib.suppress(Exception):  # the same name: ExecutionAlreadyExists or a no-op
                    sfn.start_execution(stateMachineArn=target["Arn"], name=name, input=json.dumps(payload))


def _json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> ApiResponse:
    return ApiResponse(status, {"content-type": "application/json", **(headers or {})}, json.dumps(body).encode())


def _from_lambda_proxy(result: Any) -> ApiResponse:
    if not isinstance(result, dict) or "statusCode" not in result:
        return ApiResponse(200, {"content-type": "application/json"}, json.dumps(result).encode())
    body = result.get("body") or ""
    raw = __import__("base64").b64decode(body) if result.get("isBase64Encoded") else body.encode()
    headers = {k.lower(): str(v) for k, v in (result.get("headers") or {}).items()}
    return ApiResponse(int(result["statusCode"]), headers, raw)


class _TooManyRequests(LambdaClientError):
    """What the Lambda Invoke API answers a throttled call: HTTP 429, TooManyRequestsException
    (Step Functions reports it as Lambda.TooManyRequestsException, which the ASL retries)."""

    code = 429

    def __init__(self, exc: Throttled) -> None:
        super().__init__("TooManyRequestsException", exc.message)
        self.description = json.dumps({"__type": "TooManyRequestsException", "message": exc.message,
                                       "Reason": exc.reason, "Type": "User"})


def _patch(owner: Any, attribute: str, replacement: Any) -> None:
    _RESTORE.append((owner, attribute, owner.__dict__.get(attribute)))
    setattr(owner, attribute, replacement)


def _remove_patches() -> None:
    while _RESTORE:
        owner, attribute, original = _RESTORE.pop()
        if original is None:
            delattr(owner, attribute)
        else:
            setattr(owner, attribute, original)


def _install_patches() -> None:
    """Route moto's Lambda invocations and EventBridge lambda/states targets to the active cloud
    and close moto's fidelity gaps; undone when the cloud stops."""
    original_invoke = LambdaFunction.invoke
    original_send = MotoRule.send_to_targets

    def invoke(self: LambdaFunction, body: str, request_headers: Any, response_headers: Any) -> str | bytes:
        cloud = _ACTIVE
        if cloud is None or self.function_name not in {f.name for f in cloud.topology.functions}:
            return original_invoke(self, body, request_headers, response_headers)
        event = json.loads(body) if body else {}
        if cloud.chaos is not None and cloud.chaos.roll("task_throttle"):
            raise _TooManyRequests(Throttled(self.function_name, 0))
        try:
            result = cloud.invoke(self.function_name, event, source="lambda-api")
        except Throttled as exc:
            raise _TooManyRequests(exc) from exc
        except HandlerError as exc:
            response_headers["x-amz-function-error"] = "Unhandled"
            return json.dumps({"errorType": exc.error_type, "errorMessage": exc.message, "stackTrace": []})
        return json.dumps(result)

    def send_to_targets(self: MotoRule, original_event: Any, transform_input: bool = True) -> None:
        cloud = _ACTIVE
        if cloud is not None and self.scheduled_expression:
            return None  # a schedule rule has no pattern: moto would match every event
        if cloud is None or not self.event_pattern.matches_event(original_event):
            return original_send(self, original_event, transform_input)
        ours = [t for t in self.targets if parse_arn(t["Arn"]).service in ("lambda", "states")]
        for target in ours:
            cloud.deliver_rule_target(target, original_event)
        rest = [t for t in self.targets if t not in ours]
        if rest:
            saved = self.targets
            self.targets = rest
            try:
                original_send(self, original_event, transform_input)
            finally:
                self.targets = saved

    _patch_kms_digest()
    _patch_state_machine_copy()
    _patch_metrics_lock()
    _patch_resolver_event()
    _patch_dynamodb_atomic()
    install_batch_patches(_patch)
    def simple_invoke(self: Any, function_name: str, qualifier: str | None, body: Any, headers: Any,
                      response_headers: Any) -> str | bytes | None:
        name = function_name.split(":function:")[-1].split(":")[0]
        cloud = _ACTIVE
        if cloud is None or name not in {f.name for f in cloud.topology.functions}:
            return original_simple(self, function_name, qualifier, body, headers, response_headers)
        event = json.loads(body) if body else {}
        if cloud.chaos is not None and cloud.chaos.roll("task_throttle"):
            raise _TooManyRequests(Throttled(name, 0))
        try:
            result = cloud.invoke(name, event, source="lambda-api")
        except Throttled as exc:
            raise _TooManyRequests(exc) from exc
        except HandlerError as exc:
            response_headers["x-amz-function-error"] = "Unhandled"
            return json.dumps({"errorType": exc.error_type, "errorMessage": exc.message, "stackTrace": []}).encode()
        return json.dumps(result).encode()

    original_simple = LambdaSimpleBackend.invoke
    _patch(LambdaSimpleBackend, "invoke", simple_invoke)
    _patch(LambdaFunction, "invoke", invoke)
    _patch(MotoRule, "send_to_targets", send_to_targets)
    default_user_config.setdefault("stepfunctions", {})["execute_state_machine"] = True


def _patch_resolver_event() -> None:
    """Powertools keeps the event being resolved on the class (``BaseRouter.current_event`` and
    ``lambda_context``), one per process: right on Lambda, where a process is one execution
    environment, but here every environment shares the process, so a route could read another
    environment's request (a caller's identity, a body). Each resolver also keeps its own event on
    the instance, which ``app.current_event`` reads first: per environment, as on Lambda."""
    from aws_lambda_powertools.event_handler.api_gateway import ApiGatewayResolver
    from aws_lambda_powertools.utilities.data_classes.common import BaseProxyEvent

    original = ApiGatewayResolver.resolve

    def resolve(self: ApiGatewayResolver, event: Any, context: Any) -> dict[str, Any]:
        raw = event.raw_event if isinstance(event, BaseProxyEvent) else event
        self.__dict__["current_event"] = self._to_proxy_event(raw)
        self.__dict__["lambda_context"] = context
        return original(self, event, context)

    _patch(ApiGatewayResolver, "resolve", resolve)


def _patch_metrics_lock() -> None:
    """Powertools keeps one metric set per process (shared by every Metrics instance), which is
    right on Lambda (one request per container) but not here, where handlers run in threads: a
    flush could iterate the set while another handler adds to it. Every operation on it takes one
    lock (EMF lines may still carry another handler's metrics: local output only)."""
    from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import AmazonCloudWatchEMFProvider

    # re-entrant: flush_metrics serialises the set through serialize_metric_set
    _serialise(AmazonCloudWatchEMFProvider, ("add_metric", "add_dimension", "add_metadata", "serialize_metric_set",
                                             "flush_metrics", "clear_metrics"), threading.RLock())


def _patch_dynamodb_atomic() -> None:
    """DynamoDB applies each request to an item atomically; moto 5.2.1 does not lock at all, so
    under concurrent handler threads an UpdateItem deep-copies an item while another request
    mutates it ("dictionary changed size during iteration", seen as a 500 on a witness call) and
    two conditional writes can both pass their check. One lock around each DynamoDB request gives
    the atomicity the adapters rely on. DynamoDB requests never call back into other services, so
    the lock cannot be held across a handler."""
    from moto.dynamodb.responses import DynamoHandler

    _serialise(DynamoHandler, ("call_action",), threading.Lock())


def _serialise(cls: type, names: tuple[str, ...], lock: threading.Lock | threading.RLock) -> None:
    """Patch (undoably) each of ``cls``'s methods ``names`` to run under ``lock``."""
    for name in names:
        original = getattr(cls, name)

        def locked(*args: Any, __original: Callable[..., Any] = original, **kwargs: Any) -> Any:
            with lock:
                return __original(*args, **kwargs)

        _patch(cls, name, locked)


def _patch_kms_digest() -> None:
    """moto 5.2.1 ignores Sign's MessageType and always hashes the message; AWS signs a DIGEST
    as given. Make moto honour DIGEST for ECDSA keys so adapters behave as they do in AWS."""
    import base64

    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, utils
    from moto.kms.responses import KmsResponse

    original_sign = KmsResponse.sign

    def sign(self: KmsResponse) -> str:
        if self._get_param("MessageType") != "DIGEST":
            return original_sign(self)
        key = self.kms_backend.describe_key(self._get_param("KeyId"))
        private = getattr(key.private_key, "private_key", None)
        algorithm = self._get_param("SigningAlgorithm")
        if not isinstance(private, ec.EllipticCurvePrivateKey) or algorithm != "ECDSA_SHA_256":
            return original_sign(self)
        digest = self._get_param("Message")
        digest = base64.b64decode(digest) if isinstance(digest, str) else digest
        signature = private.sign(digest, ec.ECDSA(utils.Prehashed(hashes.SHA256())))
        return json.dumps({"KeyId": key.arn, "Signature": base64.b64encode(signature).decode(),
                           "SigningAlgorithm": algorithm})

    _patch(KmsResponse, "sign", sign)


def _patch_state_machine_copy() -> None:
    """moto deep-copies a state machine on every StartExecution, past executions included; once
    one has run, its worker holds a lock and the copy fails. Copy without the executions."""
    import copy

    from moto.stepfunctions.models import StateMachine

    def __deepcopy__(self: Any, memo: dict[int, Any]) -> Any:
        clone = StateMachine.__new__(StateMachine)
        memo[id(self)] = clone
        for key, value in self.__dict__.items():
            setattr(clone, key, [] if key == "executions" else copy.deepcopy(value, memo))
        return clone

    _patch(StateMachine, "__deepcopy__", __deepcopy__)
