"""Patches on moto and Powertools that the local cloud installs while it runs (each one undone by
:func:`remove_patches`): moto's Lambda invocations and EventBridge lambda/states targets routed to
the active cloud, and moto's fidelity and speed gaps closed.

- On the producers' path (producers -> bus -> rule -> SQS -> ingest): moto compiles eight
  JSONPath expressions (a fresh yacc parser each) for every event it delivers to an SQS target,
  ~0.1 s per event; ``_cached_template_parse`` compiles each expression once. moto's SQS in
  linear time: ``localcloud.sqs_patches``.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from functools import cache
from typing import TYPE_CHECKING, Any

from moto.awslambda.exceptions import LambdaClientError
from moto.awslambda.models import LambdaFunction
from moto.awslambda_simple.models import LambdaSimpleBackend
from moto.core.config import default_user_config
from moto.events.models import Rule as MotoRule
from moto.utilities.arns import parse_arn

from hallmark_tools.localcloud.batch import install_batch_patches
from hallmark_tools.localcloud.cloudwatch_patches import install_cloudwatch_patches
from hallmark_tools.localcloud.environments import HandlerError, Throttled
from hallmark_tools.localcloud.sqs_patches import install_sqs_patches

if TYPE_CHECKING:
    from hallmark_tools.localcloud.cloud import LocalCloud

_active: LocalCloud | None = None
_RESTORE: list[tuple[Any, str, Any]] = []  # (owner, attribute, original) of every moto patch


def active() -> LocalCloud | None:
    """The cloud running in this process, if any."""
    return _active


def activate(cloud: LocalCloud | None) -> None:
    """Route the patched calls to ``cloud`` (None: to moto's own behaviour)."""
    global _active
    if cloud is not None and _active is not None:
        raise RuntimeError("a LocalCloud is already running in this process")
    _active = cloud


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


def remove_patches() -> None:
    while _RESTORE:
        owner, attribute, original = _RESTORE.pop()
        if original is None:
            delattr(owner, attribute)
        else:
            setattr(owner, attribute, original)


def install_patches() -> None:
    """Route moto's Lambda invocations and EventBridge lambda/states targets to the active cloud
    and close moto's fidelity gaps; undone when the cloud stops."""
    original_invoke = LambdaFunction.invoke
    original_send = MotoRule.send_to_targets

    def invoke(self: LambdaFunction, body: str, request_headers: Any, response_headers: Any) -> str | bytes:
        cloud = _active
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
        cloud = _active
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

    from moto.events.utils import EventTemplateParser

    _patch_kms_digest()
    _patch_state_machine_copy()
    _patch_metrics_lock()
    _patch_resolver_event()
    _patch_dynamodb_atomic()
    install_batch_patches(_patch)
    _patch(EventTemplateParser, "parse", staticmethod(_cached_template_parse))
    install_sqs_patches(_patch)
    install_cloudwatch_patches(_patch)
    def simple_invoke(self: Any, function_name: str, qualifier: str | None, body: Any, headers: Any,
                      response_headers: Any) -> str | bytes | None:
        name = function_name.split(":function:")[-1].split(":")[0]
        cloud = _active
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


@cache
def _jsonpath(expression: str) -> Any:
    from jsonpath_ng.ext import parse

    return parse(expression)


def _cached_template_parse(input_template: str, input_paths_map: dict[str, Any], event: Any) -> dict[str, Any]:
    """moto's ``EventTemplateParser.parse`` with each JSONPath compiled once."""
    from moto.events.utils import EventTemplateParser as Parser

    template = input_template or Parser.DEFAULT_EVENT_INPUT_TEMPLATE
    paths = input_paths_map or Parser.DEFAULT_EVENT_INPUT_PATHS_MAP
    for name, path in paths.items():
        matches = _jsonpath(path).find(event)
        result = Parser._stringify(matches[0].value) if matches else None
        if result:
            template = template.replace(f"<{name}>", result)
    for name, value in (("aws.events.event.json", event), ("aws.events.event.ingestion-time", event["ingestion-time"])):
        template = template.replace(f"<{name}>", Parser._stringify(value))
    out: dict[str, Any] = json.loads(template)
    return out
