"""The API fails closed on hostile input (issue 17), on every route the topology declares:
bodies that crashed a parser, a token without exp, an undeclared route key; and the audit queue
dead-letters only a poison message, never the good event queued behind it."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import jwt
import pytest

from hallmark.http import MAX_BODY_BYTES
from hallmark_tools.localcloud import shapes
from hallmark_tools.localcloud.auth import AUDIENCE, ISSUER
from hallmark_tools.localcloud.cloud import LocalCloud
from hallmark_tools.topology import TOPOLOGY
from hallmark_tools.topology.model import ROLES, Route

ROUTES: list[tuple[str, Route]] = [(f.name, r) for f in TOPOLOGY.functions for r in f.routes]
POSTS = [(f, r) for f, r in ROUTES if r.method in ("POST", "PUT", "PATCH")]
DEEP = ("[" * 30_000 + "]" * 30_000).encode()
SURROGATE = b'{"name": "\\ud800", "x": ["\\udfff"]}'


def _path(route: Route) -> str:
    return "/" + "/".join("release" if s == "{chain}" else f"nonexistent-{s[1:-1].lower()}" if s.startswith("{")
                          else s for s in route.path.strip("/").split("/"))


def _error(resp: Any) -> dict[str, Any]:
    assert resp.headers.get("content-type", "").startswith("application/json"), resp.headers
    err: dict[str, Any] = resp.json()["error"]
    assert {"code", "message", "details"} <= set(err)
    return err


@pytest.mark.parametrize(("fn", "route"), POSTS, ids=[r.key for _, r in POSTS])
@pytest.mark.parametrize("kind", ["deep", "surrogate", "oversize"])
def test_every_post_route_answers_hostile_bodies_with_json_4xx(shared_cloud: LocalCloud, fn: str, route: Route,
                                                               kind: str) -> None:
    token = shared_cloud.token("superadmin", f"hostile-{kind}", list(ROLES))
    body = {"deep": DEEP, "surrogate": SURROGATE, "oversize": b'"' + b"x" * (MAX_BODY_BYTES + 1) + b'"'}[kind]
    resp = shared_cloud.api(route.method, _path(route), token=token, body=body,
                            headers={"content-type": "application/json", "Idempotency-Key": "k"})
    expected = 413 if kind == "oversize" else 400
    assert resp.status == expected, (route.key, kind, resp.status, resp.body[:300])
    assert _error(resp)["code"] == ("payload_too_large" if kind == "oversize" else "malformed_json")


def test_a_token_without_exp_is_refused(shared_cloud: LocalCloud) -> None:
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "forever", "roles": ["auditor"], "iat": now}
    token = jwt.encode(claims, shared_cloud.issuer._key, algorithm="ES256")  # signed by the real issuer
    resp = shared_cloud.api("GET", "/audit/release/checkpoints", token=token)
    assert resp.status == 401 and _error(resp)["code"] == "unauthorized"
    ok = shared_cloud.api("GET", "/audit/release/checkpoints", token=shared_cloud.token("auditor", "timely"))
    assert ok.status == 200


def test_a_role_with_a_comma_or_space_inside_grants_nothing(shared_cloud: LocalCloud) -> None:
    for roles in (["auditor superadmin"], ["submitter,superadmin"]):
        token = shared_cloud.token("x", "mallory", roles)
        resp = shared_cloud.api("GET", "/webhooks", token=token)  # superadmin only
        assert resp.status == 403 and _error(resp)["details"]["roles"] == [], (roles, resp.body)


FUNCTIONS = sorted({fn for fn, r in ROUTES if not r.public})


@pytest.mark.parametrize("fn", FUNCTIONS)
def test_an_undeclared_route_key_is_refused_by_every_api_function(shared_cloud: LocalCloud, fn: str) -> None:
    """A `$default` catch-all (or any route key the role table lacks) reaching a function must not
    skip the role check: 403, even for a superadmin and for a path a declared route serves."""
    route = next(r for f, r in ROUTES if f == fn and not r.public)
    claims = {"sub": "root", "roles": list(ROLES), "exp": int(time.time()) + 600}
    for key in ("$default", f"ANY {route.path}"):
        event = shapes.http_api_event(method=route.method, path=_path(route), route_key=key, path_parameters={},
                                      query={}, raw_query="", headers={"content-type": "application/json"},
                                      body=b"{}" if route.method != "GET" else None, claims=claims)
        result = shared_cloud.invoke(fn, event)
        assert result["statusCode"] == 403, (fn, key, result)
        assert json.loads(result["body"])["error"]["code"] == "forbidden"


# --------------------------------------------------------------------------- audit queue


def test_a_poison_message_goes_to_the_dlq_alone_and_the_next_event_is_appended(
        shared_cloud: LocalCloud, driver: Any) -> None:
    sqs = shared_cloud.client("sqs")
    url = shared_cloud.resources["QUEUE_AUDIT_URL"]
    dlq = shared_cloud.resources["QUEUE_AUDIT_DLQ_URL"]
    before_dlq = shared_cloud.queue_depth("audit-dlq")
    good_id = f"good-{uuid.uuid4()}"
    good = {"id": good_id, "chain": "market", "ts": "2026-12-02T17:00:00Z", "type": "OrderPlaced",
            "actor": "system:test", "subject": f"ord-{good_id}", "data": {"note": "behind the poison"}}
    poison = ['{"id": "p1", "chain": "market"', json.dumps({**good, "id": f"bad-{good_id}", "type": "NoSuchType"})]
    for i, body in enumerate([*poison, json.dumps(good)]):
        sqs.send_message(QueueUrl=url, MessageBody=body, MessageGroupId="market",
                         MessageDeduplicationId=f"{good_id}-{i}")
    shared_cloud.wait_idle()
    events = driver.ok("GET", "/audit/market/events", "auditor")["events"]
    assert [e["id"] for e in events if e["id"] == good_id] == [good_id], "the good event is on the chain once"
    assert shared_cloud.queue_depth("audit-dlq") == before_dlq + 2
    bodies = []
    while msgs := sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10, WaitTimeSeconds=0,
                                      MessageAttributeNames=["All"]).get("Messages", []):
        for m in msgs:
            bodies.append(m["Body"])
            assert m["MessageAttributes"]["quarantineReason"]["StringValue"]
            sqs.delete_message(QueueUrl=dlq, ReceiptHandle=m["ReceiptHandle"])
    assert sorted(bodies) == sorted(poison), bodies
