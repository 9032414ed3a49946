"""Faults: :func:`inject_error` (one AWS call made to fail, for the fault tests) and the chaos
injector's hooks on the AWS calls handlers make (``aws_throttle``, see ``localcloud.chaos``)."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import boto3

if TYPE_CHECKING:
    from hallmark_tools.localcloud.cloud import LocalCloud

CHAOS_CODES = {"dynamodb": "ProvisionedThroughputExceededException", "kms": "ThrottlingException"}
INVOCATION = threading.local()  # .source of the invocation the current worker thread runs ("api", ...)


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


def install_chaos_hooks(cloud: LocalCloud) -> None:
    """Chaos ``aws_throttle``: DynamoDB and KMS calls made by a handler that is not serving an
    API request fail throttled (as when botocore's own retries are spent), at a tenth of the
    chaos rate (a step makes many calls, and each failure costs a whole task or batch)."""
    chaos = cloud.chaos
    if chaos is None or "aws_throttle" not in chaos.kinds:
        return
    from botocore.awsrequest import AWSResponse, HTTPHeaders

    if boto3.DEFAULT_SESSION is None:
        boto3.setup_default_session()
    events = boto3.DEFAULT_SESSION.events  # type: ignore[union-attr]

    def hook(service: str) -> Callable[..., Any]:
        def before(**_: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
            source = getattr(INVOCATION, "source", None)
            if source in (None, "api") or not chaos.roll("aws_throttle", scale=0.1):
                return None
            code = CHAOS_CODES[service]
            return (AWSResponse("https://localcloud.invalid/", 400, HTTPHeaders(), None),
                    {"Error": {"Code": code, "Message": "injected by LocalCloud chaos"},
                     "ResponseMetadata": {"HTTPStatusCode": 400, "HTTPHeaders": {}}})
        return before

    for service in CHAOS_CODES:
        events.register(f"before-call.{service}", hook(service), unique_id=f"localcloud-chaos-{service}")

def remove_chaos_hooks(cloud: LocalCloud) -> None:
    if cloud.chaos is None or boto3.DEFAULT_SESSION is None:
        return
    for service in CHAOS_CODES:
        boto3.DEFAULT_SESSION.events.unregister(  # type: ignore[union-attr]
            f"before-call.{service}", unique_id=f"localcloud-chaos-{service}")

@contextlib.contextmanager
def inject_error(
    cloud: LocalCloud,
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
    cloud._wait_handlers_quiet(timeout=30)
    runtime.reset()
    try:
        yield fault
    finally:
        for event, _handler in hooks:
            events.unregister(f"{event}.{service}.{operation}", unique_id=f"{uid}-{event}")
        fault.times = fault.injected  # clients made meanwhile keep the hooks: exhaust them
        runtime.reset()
