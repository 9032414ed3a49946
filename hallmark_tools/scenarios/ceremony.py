"""Ceremony scenario: witnesses registered (public keys only), an artifact taken through bronze
and silver, a deployment planned from its verified provenance, and a deployment refused for a
tampered provenance record."""

from __future__ import annotations

import base64
import json
import time
import uuid
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from hallmark.signing import sign_p256
from hallmark_tools.driver import Driver
from hallmark_tools.localcloud.cloud import ApiResponse
from hallmark_tools.scenarios.base import DemoContext, Step

TERMINAL = ("Completed", "Lapsed")


class Witnesses:
    """Witnesses whose P-256 keys are generated here, at run time; only their public keys are
    registered (POST /witnesses, by a superadmin). Each witness acts with a token for its own
    ``sub``."""

    def __init__(self, driver: Driver, ids: list[str], role: str = "submitter") -> None:
        self.driver = driver
        self.role = role
        self.keys = {w: ec.generate_private_key(ec.SECP256R1()) for w in ids}
        for witness_id, key in self.keys.items():
            pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                                serialization.PublicFormat.SubjectPublicKeyInfo).decode()
            resp = driver.call("POST", "/witnesses", "superadmin", {"witnessId": witness_id, "publicKeyPem": pem})
            if resp.status != 201:
                raise AssertionError(f"registering witness {witness_id}: {resp.status} {resp.body!r}")

    @property
    def ids(self) -> list[str]:
        return list(self.keys)

    def token(self, witness_id: str) -> str:
        return self.driver.cloud.token(self.role, witness_id)

    def open(self, initiator: str, tier: str, artifacts: list[str], *, kind: str = "release",
             blessing: str = "A release worth remembering", deadline_s: int | None = None) -> ApiResponse:
        body: dict[str, Any] = {"tier": tier, "type": kind, "artifacts": artifacts, "blessing": blessing}
        if deadline_s is not None:
            body["deadlineSeconds"] = deadline_s
        return self.driver.call("POST", "/ceremonies", body=body, token=self.token(initiator))

    def signature(self, witness_id: str, ceremony: dict[str, Any], key_of: str | None = None) -> str:
        """The witness's signature over the ceremony's signing payload (its canonical statement)."""
        payload = base64.b64decode(ceremony["signingPayload"])
        return base64.b64encode(sign_p256(self.keys[key_of or witness_id], payload)).decode()

    def witness(self, witness_id: str, ceremony: dict[str, Any], *, key_of: str | None = None,
                signature: str | None = None) -> ApiResponse:
        sig = signature or self.signature(witness_id, ceremony, key_of)
        return self.driver.call("POST", f"/ceremonies/{ceremony['ceremonyId']}/witnesses",
                                body={"signature": sig}, token=self.token(witness_id))

    def ceremony(self, ceremony_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self.driver.ok("GET", f"/ceremonies/{ceremony_id}", "auditor")
        return result

    def wait(self, ceremony_id: str, statuses: tuple[str, ...] = TERMINAL, timeout: float = 60.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            doc = self.ceremony(ceremony_id)
            if doc["status"] in statuses:
                return doc
            if time.monotonic() > deadline:
                raise TimeoutError(f"ceremony {ceremony_id} is still {doc['status']}")
            time.sleep(0.05)

    def run(self, tier: str, artifacts: list[str], witnesses: list[str], *, bless: bool = False,
            **kw: Any) -> dict[str, Any]:
        """Open a ceremony with ``witnesses[0]`` as initiator, collect every witness (and the
        blessing), and wait until it completes."""
        opened = self.open(witnesses[0], tier, artifacts, **kw)
        if opened.status != 201:
            raise AssertionError(f"opening a {tier} ceremony: {opened.status} {opened.body!r}")
        ceremony = opened.json()
        for w in witnesses:
            resp = self.witness(w, ceremony)
            if resp.status != 201:
                raise AssertionError(f"witness {w}: {resp.status} {resp.body!r}")
        if bless:
            self.driver.ok("POST", f"/ceremonies/{ceremony['ceremonyId']}/blessing", "superadmin")
        return self.wait(ceremony["ceremonyId"])


def tamper_provenance(ctx_cloud: Any, signature_id: str, change: dict[str, Any]) -> None:
    """Rewrite a stored provenance record in DynamoDB directly (what an attacker with table
    access could do): the envelope no longer matches the record."""
    table = ctx_cloud.client("dynamodb")
    name = ctx_cloud.resources["TABLE_STATE"]
    key = {"pk": {"S": f"provenance#{signature_id}"}, "sk": {"S": "DOC"}}
    item = table.get_item(TableName=name, Key=key)["Item"]
    doc = json.loads(item["doc"]["S"])
    doc["record"] = {**doc["record"], **change}
    table.update_item(TableName=name, Key=key, UpdateExpression="SET doc = :d",
                      ExpressionAttributeValues={":d": {"S": json.dumps(doc, sort_keys=True)}})


# ----------------------------------------------------------------------------- steps

WITNESS_IDS = ["wit-ada", "wit-grace", "wit-linus", "wit-margaret", "wit-ken"]


def _witnesses(ctx: DemoContext) -> Witnesses:
    witnesses = ctx.facts.get("witnesses")
    if not isinstance(witnesses, Witnesses):
        raise AssertionError("the witnesses were not registered")
    return witnesses


def step_register(ctx: DemoContext) -> dict[str, Any]:
    witnesses = Witnesses(ctx.driver, WITNESS_IDS)
    ctx.facts["witnesses"] = witnesses
    suffix = uuid.uuid4().hex[:6]
    ctx.facts["artifacts"] = [f"greeter-{part}-{suffix}" for part in ("lib", "cli", "docs")]
    return {"witnesses": witnesses.ids, "artifacts": ctx.facts["artifacts"]}


def step_bronze(ctx: DemoContext) -> dict[str, Any]:
    witnesses, artifacts = _witnesses(ctx), ctx.facts["artifacts"]
    done = witnesses.run("bronze", artifacts, witnesses.ids[:1], blessing="First light for the greeter")
    assert done["status"] == "Completed", done
    tiers = {a: ctx.driver.ok("GET", f"/artifacts/{a}", "auditor")["tier"] for a in artifacts}
    assert set(tiers.values()) == {"bronze"}, tiers
    return {"ceremonyId": done["ceremonyId"], "signatureId": done["provenance"]["signatureId"],
            "witnesses": done["provenance"]["record"]["witnesses"], "tiers": tiers}


def step_silver(ctx: DemoContext) -> dict[str, Any]:
    witnesses, artifacts = _witnesses(ctx), ctx.facts["artifacts"]
    done = witnesses.run("silver", artifacts, witnesses.ids[:3], kind="milestone",
                         blessing="Three witnesses vouch for the greeter")
    assert done["status"] == "Completed", done
    signature_id = done["provenance"]["signatureId"]
    provenance = ctx.driver.ok("GET", f"/provenance/{signature_id}", "auditor")
    assert provenance["verification"]["verified"], provenance["verification"]
    tiers = {a: ctx.driver.ok("GET", f"/artifacts/{a}", "auditor")["tier"] for a in artifacts}
    assert set(tiers.values()) == {"silver"}, tiers
    ctx.facts["silver"] = done
    return {"ceremonyId": done["ceremonyId"], "signatureId": signature_id,
            "witnesses": provenance["record"]["witnesses"], "payloadType": provenance["payloadType"],
            "verified": provenance["verification"]["verified"], "tiers": tiers}


def step_deploy(ctx: DemoContext) -> dict[str, Any]:
    artifact = ctx.facts["artifacts"][0]
    plan = ctx.driver.ok("POST", "/deployment-plans", "submitter", {"artifactId": artifact, "environment": "production"})
    assert plan["tier"] == "silver" and plan["resources"]["vcpu"] == "2", plan
    return {"deploymentId": plan["deploymentId"], "artifactId": artifact, "tier": plan["tier"],
            "environment": plan["environment"], "resources": plan["resources"], "monitoring": plan["monitoring"],
            "signature": plan["annotations"]["hallmark.io/provenance-signature"]}


def step_tampered(ctx: DemoContext) -> dict[str, Any]:
    witnesses = _witnesses(ctx)
    artifact = f"greeter-plugin-{uuid.uuid4().hex[:6]}"
    done = witnesses.run("bronze", [artifact], witnesses.ids[3:4], blessing="A plugin, witnessed once")
    assert done["status"] == "Completed", done
    signature_id = done["provenance"]["signatureId"]
    ok = ctx.driver.call("POST", "/deployment-plans", "submitter", {"artifactId": artifact, "environment": "staging"})
    assert ok.status == 201, ok.body
    # someone with table access adds a witness who never signed
    tamper_provenance(ctx.cloud, signature_id, {"witnesses": [*done["provenance"]["record"]["witnesses"], "wit-mallory"]})
    refused = ctx.driver.call("POST", "/deployment-plans", "submitter", {"artifactId": artifact, "environment": "staging"})
    assert refused.status == 403, refused.body
    error = refused.json()["error"]
    assert error["code"] == "provenance_unverified", error
    verification = ctx.driver.ok("GET", f"/provenance/{signature_id}", "auditor")["verification"]
    assert not verification["verified"]
    return {"artifactId": artifact, "beforeTampering": ok.status, "afterTampering": refused.status,
            "code": error["code"], "reason": error["details"]["reason"], "provenanceVerifies": verification["verified"]}


STEPS: list[tuple[str, Step]] = [
    ("Ceremony: witnesses register their public keys", step_register),
    ("Ceremony: bronze for three artifacts (the initiator witnesses)", step_bronze),
    ("Ceremony: silver with three distinct witnesses -> DSSE-signed provenance", step_silver),
    ("Deployment: silver artifact planned for production from verified provenance", step_deploy),
    ("Deployment: refused after the stored provenance is tampered with", step_tampered),
]
