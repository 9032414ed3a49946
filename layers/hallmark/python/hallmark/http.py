"""The HTTP edge shared by every API function: a Powertools resolver with OpenAPI validation,
role enforcement from the declared route table, and one JSON error shape:
``{"error": {"code", "message", "details"}}``."""

from __future__ import annotations

import base64
import binascii
import functools
import json
import os
import re
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from pydantic import TypeAdapter, ValidationError

from hallmark._domain import Caller
from hallmark.errors import DomainError
from hallmark.observability import logger

MAX_BODY_BYTES = int(os.environ.get("HALLMARK_MAX_BODY_BYTES", str(256 * 1024)))
MAX_JSON_DEPTH = 64  # no request model nests deeper than a few levels
# The role names a token may carry (the topology's ROLES; a test keeps the two equal).
KNOWN_ROLES = frozenset({"submitter", "approver", "auditor", "superadmin"})


def error_response(status: int, code: str, message: str, details: dict[str, Any] | None = None) -> Response[Any]:
    body = {"error": {"code": code, "message": message, "details": details or {}}}
    return Response(status_code=status, content_type="application/json", body=json.dumps(body))


def parse_roles(raw: Any) -> frozenset[str]:
    """Roles from a JWT claim, strictly: a list of known role names, the ``"[a b]"`` string the
    HTTP API authorizer makes of such a list, or one exact known name (a single
    ``cognito:groups`` value). Anything else (an unknown name, a comma, a name with a space
    inside a list element, a non-string) gives no role at all: the caller is refused (403)."""
    if raw is None:
        return frozenset()
    if isinstance(raw, list | tuple):
        items = list(raw)
    elif isinstance(raw, str):
        text = raw
        if text.startswith("[") and text.endswith("]"):
            inner = text[1:-1]
            if inner.startswith('"'):  # a JSON array rendered as a string
                try:
                    parsed = json.loads(text)
                except ValueError:
                    return frozenset()
                if not isinstance(parsed, list):
                    return frozenset()
                items = parsed
            else:
                items = inner.split(" ")  # the authorizer's own rendering: one space between items
        else:
            items = [text]
    else:
        return frozenset()
    if not items or any(not isinstance(r, str) or r not in KNOWN_ROLES for r in items):
        return frozenset()
    return frozenset(items)


def _token_claims(headers: dict[str, Any]) -> dict[str, Any] | None:
    """The payload of the bearer token the authorizer verified, decoded WITHOUT verification:
    used only to refuse (a role list the authorizer flattened ambiguously), never to grant."""
    auth = next((str(v) for k, v in headers.items() if str(k).lower() == "authorization"), "")
    if not auth.lower().startswith("bearer "):
        return None
    parts = auth[7:].strip().split(".")
    if len(parts) != 3:
        return None
    try:
        payload = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, binascii.Error):
        return None
    return payload if isinstance(payload, dict) else None


_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.S)
_BRACKET = re.compile(r"[\[\]{}]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def json_body_problem(text: str) -> tuple[str, dict[str, Any]] | None:
    """Why a request body is not acceptable JSON (message, details), or None. Checked once, here,
    before any parser recurses into it: nesting deeper than MAX_JSON_DEPTH (json.loads would raise
    RecursionError at ~1,000 levels, Powertools answers 500), invalid JSON, and strings holding a
    lone UTF-16 surrogate (``"\\ud800"`` parses in Python but cannot be encoded to UTF-8 later)."""
    depth = deepest = 0
    for m in _BRACKET.finditer(_JSON_STRING.sub('""', text)):
        depth += 1 if m.group() in "[{" else -1
        if depth > deepest:
            deepest = depth
            if deepest > MAX_JSON_DEPTH:
                return (f"the body nests deeper than {MAX_JSON_DEPTH} levels", {"maxDepth": MAX_JSON_DEPTH})
    try:
        value = json.loads(text)
    except (ValueError, RecursionError) as exc:
        return (f"the body is not valid JSON: {getattr(exc, 'msg', type(exc).__name__)}", {})
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item):
                return ("the body holds a lone UTF-16 surrogate (not a Unicode scalar value)", {})
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return None


