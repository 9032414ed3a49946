"""One OpenAPI 3 document for the whole HTTP API.

Every API function (a topology function with routes) has its own Powertools resolver; this
module loads each handler module, takes its resolver's ``get_openapi_json_schema()`` and merges
them with Powertools' ``OpenAPIMerge`` (``add_schema``). It then makes the document say what
API Gateway and ``hallmark.http`` really do:

- the paths and methods are exactly the topology's routes (``{param}`` style): a route the
  topology declares but no handler registers, or the reverse, is an error;
- a JWT bearer security scheme applies to every operation except the public ones, whose
  ``security`` is ``[]``; each operation lists its roles in ``x-hallmark-roles``;
- errors have the one shape ``{"error": {"code", "message", "details"}}``: request validation
  answers 400 (not Powertools' default 422 ``HTTPValidationError``), a missing or bad token 401,
  a role outside the route's roles 403, an oversize body 413, a body that is not JSON 415;
- the success status is the one the route function really answers with: read from its source
  (``return Response(201, ...)``; a plain ``return {...}`` is 200), every success response is an
  ``application/json`` object;
- every authenticated operation declares the domain refusals (``hallmark.errors``: 402, 404,
  409, 422 ...; ``error.code`` names which), the statuses found literally in ``hallmark`` and
  the handlers (``DomainError(..., 402)``, ``error_response(409, ...)``);
- checkout declares its required ``Idempotency-Key`` header.

``hallmark local serve`` serves the document at ``GET /openapi.json`` (unauthenticated).
"""

from __future__ import annotations

import ast
import copy
import functools
import importlib.util
import inspect
import json
import re
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from hallmark_tools.topology import TOPOLOGY, Function, Topology
from hallmark_tools.topology.model import Route

ROOT = Path(__file__).resolve().parents[1]
TITLE = "Hallmark HTTP API"
SECURITY_SCHEME = "bearerAuth"
METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "title": "Error",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "details"],
            "properties": {
                "code": {"type": "string", "description": "stable machine code, e.g. forbidden, not_found"},
                "message": {"type": "string"},
                "details": {"type": "object", "additionalProperties": True},
            },
        }
    },
}

Loader = Callable[[Function], ModuleType]

#: Header parameters a route reads itself (not through a Powertools ``Header()`` parameter).
HEADERS: dict[str, list[dict[str, Any]]] = {
    "POST /listings/{listingId}/checkout": [{
        "name": "Idempotency-Key", "in": "header", "required": True,
        "description": "1-255 visible ASCII characters; a retry with the same key answers the first "
                       "checkout again (Idempotency-Replayed: true) and charges nothing",
        "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[!-~]+$"},
    }],
}
_LITERAL_STATUS = re.compile(r"(?:error_response\(|DomainError\([^()]*?,\s*|http_status=)([1-5][0-9]{2})\b")


def api_functions(topology: Topology = TOPOLOGY) -> list[Function]:
    return [f for f in topology.functions if f.routes]


def import_function(fn: Function) -> ModuleType:
    """Load ``functions/<code_dir>/app.py`` as LocalCloud does, under a module name of its own."""
    name = f"hallmark_openapi_{fn.name}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, ROOT / "functions" / fn.code_dir / "app.py")
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load functions/{fn.code_dir}/app.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


def _resolver(module: ModuleType) -> Any:
    from aws_lambda_powertools.event_handler.api_gateway import ApiGatewayResolver

    app = getattr(module, "app", None)
    if isinstance(app, ApiGatewayResolver):
        return app
    found = [v for v in vars(module).values() if isinstance(v, ApiGatewayResolver)]
    if len(found) != 1:
        raise ValueError(f"{module.__name__}: expected one Powertools resolver, found {len(found)}")
    return found[0]


def _error_response(description: str) -> dict[str, Any]:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


def _merge_components(schemas: list[tuple[str, dict[str, Any]]]) -> None:
    """OpenAPIMerge keeps the last of two same-named components; refuse two that differ."""
    seen: dict[tuple[str, str], tuple[str, Any]] = {}
    for owner, schema in schemas:
        for kind, items in schema.get("components", {}).items():
            for name, definition in items.items():
                prior = seen.setdefault((kind, name), (owner, definition))
                if prior[1] != definition:
                    raise ValueError(f"components.{kind}.{name} differs between {prior[0]} and {owner}")


