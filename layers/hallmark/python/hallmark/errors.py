"""Typed domain errors.

Every refusal in the domain is a :class:`DomainError` carrying a stable machine ``code``, a
human ``message``, the HTTP status an API should answer with, and ``details`` (plain JSON
data). Handlers render it as ``{"error": {"code", "message", "details"}}`` via
:meth:`DomainError.to_response_body`.

A refusal changes no state, but it may carry audit events (``events``), e.g. an
``ApprovalRefused`` or ``DeploymentRefused`` the caller records before answering.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Final, ParamSpec, TypeVar

if TYPE_CHECKING:
    from hallmark._domain import EventDraft

#: Transient AWS failures, by botocore's error code (which is also the class name botocore gives a
#: modeled error, e.g. ``KMSInternalException``). The ONE place a transient code is listed: the
#: adapters re-raise these unchanged instead of turning them into domain errors, and a state
#: machine task's handler (:func:`transient_errors`) re-raises them as :class:`TransientError`,
#: the one name every Lambda task's Retry names (``tests/unit/test_asl_retries.py`` checks both).
TRANSIENT_AWS_ERRORS: Final[tuple[str, ...]] = (
    # throttling
    "ThrottlingException",
    "Throttling",
    "ThrottledException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "LimitExceededException",
    "ProvisionedThroughputExceededException",
    "TransactionConflictException",
    "SlowDown",
    # the service had a moment
    "KMSInternalException",
    "KeyUnavailableException",
    "DependencyTimeoutException",
    "InternalServerError",
    "InternalFailure",
    "InternalError",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "RequestTimeout",
    "RequestTimeoutException",
    # the network
    "EndpointConnectionError",
    "ConnectTimeoutError",
    "ReadTimeoutError",
    "ConnectionClosedError",
)
_TRANSIENT: Final = frozenset(TRANSIENT_AWS_ERRORS)

_P = ParamSpec("_P")
_R = TypeVar("_R")


class TransientError(Exception):
    """A transient AWS failure, re-raised under one name: a Lambda reports it as errorType
    ``TransientError``, which each Step Functions task retries with backoff. ``code`` is the
    original error code (or class name); the original exception is the ``__cause__``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


def _error_code(exc: BaseException) -> str | None:
    response = getattr(exc, "response", None)
    if isinstance(response, Mapping):
        error = response.get("Error")
        if isinstance(error, Mapping) and isinstance(error.get("Code"), str):
            return str(error["Code"])
    return None


def is_transient(exc: BaseException) -> bool:
    """A transient AWS failure: its class name or its botocore error code is in
    :data:`TRANSIENT_AWS_ERRORS`, or it is a plain (unmodeled) botocore ``ClientError``, which the
    state machines have always retried."""
    name = type(exc).__name__
    return name in _TRANSIENT or name == "ClientError" or _error_code(exc) in _TRANSIENT


def transient_errors(handler: Callable[_P, _R]) -> Callable[_P, _R]:
    """Decorate a state machine task's handler: a transient AWS failure leaves it as
    :class:`TransientError` (chained to the original); everything else leaves unchanged."""

    @functools.wraps(handler)
    def task(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return handler(*args, **kwargs)
        except TransientError:
            raise
        except Exception as exc:
            if is_transient(exc):
                raise TransientError(_error_code(exc) or type(exc).__name__, str(exc)) from exc
            raise

    task.translates_transient_errors = True  # type: ignore[attr-defined]
    return task


#: Default HTTP status per error code; a code not listed answers 400.
HTTP_STATUS_BY_CODE: dict[str, int] = {
    # input
    "invalid_input": 400,
    "invalid_tier": 400,
    "invalid_decision": 400,
    "invalid_amount": 422,
    "invalid_plan": 422,
    "unbalanced": 422,
    "mixed_currency": 422,
    "currency_mismatch": 422,
    "too_few_artifacts": 422,
    "wrong_subject": 422,
    "bad_signature": 422,
    "expired": 422,
    # identity / authorisation
    "unauthorized": 401,
    "forbidden": 403,
    "unknown_approver": 403,
    "approver_mismatch": 403,
    "unknown_witness": 403,
    "witness_mismatch": 403,
    "self_blessing": 403,
    "provenance_unverified": 403,
    "context_mismatch": 403,
    "decryption_failed": 422,
    # lookups
    "not_found": 404,
    "unknown_account": 404,
    # state
    "conflict": 409,
    "nonce_reused": 409,
    "duplicate_approver": 409,
    "duplicate_witness": 409,
    "tier_skip": 409,
    "tier_held": 409,
    "initiator_first": 409,
    "blessing_required": 409,
    "not_applicable": 409,
    "lapsed": 409,
    "window_closed": 409,
    "window_open": 409,
    "registry_full": 409,
    "threshold_unreachable": 409,
    "approval_not_required": 409,
    "not_approved": 409,
    "negative_balance": 409,
    "tx_id_reused": 409,
    "invalid_transition": 409,
}


class DomainError(Exception):
    """A refusal by the domain. ``code`` is stable and documented; ``message`` is for humans."""

    def __init__(
        self,
        code: str,
        message: str,
        http_status: int | None = None,
        details: Mapping[str, Any] | None = None,
        *,
        events: Iterable[EventDraft] = (),
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.http_status = http_status if http_status is not None else HTTP_STATUS_BY_CODE.get(code, 400)
        self.details: dict[str, Any] = dict(details or {})
        self.events: tuple[EventDraft, ...] = tuple(events)

    def to_response_body(self) -> dict[str, Any]:
        """The API error body: ``{"error": {"code", "message", "details"}}``."""
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}

    def with_events(self, *events: EventDraft) -> DomainError:
        """Attach audit events (e.g. a refusal) and return ``self`` so it can be raised."""
        self.events = (*self.events, *events)
        return self

    def __repr__(self) -> str:
        return f"DomainError(code={self.code!r}, http_status={self.http_status}, details={self.details!r})"


class NotFound(DomainError):
    """Something the request names does not exist (404)."""

    def __init__(self, what: str, ident: str, code: str = "not_found") -> None:
        super().__init__(code, f"{what} {ident!r} not found", 404, {"what": what, "id": ident})


class Conflict(DomainError):
    """The request is well formed but clashes with the current state (409)."""

    def __init__(self, message: str, details: Mapping[str, Any] | None = None, code: str = "conflict") -> None:
        super().__init__(code, message, 409, details)


class Forbidden(DomainError):
    """The caller may not do this (403)."""

    def __init__(self, message: str, details: Mapping[str, Any] | None = None, code: str = "forbidden") -> None:
        super().__init__(code, message, 403, details)


class InvalidInput(DomainError):
    """The request is malformed or fails validation."""

    def __init__(
        self, message: str, details: Mapping[str, Any] | None = None, code: str = "invalid_input"
    ) -> None:
        super().__init__(code, message, None, details)