def route_roles() -> dict[str, list[str]]:
    """routeKey -> roles allowed ([] = any authenticated caller); declared once in the topology."""
    return dict(json.loads(os.environ.get("HALLMARK_ROUTE_ROLES", "{}")))


def current_caller(app: APIGatewayHttpResolver) -> Caller | None:
    """The verified caller, or None (401): claims from the JWT authorizer with a ``sub`` and an
    ``exp`` (a token without an expiry is never accepted, even if an authorizer let it through)."""
    event = app.current_event.raw_event
    ctx = event.get("requestContext", {})
    claims = ((ctx.get("authorizer") or {}).get("jwt") or {}).get("claims")
    if not isinstance(claims, dict) or not claims.get("sub") or claims.get("exp") in (None, ""):
        return None
    raw = claims.get("roles", claims.get("cognito:groups"))
    roles = parse_roles(raw)
    token = _token_claims(event.get("headers") or {})
    if token is not None and token.get("sub") == claims.get("sub"):
        # The authorizer renders ["a b"] and ["a", "b"] alike as "[a b]": the token itself decides.
        original = token.get("roles", token.get("cognito:groups"))
        if original is not None and parse_roles(original) != roles:
            roles = frozenset()
    return Caller(sub=str(claims["sub"]), roles=roles)


