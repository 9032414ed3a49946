"""The topology model: plain dataclasses both backends read.

The one declared topology of Hallmark is composed in ``hallmark_tools.topology`` from one
module per concern.

Plain data, read by both backends: the CDK app (``cdk/``) synthesizes it into CloudFormation,
and the local cloud (``hallmark_tools.localcloud``) provisions it on moto. A test proves both
expose the same functions, routes, rules and state machines.

Naming conventions shared by both backends (handlers read these environment variables):
- table ``x``           -> ``TABLE_X`` (table name)
- bucket ``x``          -> ``BUCKET_X`` (bucket name)
- queue ``x``           -> ``QUEUE_X_URL``
- key ``x``             -> ``KEY_X_ID`` (key ARN)
- state machine ``x``   -> ``STATE_MACHINE_X_ARN``
- the bus               -> ``EVENT_BUS_NAME``
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

BUS_NAME = "hallmark"
ROLES = ("submitter", "approver", "auditor", "superadmin")

Mode = Literal["read", "write", "sign", "encrypt", "decrypt", "send", "start", "callback", "put"]


@dataclass(frozen=True)
class Route:
    """An HTTP API route; ``roles`` empty means any authenticated caller; ``public`` skips auth."""

    method: str
    path: str
    roles: tuple[str, ...] = ()
    public: bool = False

    @property
    def key(self) -> str:
        return f"{self.method} {self.path}"


@dataclass(frozen=True)
class QueueTrigger:
    queue: str
    batch_size: int = 10
    report_batch_item_failures: bool = True


@dataclass(frozen=True)
class Access:
    """What a function may do with a resource: kind is table|bucket|queue|key|state_machine|bus."""

    kind: Literal["table", "bucket", "queue", "key", "state_machine", "bus"]
    name: str
    modes: tuple[Mode, ...]


@dataclass(frozen=True)
class Function:
    name: str
    description: str
    memory: int = 512
    timeout: int = 30
    routes: tuple[Route, ...] = ()
    queue: QueueTrigger | None = None
    state_machine_task: bool = False
    access: tuple[Access, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    code: str | None = None  # folder under functions/ holding app.py; defaults to the name
    sealed: bool = False
    """A role without a single permission (no logs, no X-Ray) and nothing secret in its environment:
    for code that runs what a package declares (the smoke runner). A sealed function has no access."""
    reserved_concurrency: int | None = None
    """At most this many invocations at once (CDK: reserved_concurrent_executions; the local cloud:
    the size of the function's pool of execution environments). None: the account's unreserved
    concurrency on AWS, ``localcloud.environments.DEFAULT_CONCURRENCY`` locally. Past it: throttled."""

    def __post_init__(self) -> None:
        if self.sealed and self.access:
            raise ValueError(f"{self.name} is sealed: it can have no access")
        if self.reserved_concurrency is not None and self.reserved_concurrency < 0:
            raise ValueError(f"{self.name}: reserved_concurrency must be >= 0")

    @property
    def handler(self) -> str:
        return "app.handler"

    @property
    def code_dir(self) -> str:
        return self.code or self.name


@dataclass(frozen=True)
class Queue:
    name: str
    fifo: bool = False
    visibility_timeout: int = 60
    max_receive_count: int = 5  # then the message lands in `<name>-dlq`
    content_based_dedup: bool = False

    @property
    def dlq_name(self) -> str:
        return f"{self.name}-dlq"


@dataclass(frozen=True)
class Table:
    name: str
    partition_key: str = "pk"
    sort_key: str | None = "sk"
    ttl_attribute: str | None = None


@dataclass(frozen=True)
class Bucket:
    name: str
    versioned: bool = True
    object_lock: bool = False
    eventbridge: bool = False  # S3 -> EventBridge notifications (default bus)


@dataclass(frozen=True)
class Key:
    name: str  # purpose: manifest | audit | proof | delivery
    usage: Literal["SIGN_VERIFY", "ENCRYPT_DECRYPT"] = "SIGN_VERIFY"

    @property
    def signing(self) -> bool:
        return self.usage == "SIGN_VERIFY"


@dataclass(frozen=True)
class Target:
    kind: Literal["function", "queue", "state_machine"]
    name: str
    message_group: str | None = None  # for FIFO queue targets


@dataclass(frozen=True)
class Rule:
    """An EventBridge rule: an event ``pattern`` or a ``schedule`` expression, one target."""

    name: str
    target: Target
    pattern: dict[str, object] | None = None
    schedule: str | None = None  # e.g. "rate(1 minute)"
    bus: Literal["hallmark", "default"] = "hallmark"


@dataclass(frozen=True)
class StateMachine:
    name: str
    asl: str  # file under statemachines/
    # ${Placeholder} -> ("function", name) | ("queue", name) | ("table", name) | ("literal", value)
    substitutions: dict[str, tuple[str, str]] = field(default_factory=dict)


@dataclass(frozen=True)
class Topology:
    functions: tuple[Function, ...]
    queues: tuple[Queue, ...]
    tables: tuple[Table, ...]
    buckets: tuple[Bucket, ...]
    keys: tuple[Key, ...]
    rules: tuple[Rule, ...]
    state_machines: tuple[StateMachine, ...]

    def function(self, name: str) -> Function:
        return next(f for f in self.functions if f.name == name)

    def routes(self) -> dict[str, str]:
        """Route key ("GET /health") -> function name."""
        return {r.key: f.name for f in self.functions for r in f.routes}


def env_name(kind: str, name: str) -> str:
    """The environment variable through which a handler finds a resource."""
    up = name.upper().replace("-", "_")
    return {
        "table": f"TABLE_{up}",
        "bucket": f"BUCKET_{up}",
        "queue": f"QUEUE_{up}_URL",
        "key": f"KEY_{up}_ID",
        "state_machine": f"STATE_MACHINE_{up}_ARN",
        "bus": "EVENT_BUS_NAME",
    }[kind]


def resolve_pattern(pattern: object, lookup: Callable[[str, str], str]) -> object:
    """Replace "${kind:name}" strings in an event pattern with each backend's physical names."""
    if isinstance(pattern, dict):
        return {k: resolve_pattern(v, lookup) for k, v in pattern.items()}
    if isinstance(pattern, list):
        return [resolve_pattern(v, lookup) for v in pattern]
    if isinstance(pattern, str) and pattern.startswith("${") and pattern.endswith("}"):
        kind, _, name = pattern[2:-1].partition(":")
        return lookup(kind, name)
    return pattern


def rw(kind: Literal["table", "bucket"], name: str) -> Access:
    return Access(kind, name, ("read", "write"))


AUDIT_SEND = Access("queue", "audit", ("send",))


def camel(name: str) -> str:
    return "".join(p.title() for p in name.split("_"))


BUS_PUT = Access("bus", BUS_NAME, ("put",))


def route_env(functions: tuple[Function, ...] | list[Function]) -> dict[str, str]:
    """The environment through which API handlers enforce the declared roles."""
    import json

    roles = {r.key: list(r.roles) for f in functions for r in f.routes if not r.public}
    public = sorted(r.key for f in functions for r in f.routes if r.public)
    return {
        "HALLMARK_ROUTE_ROLES": json.dumps(roles, sort_keys=True),
        "HALLMARK_PUBLIC_ROUTES": json.dumps(public),
    }


@dataclass(frozen=True)
class Part:
    """One concern's share of the topology (core, release, governance, ...)."""

    functions: tuple[Function, ...] = ()
    queues: tuple[Queue, ...] = ()
    tables: tuple[Table, ...] = ()
    buckets: tuple[Bucket, ...] = ()
    keys: tuple[Key, ...] = ()
    rules: tuple[Rule, ...] = ()
    state_machines: tuple[StateMachine, ...] = ()


def compose(*parts: Part) -> Topology:
    topo = Topology(
        *(
            tuple(x for p in parts for x in getattr(p, f))
            for f in ("functions", "queues", "tables", "buckets", "keys", "rules", "state_machines")
        )
    )
    for kind in ("functions", "queues", "tables", "buckets", "keys", "rules", "state_machines"):
        names = [x.name for x in getattr(topo, kind)]
        dupes = {n for n in names if names.count(n) > 1}
        if dupes:
            raise ValueError(f"topology declares {kind} twice: {sorted(dupes)}")
    return topo


def env_for(fn: Function, resource: Callable[[str, str], str],
            functions: tuple[Function, ...] | list[Function]) -> dict[str, str]:
    """A function's whole environment, as both backends give it: its service name, its declared
    ``env``, the route tables for API handlers, and one variable per resource it may access
    (``resource(kind, name)`` is the backend's physical value). Nothing else: a resource a function
    lacks a grant for is not in its environment, on AWS or locally."""
    env = {
        "POWERTOOLS_SERVICE_NAME": fn.name,
        "POWERTOOLS_METRICS_NAMESPACE": "Hallmark",
        "REQUIRE_KMS": "1",
        **dict(fn.env),
    }
    if fn.routes:
        env.update(route_env(functions))
    for acc in fn.access:
        env[env_name(acc.kind, acc.name)] = resource(acc.kind, acc.name)
    return env
