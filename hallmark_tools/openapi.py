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
  a role outside the route's roles 403, an oversize body 413.

``hallmark local serve`` serves the document at ``GET /openapi.json`` (unauthenticated).
"""

from __future__ import annotations

import copy
import importlib.util
import json
import sys
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


def _decorate(operation: dict[str, Any], route: Route, fn: Function) -> None:
    operation.setdefault("tags", [fn.name])
    operation["x-hallmark-function"] = fn.name
    operation["x-hallmark-roles"] = list(route.roles)
    responses: dict[str, Any] = operation.setdefault("responses", {})
    responses.pop("422", None)  # hallmark.http renders request validation errors as 400
    if operation.get("parameters") or operation.get("requestBody"):
        responses.setdefault("400", _error_response("Malformed JSON or a request that does not match the schema"))
    if route.public:
        operation["security"] = []
        return
    operation["security"] = [{SECURITY_SCHEME: []}]
    responses.setdefault("401", _error_response("No bearer token, or one that is expired or not ours"))
    if route.roles:
        responses.setdefault("403", _error_response(f"The caller has none of the roles {', '.join(route.roles)}"))
        operation["description"] = (operation.get("description", "") + f"\n\nRoles: {', '.join(route.roles)}.").strip()
    else:
        operation["description"] = (operation.get("description", "") + "\n\nRoles: any authenticated caller.").strip()
    if route.method in ("POST", "PUT", "PATCH"):
        responses.setdefault("413", _error_response("The request body is over the size limit"))


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
    for fn in api_functions(topology):
        schema = json.loads(_resolver(load(fn)).get_openapi_json_schema())
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
        _decorate(doc["paths"][path][method], route, fn)

    schemas: dict[str, Any] = doc["components"].setdefault("schemas", {})
    schemas["Error"] = ERROR_SCHEMA
    _drop_unreferenced(doc, ("HTTPValidationError", "ResponseValidationError", "ValidationError"))
    return doc


def openapi_json(topology: Topology = TOPOLOGY, load: Loader = import_function) -> bytes:
    return json.dumps(build_openapi(topology, load), indent=2, sort_keys=False).encode()
