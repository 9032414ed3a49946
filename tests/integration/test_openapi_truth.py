"""The OpenAPI document tells the truth (issue 19 item 7): strict request bodies (no bool for an
int, no JSON array for an object), the declared status codes and the checkout's Idempotency-Key."""

from __future__ import annotations

import json
from typing import Any

import pytest

from hallmark_tools.localcloud.cloud import LocalCloud
from hallmark_tools.topology.model import ROLES


def _call(cloud: LocalCloud, method: str, path: str, body: Any) -> tuple[int, Any]:
    token = cloud.token("superadmin", "strict-bodies", list(ROLES))
    resp = cloud.api(method, path, token=token, body=json.dumps(body).encode(),
                     headers={"content-type": "application/json"})
    return resp.status, resp.json()


@pytest.mark.parametrize("value", [True, False, 1.5, "10"])
def test_scoring_config_refuses_a_non_integer(shared_cloud: LocalCloud, value: Any) -> None:
    status, payload = _call(shared_cloud, "PUT", "/scoring/config", {"batchMaxEvents": value})
    assert status == 400, payload
    assert payload["error"]["code"] == "invalid_request"
    status, current = _call(shared_cloud, "GET", "/scoring/config", None)
    assert status == 200 and current["batchMaxEvents"] != 1, current  # nothing was stored


def test_strict_bodies_still_accept_what_the_schema_allows(shared_cloud: LocalCloud) -> None:
    status, payload = _call(shared_cloud, "PUT", "/scoring/config", {"batchMaxEvents": 250})
    assert status == 200 and payload["batchMaxEvents"] == 250, payload


@pytest.mark.parametrize("body", [[], [{"events": ""}], "text", 3])
def test_replay_refuses_a_body_that_is_not_an_object(shared_cloud: LocalCloud, body: Any) -> None:
    status, payload = _call(shared_cloud, "POST", "/audit/release/replay", body)
    assert status == 400, payload
    assert payload["error"]["code"] == "invalid_request"