@functools.cache
def refusal_statuses() -> tuple[int, ...]:
    """Every 4xx a domain step or a handler can refuse with: ``HTTP_STATUS_BY_CODE`` and the
    statuses written literally in the layer and the handlers."""
    from hallmark.errors import HTTP_STATUS_BY_CODE

    found = set(HTTP_STATUS_BY_CODE.values()) | {400}
    for base in (ROOT / "layers" / "hallmark" / "python" / "hallmark", ROOT / "functions"):
        for path in base.rglob("*.py"):
            found |= {int(m) for m in _LITERAL_STATUS.findall(path.read_text(encoding="utf-8"))}
    return tuple(sorted(s for s in found if 400 <= s < 500 and s not in (401, 403, 413, 415)))


def _int_literals(node: ast.expr | None) -> set[int]:
    """The statuses an expression can take: an int literal, or each branch of ``a if c else b``."""
    if isinstance(node, ast.Constant) and isinstance(node.value, int):
        return {node.value}
    if isinstance(node, ast.IfExp):
        body, orelse = _int_literals(node.body), _int_literals(node.orelse)
        return body | orelse if body and orelse else set()
    return set()


def success_statuses(func: Callable[..., Any]) -> list[int]:
    """The 2xx a route function answers with: ``Response(<2xx>, ...)`` literals among its returns,
    200 for any other return (Powertools serialises a returned dict with 200)."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(inspect.unwrap(func))))
    found: set[int] = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Return) or node.value is None:
            continue
        call = node.value
        if isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == "Response":
            arg = call.args[0] if call.args else next((k.value for k in call.keywords if k.arg == "status_code"), None)
            literals = _int_literals(arg)
            if literals:
                found |= {v for v in literals if 200 <= v < 300}
                continue
        found.add(200)
    return sorted(found) or [200]


def route_functions(resolver: Any) -> dict[tuple[str, str], Callable[..., Any]]:
    """(method, OpenAPI path) -> the route function, from a Powertools resolver."""
    out: dict[tuple[str, str], Callable[..., Any]] = {}
    for route in [*resolver._static_routes, *resolver._dynamic_routes]:
        path = re.sub(r"<(\w+)>", r"{\1}", route.path)
        for method in route.method.split("|") if isinstance(route.method, str) else route.method:
            out[(method.lower(), path)] = route.func
    return out


def _success(operation: dict[str, Any], statuses: list[int]) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    generated = responses.pop("200", None) or {}
    schema = (generated.get("content", {}).get("application/json", {}).get("schema") or {})
    if set(schema) <= {"title"}:  # Powertools' "Return" placeholder: the handlers answer JSON objects
        schema = {"type": "object", "additionalProperties": True}
    for status in statuses:
        responses[str(status)] = {"description": generated.get("description", "Successful Response")
                                  if status == 200 else {201: "Created", 202: "Accepted"}.get(status, "Success"),
                                  "content": {"application/json": {"schema": schema}}}


def _decorate(operation: dict[str, Any], route: Route, fn: Function, func: Callable[..., Any] | None = None) -> None:
    operation.setdefault("tags", [fn.name])
    operation["x-hallmark-function"] = fn.name
    operation["x-hallmark-roles"] = list(route.roles)
    if func is not None:
        _success(operation, success_statuses(func))
    responses: dict[str, Any] = operation.setdefault("responses", {})
    responses.pop("422", None)  # hallmark.http renders request validation errors as 400
    if route.key in HEADERS:
        params = operation.setdefault("parameters", [])
        params.extend(h for h in HEADERS[route.key] if h["name"] not in {p.get("name") for p in params})
    if operation.get("parameters") or operation.get("requestBody"):
        responses.setdefault("400", _error_response("Malformed JSON or a request that does not match the schema"))
    if route.method in ("POST", "PUT", "PATCH"):
        responses.setdefault("413", _error_response("The request body is over the size limit"))
        responses.setdefault("415", _error_response("The request body is not application/json"))
    if route.public:
        operation["security"] = []
        return
    for status in refusal_statuses():
        responses.setdefault(str(status), _error_response(
            "A domain refusal (error.code says which: not_found, conflict, insufficient_funds ...)"))
    operation["security"] = [{SECURITY_SCHEME: []}]
    responses.setdefault("401", _error_response("No bearer token, or one that is expired or not ours"))
    responses.setdefault("403", _error_response(
        (f"The caller has none of the roles {', '.join(route.roles)}, or " if route.roles else "")
        + "a domain refusal of this caller (forbidden, unknown_witness, context_mismatch ...)"))
    if route.roles:
        operation["description"] = (operation.get("description", "") + f"\n\nRoles: {', '.join(route.roles)}.").strip()
    else:
        operation["description"] = (operation.get("description", "") + "\n\nRoles: any authenticated caller.").strip()


def _drop_unreferenced(doc: dict[str, Any], names: tuple[str, ...]) -> None:
    """Remove Powertools' validation-error schemas once nothing refers to them any more."""
    schemas: dict[str, Any] = doc["components"]["schemas"]
    changed = True
    while changed:
        changed = False
        for name in names:
            if name not in schemas:
                continue
            rest = {k: v for k, v in doc.items() if k != "components"}
            rest["schemas"] = {n: v for n, v in schemas.items() if n != name}
            if f'"#/components/schemas/{name}"' not in json.dumps(rest):
                del schemas[name]
                changed = True


