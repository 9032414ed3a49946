"""hallmark/http.py, the edge every API function shares (issue 17): bodies that would crash a
parser, strict role claims, tokens without exp, and route keys nobody declared."""

from __future__ import annotations

import base64
import json
import time
from typing import Annotated, Any

import pytest
from aws_lambda_powertools.event_handler.openapi.params import Body
from pydantic import BaseModel

from hallmark import http
from hallmark.http import KNOWN_ROLES, MAX_BODY_BYTES, make_resolver, parse_roles
from hallmark_tools.localcloud import shapes
from hallmark_tools.topology.model import ROLES


class Thing(BaseModel):
    name: str = "x"
    nested: Any = None


@pytest.fixture()
def app(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("HALLMARK_ROUTE_ROLES", json.dumps({"POST /things": [], "GET /admin": ["superadmin"]}))
    monkeypatch.setenv("HALLMARK_PUBLIC_ROUTES", json.dumps(["GET /health"]))
    resolver = make_resolver()

    @resolver.post("/things")
    def things(body: Annotated[Thing, Body()]) -> dict[str, Any]:
        return {"ok": True, "caller": http.caller_of(resolver).sub}

    @resolver.get("/admin")
    def admin() -> dict[str, Any]:
        return {"ok": True}

    @resolver.get("/undeclared")
    def undeclared() -> dict[str, Any]:
        return {"ok": True}

    return resolver


def _token(claims: dict[str, Any]) -> str:
    seg = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"eyJhbGciOiJFUzI1NiJ9.{seg}.sig"


def call(app: Any, method: str, path: str, route_key: str | None = None, body: bytes | None = None,
         claims: dict[str, Any] | None = None, raw_token_claims: dict[str, Any] | None = None) -> tuple[int, Any]:
    if claims is None:
        claims = {"sub": "alice", "roles": ["submitter"], "exp": int(time.time()) + 600}
    headers = {"content-type": "application/json"}
    if raw_token_claims is not None:
        headers["authorization"] = f"Bearer {_token(raw_token_claims)}"
    event = shapes.http_api_event(method=method, path=path, route_key=route_key or f"{method} {path}",
                                  path_parameters={}, query={}, raw_query="", headers=headers, body=body,
                                  claims=claims)
    result = app.resolve(event, None)
    return int(result["statusCode"]), json.loads(result["body"])


def test_known_roles_are_the_topology_roles() -> None:
    assert frozenset(ROLES) == KNOWN_ROLES


# ------------------------------------------------------------------ bodies


def test_thirty_thousand_levels_of_nesting_are_a_400_not_a_recursion_error(app: Any) -> None:
    for deep in ("[" * 30_000 + "]" * 30_000, '{"a":' * 30_000 + "1" + "}" * 30_000):
        status, body = call(app, "POST", "/things", body=deep.encode())
        assert status == 400 and body["error"]["code"] == "malformed_json", body


def test_a_lone_surrogate_is_a_400_not_a_unicode_encode_error(app: Any) -> None:
    for text in ('{"name": "\\ud800"}', '{"name": "a\\udfffb"}', '{"\\ud800": 1}', '{"nested": ["\\udc00"]}'):
        status, body = call(app, "POST", "/things", body=text.encode())
        assert status == 400 and body["error"]["code"] == "malformed_json", (text, body)
    status, body = call(app, "POST", "/things", body=b'{"name": "\\ud83d\\ude00 [[["}')  # a real pair
    assert status == 200, body


def test_a_body_over_the_limit_is_a_413(app: Any) -> None:
    status, body = call(app, "POST", "/things", body=b'{"name": "' + b"x" * MAX_BODY_BYTES + b'"}')
    assert status == 413 and body["error"]["code"] == "payload_too_large"


def test_strings_that_look_like_brackets_do_not_count_as_nesting(app: Any) -> None:
    status, body = call(app, "POST", "/things", body=json.dumps({"name": "[" * 500 + '\\"{' * 100}).encode())
    assert status == 200, body


# ------------------------------------------------------------------ tokens and roles


def test_a_token_without_exp_is_refused(app: Any) -> None:
    status, body = call(app, "POST", "/things", body=b"{}", claims={"sub": "alice", "roles": ["submitter"]})
    assert status == 401 and body["error"]["code"] == "unauthorized"


@pytest.mark.parametrize(("raw", "roles"), [
    (["submitter"], {"submitter"}),
    ("[submitter auditor]", {"submitter", "auditor"}),  # the HTTP API authorizer's rendering of a list
    ("superadmin", {"superadmin"}),  # one cognito:groups value
    ('["approver"]', {"approver"}),
    (["submitter superadmin"], set()),  # a space inside one role
    (["submitter,superadmin"], set()),  # a comma inside one role
    ("submitter,superadmin", set()),
    ("submitter superadmin", set()),
    ("[submitter,superadmin]", set()),
    ("[submitter  superadmin]", set()),
    (["Superadmin"], set()),
    (["buyer"], set()),
    (["submitter", "root"], set()),  # one unknown name spoils the claim
    ([1], set()),
    ({"superadmin": True}, set()),
    ("", set()),
    (None, set()),
])
def test_roles_are_parsed_strictly(raw: Any, roles: set[str]) -> None:
    assert parse_roles(raw) == frozenset(roles)


def test_a_role_with_a_space_is_not_split_even_after_the_authorizer_flattened_it(app: Any) -> None:
    """["approver superadmin"] and ["approver", "superadmin"] both arrive as "[approver superadmin]":
    the token the authorizer verified decides, and its one element is no known role."""
    exp = int(time.time()) + 600
    token = {"sub": "mallory", "roles": ["approver superadmin"], "exp": exp}
    claims = {"sub": "mallory", "roles": shapes._flatten_claim(["approver superadmin"]), "exp": exp}
    status, body = call(app, "GET", "/admin", claims=claims, raw_token_claims=token)
    assert status == 403 and body["error"]["details"]["roles"] == []
    honest = {"sub": "root", "roles": ["approver", "superadmin"], "exp": exp}
    status, _ = call(app, "GET", "/admin", claims={**honest, "roles": shapes._flatten_claim(honest["roles"])},
                     raw_token_claims=honest)
    assert status == 200


def test_cognito_groups_are_exact_names(app: Any) -> None:
    exp = int(time.time()) + 600
    ok, _ = call(app, "GET", "/admin", claims={"sub": "a", "cognito:groups": "[superadmin]", "exp": exp})
    bad, _ = call(app, "GET", "/admin", claims={"sub": "a", "cognito:groups": "[super,admin superadmin,x]", "exp": exp})
    assert (ok, bad) == (200, 403)


# ------------------------------------------------------------------ route table


def test_a_route_key_missing_from_the_role_table_is_refused(app: Any) -> None:
    status, body = call(app, "GET", "/undeclared", claims={"sub": "root", "roles": ["superadmin"],
                                                           "exp": int(time.time()) + 600})
    assert status == 403 and body["error"]["code"] == "forbidden", body


def test_a_default_route_cannot_drop_the_role_check(app: Any) -> None:
    """A future `$default` catch-all route delivers every path under routeKey "$default"."""
    status, body = call(app, "GET", "/admin", route_key="$default")
    assert status == 403 and body["error"]["code"] == "forbidden", body