def validation_response(raw_errors: Any) -> Response[Any]:
    """400 listing pydantic's errors: ``malformed_json`` or ``invalid_request``."""
    errors = [
        {"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))}
        for e in raw_errors
    ]
    malformed = any(e["type"] in ("json_invalid", "model_attributes_type") for e in errors)
    code, msg = ("malformed_json", "the body is not valid JSON") if malformed else (
        "invalid_request", "the request does not match the schema")
    return error_response(400, code, msg, {"errors": errors})


@functools.cache
def _strict_adapter(annotation: Any) -> TypeAdapter[Any]:
    return TypeAdapter(annotation)


def strict_body_refusal(app: APIGatewayHttpResolver) -> Response[Any] | None:
    """400 for a body the route's model accepts only by coercion: ``true`` for an integer, a
    string for a number, or a JSON array for an object (Powertools validates in pydantic's lax
    mode, and takes the first item of an array sent for an object). The body must match its
    model in strict mode, which is what the OpenAPI document's JSON Schema says; Powertools'
    own validation still runs after this (defaults, aliases, the handler's arguments)."""
    route = app.context.get("_route")
    params = getattr(getattr(route, "dependant", None), "body_params", None) or []
    if len(params) != 1 or getattr(params[0].field_info, "embed", False):
        return None
    body = app.current_event.body
    value = None if not body else app.current_event.json_body
    try:
        _strict_adapter(params[0].field_info.annotation).validate_python(value, strict=True)
    except ValidationError as exc:
        return validation_response([{**e, "loc": ("body", *e.get("loc", ()))} for e in exc.errors()])
    return None


def make_resolver() -> APIGatewayHttpResolver:
    app = APIGatewayHttpResolver(enable_validation=True)
    public_routes = set(json.loads(os.environ.get("HALLMARK_PUBLIC_ROUTES", '["GET /health"]')))

    def refusal(app: APIGatewayHttpResolver) -> Response[Any] | None:
        """413/401/403 for a request that must not reach validation or the route; else None."""
        event = app.current_event.raw_event
        route_key = event.get("routeKey", "")
        body = event.get("body") or ""
        if len(body.encode() if isinstance(body, str) else body) > MAX_BODY_BYTES:
            return error_response(413, "payload_too_large", f"request body exceeds {MAX_BODY_BYTES} bytes")
        if route_key in public_routes:
            return None
        caller = current_caller(app)
        if caller is None:
            return error_response(401, "unauthorized", "a valid bearer token is required")
        table = route_roles()
        if route_key not in table:  # fail closed: a route nobody declared checks no roles, so none pass
            return error_response(403, "forbidden", f"{route_key or 'this route'} is not a declared route",
                                  {"required": [], "roles": sorted(caller.roles), "routeKey": route_key})
        allowed = table[route_key]
        if allowed and not (caller.roles & set(allowed)):
            return error_response(
                403, "forbidden", f"{route_key} requires one of the roles {sorted(allowed)}",
                {"required": sorted(allowed), "roles": sorted(caller.roles)},
            )
        app.append_context(caller=caller)
        return None

    def body_refusal(app: APIGatewayHttpResolver) -> Response[Any] | None:
        """415 for a body that is not JSON, 400 for one that is not UTF-8, before Powertools parses
        it (it would answer 415 in its own shape, or fail with a 500 on either)."""
        event = app.current_event.raw_event
        body = event.get("body")
        method = str((event.get("requestContext") or {}).get("http", {}).get("method", "")).upper()
        if not body or method not in ("POST", "PUT", "PATCH"):
            return None
        headers = {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()}
        media_type = headers.get("content-type", "").split(";")[0].strip().lower()
        if media_type not in ("", "application/json"):
            return error_response(415, "unsupported_media_type", "request bodies must be application/json",
                                  {"contentType": media_type})
        try:
            text = (base64.b64decode(body, validate=True).decode("utf-8") if event.get("isBase64Encoded")
                    else body if isinstance(body, str) else bytes(body).decode("utf-8"))
        except (binascii.Error, ValueError):
            return error_response(400, "malformed_json", "the body is not UTF-8 encoded JSON")
        problem = json_body_problem(text)
        if problem is not None:
            return error_response(400, "malformed_json", problem[0], problem[1])
        return None

    def gate(app: APIGatewayHttpResolver) -> Response[Any] | None:
        refused = refusal(app)
        if refused is None:
            refused = body_refusal(app)
        return refused if refused is not None else strict_body_refusal(app)

    def authorize(app: APIGatewayHttpResolver, next_middleware: NextMiddleware) -> Response[Any]:
        refused = gate(app)
        return refused if refused is not None else next_middleware(app)

    # Powertools runs request validation before every user middleware, so a caller with the wrong
    # role (or a body over the limit) would get a 400 listing the schema's errors instead of
    # 403/413. The gate runs first: it wraps the resolver's request-validation middleware. The
    # plain middleware stays as the backstop for a route that turns validation off.
    validate = getattr(app, "_request_validation_middleware", None)
    if validate is not None:
        def authorize_then_validate(app: APIGatewayHttpResolver, next_middleware: NextMiddleware) -> Response[Any]:
            refused = gate(app)
            return refused if refused is not None else validate(app, next_middleware)

        app._request_validation_middleware = authorize_then_validate  # type: ignore[assignment]
    app.use(middlewares=[authorize])

    @app.exception_handler(DomainError)
    def _domain(exc: DomainError) -> Response[Any]:
        logger.info("request refused", extra={"code": exc.code, "status": exc.http_status})
        if getattr(exc, "events", None):  # an audited refusal: it changes nothing else
            from hallmark._domain import emit_by_flow
            from hallmark.adapters import runtime

            emit_by_flow(runtime.audit(), list(exc.events))
        return error_response(exc.http_status, exc.code, exc.message, exc.details)

    @app.exception_handler(RequestValidationError)
    def _invalid(exc: RequestValidationError) -> Response[Any]:
        return validation_response(exc.errors())

    @app.exception_handler(json.JSONDecodeError)
    def _malformed(exc: json.JSONDecodeError) -> Response[Any]:
        return error_response(400, "malformed_json", f"the body is not valid JSON: {exc.msg}")

    @app.not_found
    def _not_found(exc: NotFoundError) -> Response[Any]:
        return error_response(404, "route_not_found", "no such route")

    return app


def caller_of(app: APIGatewayHttpResolver) -> Caller:
    caller = app.context.get("caller")
    if not isinstance(caller, Caller):
        raise DomainError("unauthorized", "a valid bearer token is required", 401)
    return caller


Handler = Callable[[dict[str, Any], Any], dict[str, Any]]