def build_openapi(topology: Topology = TOPOLOGY, load: Loader = import_function, *,
                  version: str | None = None) -> dict[str, Any]:
    """The merged OpenAPI document (a plain JSON-able dict)."""
    from aws_lambda_powertools.event_handler.openapi.merge import OpenAPIMerge
    from aws_lambda_powertools.event_handler.openapi.models import HTTPBearer

    if version is None:
        import hallmark

        version = str(getattr(hallmark, "__version__", "0.0.0"))
    merger = OpenAPIMerge(
        title=TITLE,
        version=version,
        description="Hallmark's HTTP API (API Gateway HTTP API with a JWT authorizer). Roles come from "
                    "the token's `roles` claim: submitter, approver, auditor, superadmin.",
        security_schemes={SECURITY_SCHEME: HTTPBearer(scheme="bearer", bearerFormat="JWT")},
        security=[{SECURITY_SCHEME: []}],
        on_conflict="error",
    )
    owners: list[tuple[str, dict[str, Any]]] = []
    funcs: dict[tuple[str, str], Callable[..., Any]] = {}
    for fn in api_functions(topology):
        resolver = _resolver(load(fn))
        funcs.update(route_functions(resolver))
        schema = json.loads(resolver.get_openapi_json_schema())
        owners.append((fn.name, schema))
        merger.add_schema(schema)
    _merge_components(owners)
    doc = copy.deepcopy(merger.get_openapi_schema())
    doc["components"]["securitySchemes"] = {
        SECURITY_SCHEME: {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}}

    declared = {(r.method.lower(), r.path): (r, f) for f in api_functions(topology) for r in f.routes}
    registered = {(m, p) for p, item in doc.get("paths", {}).items() for m in item if m in METHODS}
    missing = sorted(set(declared) - registered)
    extra = sorted(registered - set(declared))
    if missing or extra:
        raise ValueError(f"handlers and topology disagree: declared but not registered {missing}, "
                         f"registered but not routed {extra}")
    for (method, path), (route, fn) in declared.items():
        _decorate(doc["paths"][path][method], route, fn, funcs.get((method, path)))

    schemas: dict[str, Any] = doc["components"].setdefault("schemas", {})
    schemas["Error"] = ERROR_SCHEMA
    _drop_unreferenced(doc, ("HTTPValidationError", "ResponseValidationError", "ValidationError"))
    return doc


def openapi_json(topology: Topology = TOPOLOGY, load: Loader = import_function) -> bytes:
    return json.dumps(build_openapi(topology, load), indent=2, sort_keys=False).encode()
