"""One Logger / Tracer / Metrics for every function (Powertools; service name from the env).

The Tracer is built on first use, not at import: Powertools' ``Tracer()`` imports
``aws_xray_sdk.core`` (about 70 ms of a cold start) as soon as it is constructed. ``tracer`` is a
:class:`LazyTracer` whose decorators wrap at import time and build the real Tracer (patching the
AWS SDK when tracing is on, exactly as an eager Tracer would) on the first invocation.
"""

from __future__ import annotations

import functools
import inspect
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast

from aws_lambda_powertools import Logger, Metrics

if TYPE_CHECKING:
    from aws_lambda_powertools import Tracer

F = TypeVar("F", bound=Callable[..., Any])

SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME", "hallmark")


class InvocationLogger(Logger):
    """Powertools' Logger whose ``inject_lambda_context`` starts every invocation from a clean
    state (``clear_state=True``): keys appended during one invocation (``append_keys``, the
    correlation id) are not carried into the next one on a warm execution environment, where the
    module-level logger lives on."""

    def inject_lambda_context(self, lambda_handler: Any = None, **kwargs: Any) -> Any:  # type: ignore[override]
        kwargs.setdefault("clear_state", True)
        return super().inject_lambda_context(lambda_handler, **kwargs)


logger = InvocationLogger(service=SERVICE)
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "Hallmark"), service=SERVICE)


class LazyTracer:
    """A Powertools ``Tracer`` built the first time it is needed (same decorators, same options)."""

    def __init__(self, **options: Any) -> None:
        self._options = options
        self._tracer: Tracer | None = None

    def real(self) -> Tracer:
        """The Powertools Tracer (built, and the X-Ray SDK imported, on the first call)."""
        if self._tracer is None:
            from aws_lambda_powertools import Tracer

            self._tracer = Tracer(**self._options)
        return self._tracer

    def _deferred(self, decorate: Callable[[Callable[..., Any]], Callable[..., Any]], func: F) -> F:
        if inspect.iscoroutinefunction(func) or inspect.isgeneratorfunction(func) \
                or inspect.isasyncgenfunction(func):
            return cast(F, decorate(func))  # Powertools picks a wrapper by kind; let it see the function now
        wrapped: Callable[..., Any] | None = None

        @functools.wraps(func)
        def call(*args: Any, **kwargs: Any) -> Any:
            nonlocal wrapped
            if wrapped is None:
                wrapped = decorate(func)
            return wrapped(*args, **kwargs)

        return cast(F, call)

    def _capture(self, kind: str, func: F | None, capture_response: bool | None, capture_error: bool | None) -> Any:
        options = {"capture_response": capture_response, "capture_error": capture_error}
        if func is None:  # used as @tracer.capture_method(capture_response=False)
            return lambda f: self._capture(kind, f, capture_response, capture_error)
        return self._deferred(lambda f: getattr(self.real(), kind)(**options)(f), func)

    def capture_method(self, method: F | None = None, capture_response: bool | None = None,
                       capture_error: bool | None = None) -> Any:
        return self._capture("capture_method", method, capture_response, capture_error)

    def capture_lambda_handler(self, lambda_handler: F | None = None, capture_response: bool | None = None,
                               capture_error: bool | None = None) -> Any:
        return self._capture("capture_lambda_handler", lambda_handler, capture_response, capture_error)

    def __getattr__(self, name: str) -> Any:
        # put_annotation, put_metadata, provider, patch, ...: the real Tracer's
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.real(), name)


tracer = LazyTracer(service=SERVICE)
