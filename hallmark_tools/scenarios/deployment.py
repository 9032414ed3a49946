"""Deployment scenario: a ``lambda`` package published, crowned bronze, deployed to staging
(100 % at once); v2 through a 10 % canary whose alarm fires -> rolled back; v3 promoted; an
out-of-band ``update_function_code`` caught by the drift watch and reverted. Writes
``deployments/<id>.json`` (each with the live ``codeSha256`` and the signed sha256)."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from hallmark.deploy.models import TERMINAL, code_sha256_b64
from hallmark_tools import samples
from hallmark_tools.driver import Driver
from hallmark_tools.scenarios.base import DemoContext, Step
from hallmark_tools.scenarios.ceremony import Witnesses

WITNESS = "wit-deployer"


class Deployer:
    """Publishes ``lambda`` packages, crowns them, deploys them and drives their alarms."""

    def __init__(self, driver: Driver, witnesses: Witnesses | None = None) -> None:
        self.driver = driver
        self.witnesses = witnesses or Witnesses(driver, [f"{WITNESS}-{uuid.uuid4().hex[:6]}"])

    @property
    def cloud(self) -> Any:
        return self.driver.cloud

    def publish(self, name: str, version: str, greeting: str = "hello", **kw: Any) -> dict[str, Any]:
        body = samples.lambda_package(name, greeting)
        pid = self.driver.submit(body, name=name, version=version, type="lambda", **kw)
        doc = self.driver.wait_package(pid, ("Published", "Rejected"))
        if doc["status"] != "Published":
            raise AssertionError(f"{name}@{version} was not published: {doc['reasons']}")
        return doc

    def crown(self, package_id: str, tier: str = "bronze") -> dict[str, Any]:
        """A ceremony awards the package (by its id) a tier."""
        done = self.witnesses.run(tier, [package_id], self.witnesses.ids[:1], blessing=f"crowning {package_id}")
        assert done["status"] == "Completed", done
        return done

    def release(self, name: str, version: str, tier: str = "bronze", **kw: Any) -> dict[str, Any]:
        doc = self.publish(name, version, **kw)
        self.crown(doc["packageId"], tier)
        return doc

    def request(self, name: str, version: str, environment: str, key: str | None = None,
                role: str = "submitter") -> Any:
        headers = {"Idempotency-Key": key} if key else None
        return self.driver.call("POST", "/deployments", role,
                                {"package": name, "version": version, "environment": environment}, headers=headers)

    def deploy(self, name: str, version: str, environment: str) -> str:
        resp = self.request(name, version, environment)
        if resp.status != 202:
            raise AssertionError(f"deploying {name}@{version}: {resp.status} {resp.body!r}")
        return str(resp.json()["deploymentId"])

    def get(self, deployment_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self.driver.ok("GET", f"/deployments/{deployment_id}", "auditor")
        return result

    def wait(self, deployment_id: str, stages: frozenset[str] | tuple[str, ...] = TERMINAL,
             timeout: float = 120.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            doc = self.get(deployment_id)
            if doc["stage"] in stages:
                return doc
            if time.monotonic() > deadline:
                raise TimeoutError(f"deployment {deployment_id} is still {doc['stage']}")
            time.sleep(0.05)

    def set_alarms(self, doc: dict[str, Any], state: str) -> None:
        cw = self.cloud.client("cloudwatch")
        for name in doc.get("alarms") or []:
            cw.set_alarm_state(AlarmName=name, StateValue=state, StateReason="driven by the scenario")

    def alias(self, doc: dict[str, Any]) -> dict[str, Any]:
        a = self.cloud.client("lambda").get_alias(FunctionName=doc["functionName"], Name=doc["alias"])
        return {"version": a["FunctionVersion"],
                "weights": (a.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}}

    def code_sha256(self, function: str, qualifier: str = "$LATEST") -> str:
        cfg = self.cloud.client("lambda").get_function_configuration(FunctionName=function, Qualifier=qualifier)
        return str(cfg["CodeSha256"])

    def tamper_code(self, function: str) -> str:
        """What someone with Lambda access outside Hallmark does: new code on $LATEST."""
        body = samples.zip_bytes({"app.py": b"def handler(event, context):\n    return 'not vetted'\n"})
        return str(self.cloud.client("lambda").update_function_code(FunctionName=function, ZipFile=body)["CodeSha256"])

    def record(self, doc: dict[str, Any]) -> dict[str, Any]:
        """The deployment as the demo writes it: with the live CodeSha256 and the signed sha256."""
        live = None
        if doc.get("functionVersion"):
            try:
                live = self.code_sha256(doc["functionName"], doc["functionVersion"])
            except Exception:  # a version deleted after a mismatch
                live = None
        return {**doc, "liveCodeSha256": live, "signedCodeSha256": code_sha256_b64(doc["signedSha256"])
                if doc.get("signedSha256") else None}


# ----------------------------------------------------------------------------- steps


def _deployer(ctx: DemoContext) -> Deployer:
    deployer = ctx.facts.get("deployer")
    if not isinstance(deployer, Deployer):
        deployer = Deployer(ctx.driver)
        ctx.facts["deployer"] = deployer
        ctx.facts["fn"] = f"greeter-fn-{uuid.uuid4().hex[:6]}"
    return deployer


def _write(ctx: DemoContext, deployer: Deployer, doc: dict[str, Any]) -> dict[str, Any]:
    out = ctx.out / "deployments"
    out.mkdir(exist_ok=True)
    record = deployer.record(doc)
    (out / f"{doc['deploymentId']}.json").write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    return record


def step_first(ctx: DemoContext) -> dict[str, Any]:
    d = _deployer(ctx)
    name = ctx.facts["fn"]
    d.release(name, "1.0.0", "bronze")
    doc = d.wait(d.deploy(name, "1.0.0", "staging"))
    assert doc["stage"] == "live", doc
    record = _write(ctx, d, doc)
    assert record["liveCodeSha256"] == record["signedCodeSha256"], record
    return {"deploymentId": doc["deploymentId"], "function": doc["functionName"], "stage": doc["stage"],
            "alias": d.alias(doc), "codeSha256": record["liveCodeSha256"], "profile": doc["profile"]}


def step_canary_rollback(ctx: DemoContext) -> dict[str, Any]:
    d = _deployer(ctx)
    name = ctx.facts["fn"]
    d.release(name, "1.1.0", "bronze", greeting="hullo")
    canary = d.wait(d.deploy(name, "1.1.0", "staging"), ("canary", *TERMINAL))
    assert canary["stage"] == "canary", canary
    during = d.alias(canary)
    d.set_alarms(canary, "ALARM")  # the canary's errors alarm fires during the bake
    doc = d.wait(canary["deploymentId"])
    assert doc["stage"] == "rolled_back" and d.alias(doc)["version"] == canary["previousVersion"], doc
    _write(ctx, d, doc)
    return {"deploymentId": doc["deploymentId"], "duringCanary": during, "stage": doc["stage"],
            "after": d.alias(doc)}


def step_drift(ctx: DemoContext) -> dict[str, Any]:
    d = _deployer(ctx)
    name = ctx.facts["fn"]
    d.release(name, "1.2.0", "bronze", greeting="hello again")
    doc = d.wait(d.deploy(name, "1.2.0", "staging"))
    assert doc["stage"] == "live", doc
    signed = code_sha256_b64(doc["signedSha256"])
    tampered = d.tamper_code(doc["functionName"])
    deadline = time.monotonic() + 60
    while d.code_sha256(doc["functionName"]) != signed or d.get(doc["deploymentId"])["stage"] != "live" \
            or not any(s["stage"] == "drifted" for s in d.get(doc["deploymentId"])["stages"]):
        if time.monotonic() > deadline:
            raise TimeoutError("the drift watch did not revert the out-of-band code")
        time.sleep(0.2)
    after = d.get(doc["deploymentId"])
    _write(ctx, d, after)
    return {"deploymentId": doc["deploymentId"], "tamperedCodeSha256": tampered, "restoredCodeSha256": signed,
            "stages": [s["stage"] for s in after["stages"]]}


STEPS: list[tuple[str, Step]] = [
    ("Deployment: lambda package published, crowned bronze, deployed to staging -> live 100 %", step_first),
    ("Deployment: v2 canary 10 % -> alarm -> rolled back to v1", step_canary_rollback),
    ("Deployment: v3 promoted; out-of-band update_function_code -> drift detected, reverted", step_drift),
]
