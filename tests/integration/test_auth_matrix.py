"""Every HTTP route x every principal, generated from the topology (issue 9, item 1).

Principals: the four roles, no token, and bad tokens (expired, forged by another key,
malformed, and one without ``exp``). Expectations, per route:
- no / bad token on a non-public route -> 401 JSON ``{"error": {"code": "unauthorized", ...}}``;
- a role outside a non-empty ``route.roles`` -> 403 JSON ``{"error": {"code": "forbidden", ...}}``;
- otherwise -> anything but 401/403 (inputs are harmless: nonexistent ids and empty or invalid
  bodies, so nothing is created; 400/404/409/422 are fine), and never a 5xx.

The requests that a wrong role sends carry an invalid body on purpose: a refusal on the role
must come before (and never leak) schema validation.
"""

from __future__ import annotations

import json
import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from hallmark_tools.localcloud import shapes
from hallmark_tools.localcloud.auth import AUDIENCE, ISSUER
from hallmark_tools.localcloud.cloud import LocalCloud
from hallmark_tools.topology import TOPOLOGY
from hallmark_tools.topology.model import ROLES, Route

ROUTES: list[tuple[str, Route]] = [(f.name, r) for f in TOPOLOGY.functions for r in f.routes]
BAD_TOKENS = ("none", "expired", "forged", "malformed", "noexp")
PRINCIPALS = (*ROLES, *BAD_TOKENS)

# Path parameters that exist nowhere (a valid chain name, where one is needed, so the check
# reaches the handler rather than a 400 on the name).
PARAM_VALUES = {"chain": "release", "seq": "999999"}


def _path(route: Route) -> str:
    path = route.path
    for seg in route.path.strip("/").split("/"):
        if seg.startswith("{") and seg.endswith("}"):
            name = seg[1:-1].rstrip("+")
            path = path.replace(seg, PARAM_VALUES.get(name, f"nonexistent-{name.lower()}-0"))
    return path


def _body(route: Route) -> dict[str, Any] | None:
    # An object no request model accepts with a required field missing, and an unknown key.
    return {"unexpectedField": True} if route.method in ("POST", "PUT", "PATCH") else None


def _bad_token(kind: str, cloud: LocalCloud, sub: str) -> str | None:
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": sub, "roles": list(ROLES), "iat": now, "exp": now + 600}
    if kind == "none":
        return None
    if kind == "expired":
        return cloud.issuer.token(sub, list(ROLES), ttl_s=-120)
    if kind == "noexp":  # signed by the real issuer, never expires (issue 17): refused
        return jwt.encode({k: v for k, v in claims.items() if k != "exp"}, cloud.issuer._key, algorithm="ES256")
    if kind == "forged":  # every claim right, signed by a key the issuer never had
        return jwt.encode(claims, ec.generate_private_key(ec.SECP256R1()), algorithm="ES256")
    return "not.a.jwt"


def _error(resp: Any) -> dict[str, Any]:
    assert resp.headers.get("content-type", "").startswith("application/json"), resp.headers
    body = resp.json()
    assert isinstance(body, dict) and isinstance(body.get("error"), dict), body
    err: dict[str, Any] = body["error"]
    assert {"code", "message", "details"} <= set(err), err
    return err


def test_the_table_covers_every_route_and_role() -> None:
    keys = {r.key for _, r in ROUTES}
    assert keys == set(TOPOLOGY.routes()), "every declared route is in the matrix"
    assert len(keys) == len(ROUTES), "no route is declared twice"
    for _, route in ROUTES:
        assert set(route.roles) <= set(ROLES), f"{route.key} names an unknown role: {route.roles}"
        assert route.method in ("GET", "POST", "PUT", "PATCH", "DELETE"), route.key


@pytest.mark.parametrize("principal", PRINCIPALS)
@pytest.mark.parametrize(("fn", "route"), ROUTES, ids=[r.key for _, r in ROUTES])
def test_route_x_principal(shared_cloud: LocalCloud, fn: str, route: Route, principal: str) -> None:
    sub = f"matrix-{principal}"
    token = shared_cloud.token(principal, sub) if principal in ROLES else _bad_token(principal, shared_cloud, sub)
    resp = shared_cloud.api(route.method, _path(route), token=token, json_body=_body(route))
    assert resp.status < 500, (route.key, principal, resp.status, resp.body[:500])
    if route.public:
        assert resp.status not in (401, 403), (route.key, principal, resp.status, resp.body[:300])
        return
    if principal not in ROLES:
        assert resp.status == 401, (route.key, principal, resp.status, resp.body[:300])
        assert _error(resp)["code"] == "unauthorized"
    elif route.roles and principal not in route.roles:
        assert resp.status == 403, (route.key, principal, resp.status, resp.body[:300])
        err = _error(resp)
        assert err["code"] == "forbidden", err
        assert err["details"]["required"] == sorted(route.roles), err
    else:
        assert resp.status not in (401, 403), (route.key, principal, resp.status, resp.body[:300])


@pytest.mark.parametrize(("fn", "route"), [(f, r) for f, r in ROUTES if not r.public],
                         ids=[r.key for _, r in ROUTES if not r.public])
def test_handler_refuses_an_event_without_claims(shared_cloud: LocalCloud, fn: str, route: Route) -> None:
    """Defence in depth: should a route ever lose its authorizer, the function itself answers 401."""
    path = _path(route)
    body = _body(route)
    event = shapes.http_api_event(
        method=route.method, path=path, route_key=route.key,
        path_parameters=dict(zip(
            [s[1:-1] for s in route.path.strip("/").split("/") if s.startswith("{")],
            [p for s, p in zip(route.path.strip("/").split("/"), path.strip("/").split("/"), strict=True)
             if s.startswith("{")], strict=True)),
        query={}, raw_query="", headers={"content-type": "application/json"},
        body=None if body is None else b'{"unexpectedField": true}', claims=None)
    result = shared_cloud.invoke(fn, event)
    assert result["statusCode"] == 401, (route.key, result)
    assert json.loads(result["body"])["error"]["code"] == "unauthorized"


def test_a_caller_with_several_roles_passes_if_any_is_allowed(shared_cloud: LocalCloud) -> None:
    token = shared_cloud.token("submitter", "multi", ["submitter", "auditor"])
    resp = shared_cloud.api("GET", "/audit/release/checkpoints", token=token)
    assert resp.status == 200, resp.body[:300]
