"""The deployment flow's steps (``statemachines/deployment.asl.json``), each audited on the
``ceremony`` chain, each a method over ports (no boto3):

request -> admit -> release (pinned bytes, version published, CodeSha256 asserted) -> profile
(tier sizing, alarms) -> shift (10 % canary, or 100 % for a first deployment) -> [bake] -> judge
(100 % when the version's alarms stayed OK, else back to the previous version); ``fail`` when a
step broke; ``drift`` on a schedule; ``revoke`` when governance rolls back an unratified emergency
release; ``rollback`` by a superadmin.

One deployment per function and environment at a time: the ``deployment-target`` document of the
function holds the running deployment's id (taken by ``request``, given back at a terminal stage)
and what is live (the record ``drift`` compares with Lambda and ``revoke`` restores from).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from hallmark._domain import EventDraft, emit_all
from hallmark.canonical import parse_rfc3339, to_rfc3339
from hallmark.deploy.admission import Admitted, admission_failure
from hallmark.deploy.models import (
    ENVIRONMENTS,
    KIND,
    MANAGED_TAG,
    TARGET,
    TERMINAL,
    Policy,
    code_sha256_b64,
    function_name,
    tier_profile,
)
from hallmark.deploy.ports import (
    AlarmHistoryUnavailable,
    CodeRef,
    EvidenceSource,
    ExecutionStarter,
    FunctionSpec,
    LambdaControl,
    Monitoring,
)
from hallmark.docstore import DocStore, update
from hallmark.errors import Conflict, DomainError, InvalidInput, NotFound
from hallmark.ports import AuditEmitter

CHAIN = "ceremony"


@dataclass
class DeploymentSteps:
    docs: DocStore
    audit: AuditEmitter
    evidence: EvidenceSource
    lam: LambdaControl
    monitoring: Monitoring
    policy: Policy
    roles: dict[str, str]  # environment -> the execution role deployed functions run as
    clock: Callable[[], datetime]
    starter: ExecutionStarter | None = None

    # ------------------------------------------------------------------ API
    def request(self, name: str, version: str, environment: str, actor: str,
                idempotency_key: str | None = None) -> tuple[dict[str, Any], bool]:
        """Record the request, take the function's lock, start the flow: (record, created).

        The same ``Idempotency-Key`` from the same caller returns the first record; a second
        deployment of a function+environment while one runs is ``deployment_in_progress`` (409)."""
        if environment not in ENVIRONMENTS:
            raise InvalidInput(f"unknown environment {environment!r}", {"allowed": list(ENVIRONMENTS)})
        if idempotency_key:
            deployment_id = "dep-" + hashlib.sha256(f"{actor}\n{idempotency_key}".encode()).hexdigest()[:32]
            existing = self.docs.get(KIND, deployment_id)
            if existing is not None:
                if (existing["package"], existing["packageVersion"], existing["environment"]) != (
                        name, version, environment):
                    raise DomainError("idempotency_key_reused", "this Idempotency-Key was used for another "
                                      "deployment", http_status=422, details={"deploymentId": deployment_id})
                return existing, False
        else:
            deployment_id = f"dep-{uuid.uuid4()}"
        package_id = self.evidence.package_id(name, version)
        if package_id is None:
            raise NotFound("package", f"{name}@{version}")
        fn = function_name(name, environment)
        self._lock(fn, environment, name, deployment_id)
        now = to_rfc3339(self.clock(), "auto")
        doc: dict[str, Any] = {
            "deploymentId": deployment_id, "package": name, "packageVersion": version, "packageId": package_id,
            "environment": environment, "functionName": fn, "alias": environment, "stage": "requested",
            "stages": [{"stage": "requested", "at": now}], "requestedBy": actor, "requestedAt": now,
            "idempotencyKey": idempotency_key, "canaryWeight": 0.0, "skipped": [],
        }
        self.docs.create(KIND, deployment_id, doc)
        if self.starter is not None:
            try:
                arn = self.starter.start(deployment_id, {"deploymentId": deployment_id})
            except Exception:
                self._unlock(fn, deployment_id)
                raise
            doc = update(self.docs, KIND, deployment_id, lambda d: d.update(executionArn=arn))
        return doc, True

    def get(self, deployment_id: str) -> dict[str, Any]:
        doc = self.docs.get(KIND, deployment_id)
        if doc is None:
            raise NotFound("deployment", deployment_id)
        doc.pop("version", None)
        return doc

    def list_deployments(self, *, package: str | None = None, environment: str | None = None, limit: int = 50,
                         next_token: str | None = None) -> dict[str, Any]:
        """Newest first, ``limit`` a page (``hallmark.pagination``: ``items`` and ``nextToken``)."""
        from hallmark.pagination import paginate, scan_kind

        docs = [d for d in scan_kind(self.docs, KIND)
                if (package is None or d["package"] == package)
                and (environment is None or d["environment"] == environment)]
        for d in docs:
            d.pop("version", None)
        items, token = paginate(docs, key=lambda d: (d["requestedAt"], d["deploymentId"]), limit=limit,
                                next_token=next_token, route="deployments", newest_first=True,
                                filters={"package": package, "environment": environment})
        return {"items": items, "nextToken": token}

    # ------------------------------------------------------------------ flow
    def admit(self, deployment_id: str) -> dict[str, Any]:
        doc = self.get(deployment_id)
        artifact_id = f"{doc['package']}@{doc['packageVersion']}"
        try:
            ev = self.evidence.evidence(doc["packageId"])
        except NotFound as exc:
            return self.refuse(deployment_id, "evidence_missing", exc.message)
        verdict = admission_failure(ev, doc["environment"], self.policy)
        if not isinstance(verdict, Admitted):
            return self.refuse(deployment_id, verdict.reason, verdict.detail)
        profile = tier_profile(verdict.tier, doc["environment"])  # type: ignore[arg-type]

        def change(d: dict[str, Any]) -> None:
            d.update(tier=verdict.tier, signedSha256=verdict.signed_sha256,
                     manifestSignatureId=verdict.manifest_signature_id,
                     provenanceSignatureId=verdict.provenance_signature_id, emergency=verdict.emergency,
                     code=ev.code.to_json_dict(), profile=profile.to_json_dict(),
                     handler=verdict.spec.handler, runtime=verdict.spec.runtime)
            self._stage(d, "admitted")

        update(self.docs, KIND, deployment_id, change)
        self._emit("DeploymentAdmitted", deployment_id, {
            "package": artifact_id, "environment": doc["environment"], "tier": verdict.tier,
            "signedSha256": verdict.signed_sha256, "manifestSignatureId": verdict.manifest_signature_id,
            "provenanceSignatureId": verdict.provenance_signature_id})
        return {"deploymentId": deployment_id, "admitted": True, "tier": verdict.tier}

    def refuse(self, deployment_id: str, reason: str, detail: str) -> dict[str, Any]:
        """Refused: audited ``DeploymentRefused``, the lock given back, nothing created in Lambda."""
        doc = update(self.docs, KIND, deployment_id, lambda d: self._stage(d, "refused", reason=reason, detail=detail))
        self._unlock(doc["functionName"], deployment_id)
        self._emit("DeploymentRefused", deployment_id, {
            "package": f"{doc['package']}@{doc['packageVersion']}", "environment": doc["environment"],
            "reason": reason, "detail": detail[:500], "deploymentId": deployment_id})
        return {"deploymentId": deployment_id, "admitted": False, "reason": reason}

    def release(self, deployment_id: str) -> dict[str, Any]:
        """Create or update the function from the pinned object, publish a version and assert its
        ``CodeSha256`` is the signed sha256 before any traffic (else the version is deleted)."""
        doc = self.get(deployment_id)
        spec = self._spec(doc)
        code = CodeRef.from_dict(doc["code"])
        fn = doc["functionName"]
        update(self.docs, KIND, deployment_id, lambda d: self._stage(d, "deploying"))
        if self.lam.config(fn) is None:
            self.lam.create(spec, code)
        else:
            self.lam.update_code(fn, code)
            self.lam.configure(spec)
        version, reported = self.lam.publish(fn)
        expected = code_sha256_b64(doc["signedSha256"])
        published = self.lam.config(fn, version)
        live = published.code_sha256 if published else None
        if reported != expected or live != expected:
            self.lam.delete_version(fn, version)
            update(self.docs, KIND, deployment_id, lambda d: self._stage(
                d, "failed", reason="code_mismatch", detail=f"CodeSha256 {live or reported} is not {expected}"))
            self._unlock(fn, deployment_id)
            self._emit("DeploymentCodeMismatch", deployment_id, {
                "functionName": fn, "functionVersion": version, "codeSha256": live or reported,
                "signedCodeSha256": expected, "versionDeleted": True})
            return {"deploymentId": deployment_id, "ok": False, "reason": "code_mismatch"}
        alias = self.lam.alias(fn, doc["alias"])
        previous = alias.version if alias else None

        def change(d: dict[str, Any]) -> None:
            d.update(functionVersion=version, codeSha256=live, previousVersion=previous)

        update(self.docs, KIND, deployment_id, change)
        self._emit("DeploymentVersionPublished", deployment_id, {
            "functionName": fn, "functionVersion": version, "codeSha256": live,
            "signedSha256": doc["signedSha256"], "previousVersion": previous})
        return {"deploymentId": deployment_id, "ok": True, "functionVersion": version}

    def profile(self, deployment_id: str) -> dict[str, Any]:
        """The tier profile for real: concurrency, log retention, alarms with actions, tags."""
        doc = self.get(deployment_id)
        fn, version, p = doc["functionName"], doc["functionVersion"], doc["profile"]
        skipped: list[dict[str, str]] = []
        if p["concurrency"] == "provisioned":
            why = self.lam.provision_concurrency(fn, version, int(p["replicas"]))
            if why:
                skipped.append({"call": "PutProvisionedConcurrencyConfig", "reason": why})
        else:
            self.lam.reserve_concurrency(fn, int(p["replicas"]))
        self.monitoring.retain_logs(fn, int(p["logRetentionDays"]))
        alarms = self.monitoring.put_alarms(fn, version, tuple(p["alarms"]))
        self.lam.tag(fn, self._spec(doc).tags)

        def change(d: dict[str, Any]) -> None:
            d.update(alarms=alarms, skipped=[*d.get("skipped", []), *skipped])

        update(self.docs, KIND, deployment_id, change)
        self._emit("DeploymentProfileApplied", deployment_id, {
            "functionName": fn, "functionVersion": version, "profile": p, "alarms": alarms, "skipped": skipped})
        return {"deploymentId": deployment_id, "alarms": alarms, "skipped": skipped}

    def shift(self, deployment_id: str) -> dict[str, Any]:
        """A first deployment goes to 100 % at once; else 10 % of the alias to the new version."""
        doc = self.get(deployment_id)
        fn, version, previous = doc["functionName"], doc["functionVersion"], doc.get("previousVersion")
        if not previous:
            self.lam.route(fn, doc["alias"], version)
            self._go_live(doc, canary=False)
            return {"deploymentId": deployment_id, "canary": False}
        weight = self.policy.canary_weight
        started = to_rfc3339(self.clock(), "auto")  # before any traffic reaches the version
        self.lam.route(fn, doc["alias"], previous, (version, weight))
        update(self.docs, KIND, deployment_id, lambda d: self._stage(
            d, "canary", fields={"canaryWeight": weight, "bakeStartedAt": started}))
        self._emit("DeploymentCanaryStarted", deployment_id, {
            "functionName": fn, "functionVersion": version, "previousVersion": previous, "weight": weight,
            "bakeSeconds": self.policy.bake_seconds})
        return {"deploymentId": deployment_id, "canary": True, "bakeSeconds": self.policy.bake_seconds}

    def judge(self, deployment_id: str) -> dict[str, Any]:
        """After the bake: 100 % when no alarm of the version was in ALARM at any moment of the
        bake (its state history since ``bakeStartedAt``, and its state now), else back to the
        previous version. An unreadable history rolls back too (fail closed)."""
        doc = self.get(deployment_id)
        names = list(doc.get("alarms") or [])
        reason, bad, breached = "alarm", [], []
        try:
            states = self.monitoring.alarm_states(names)
            breached = self.monitoring.alarms_breached(names, parse_rfc3339(doc["bakeStartedAt"])) if names else []
            bad = sorted({*breached, *(n for n in names if states.get(n) not in ("OK", "INSUFFICIENT_DATA"))})
        except AlarmHistoryUnavailable as exc:
            states = {}
            reason, bad = "alarm_history_unreadable", [f"alarm history unreadable: {exc}"]
        if not names:
            bad = ["no alarms to judge the canary by"]
        if not bad:
            self.lam.route(doc["functionName"], doc["alias"], doc["functionVersion"])
            self._go_live(doc, canary=True)
            return {"deploymentId": deployment_id, "outcome": "live"}
        if reason == "alarm" and not any(states.get(n) == "ALARM" for n in names):
            reason = "alarm_during_bake"  # fired and cleared within the bake
        self.lam.route(doc["functionName"], doc["alias"], doc["previousVersion"])
        update(self.docs, KIND, deployment_id, lambda d: self._stage(
            d, "rolled_back", fields={"canaryWeight": 0.0}, reason=reason, detail=", ".join(bad)))
        self._unlock(doc["functionName"], deployment_id)
        self._emit("DeploymentRolledBack", deployment_id, {
            "functionName": doc["functionName"], "from": doc["functionVersion"], "to": doc["previousVersion"],
            "reason": reason, "alarms": bad, "states": {n: states.get(n) for n in names},
            "breachedDuringBake": sorted(breached), "bakeStartedAt": doc["bakeStartedAt"]})
        return {"deploymentId": deployment_id, "outcome": "rolled_back", "reason": reason, "alarms": bad}

    def fail(self, deployment_id: str, error: dict[str, Any]) -> dict[str, Any]:
        """A step failed for good: traffic back on the previous version, the record says why."""
        doc = self.get(deployment_id)
        if doc["stage"] in TERMINAL:
            return {"deploymentId": deployment_id, "stage": doc["stage"]}
        reason = str(error.get("Error") or "failed")
        if reason == "AwaitingCheckpoint":
            return self.refuse(deployment_id, "inclusion_proof_missing",
                               "the manifest's audit entry was never covered by a signed checkpoint")
        if doc["stage"] == "canary" and doc.get("previousVersion"):
            self.lam.route(doc["functionName"], doc["alias"], doc["previousVersion"])
        update(self.docs, KIND, deployment_id, lambda d: self._stage(
            d, "failed", reason=reason, detail=str(error.get("Cause") or "")[:500]))
        self._unlock(doc["functionName"], deployment_id)
        self._emit("DeploymentFailed", deployment_id, {"reason": reason, "stage": doc["stage"]})
        return {"deploymentId": deployment_id, "stage": "failed"}

    # ------------------------------------------------------------------ after
    def drift(self) -> list[dict[str, Any]]:
        """Compare every live Hallmark-managed function with its record; audit, alarm, revert."""
        found = []
        for target in self.docs.query(TARGET, limit=10_000):
            live = target.get("live")
            if not live or target.get("holder"):
                continue
            diffs = self._diffs(target["functionName"], target["environment"], live)
            if not diffs:
                continue
            action = self.policy.drift.get(target["environment"], "alarm")
            self._emit("DeploymentDrifted", live["deploymentId"], {
                "functionName": target["functionName"], "environment": target["environment"], "differences": diffs,
                "action": action})
            self.monitoring.notify("Hallmark deployment drifted", {
                "functionName": target["functionName"], "deploymentId": live["deploymentId"], "differences": diffs})
            summary = "; ".join(f"{x['field']}: {x['live']}" for x in diffs)[:500]
            update(self.docs, KIND, live["deploymentId"], lambda d, s=summary: self._stage(d, "drifted", detail=s))
            if action == "revert":
                self._restore(target["functionName"], target["environment"], live)
                update(self.docs, KIND, live["deploymentId"], lambda d: self._stage(d, "live", reason="reverted"))
                self._emit("DeploymentReverted", live["deploymentId"], {
                    "functionName": target["functionName"], "functionVersion": live["functionVersion"],
                    "codeSha256": live["codeSha256"]})
            found.append({"functionName": target["functionName"], "deploymentId": live["deploymentId"],
                          "differences": diffs, "action": action})
        return found

    def revoke(self, package_id: str, reason: str, actor: str = "system:governance") -> list[dict[str, Any]]:
        """Every live deployment of ``package_id`` goes back to the last good version (or loses
        its alias when there is none), audited ``DeploymentRolledBack``."""
        out = []
        for target in self.docs.query(TARGET, limit=10_000):
            live = target.get("live")
            if live and live.get("packageId") == package_id:
                out.append(self._back(target, reason, actor))
        return out

    def rollback(self, deployment_id: str, actor: str) -> dict[str, Any]:
        """A superadmin sends the live deployment's function back to its previous good version."""
        doc = self.get(deployment_id)
        target = self.docs.get(TARGET, doc["functionName"])
        if not target or (target.get("live") or {}).get("deploymentId") != deployment_id:
            raise Conflict("only the live deployment of a function can be rolled back",
                           {"deploymentId": deployment_id, "stage": doc["stage"]}, code="not_live")
        return self._back(target, "manual", actor)

    # ------------------------------------------------------------------ internals
    def _back(self, target: dict[str, Any], reason: str, actor: str) -> dict[str, Any]:
        fn, env, live = target["functionName"], target["environment"], target["live"]
        history = [h for h in target.get("history", []) if h["packageId"] != live["packageId"]]
        previous = history[-1] if history else None
        if previous is not None:
            self._restore(fn, env, previous)
        else:
            self.lam.remove_alias(fn, env)

        def change(t: dict[str, Any]) -> None:
            t["live"] = previous
            t["history"] = history

        update(self.docs, TARGET, fn, change)
        update(self.docs, KIND, live["deploymentId"], lambda d: self._stage(d, "rolled_back", reason=reason))
        self._emit("DeploymentRolledBack", live["deploymentId"], {
            "functionName": fn, "from": live["functionVersion"],
            "to": previous["functionVersion"] if previous else None, "aliasRemoved": previous is None,
            "reason": reason}, actor=actor)
        return {"functionName": fn, "deploymentId": live["deploymentId"],
                "restored": previous["deploymentId"] if previous else None}

    def _diffs(self, fn: str, env: str, live: dict[str, Any]) -> list[dict[str, Any]]:
        diffs: list[dict[str, Any]] = []
        alias = self.lam.alias(fn, env)
        if alias is None or alias.version != live["functionVersion"] or alias.weights:
            diffs.append({"field": "alias", "recorded": live["functionVersion"],
                          "live": None if alias is None else f"{alias.version} {alias.weights or ''}".strip()})
        for qualifier in ("$LATEST", live["functionVersion"]):
            cfg = self.lam.config(fn, qualifier)
            if cfg is None:
                diffs.append({"field": f"function {qualifier}", "recorded": "exists", "live": None})
                continue
            for name, recorded, seen in (("codeSha256", live["codeSha256"], cfg.code_sha256),
                                         ("memory", live["memoryMiB"], cfg.memory_mib),
                                         ("layers", [], list(cfg.layers)),
                                         ("environment", live["environmentVariables"], cfg.environment)):
                if recorded != seen:
                    diffs.append({"field": f"{name} ({qualifier})", "recorded": recorded, "live": seen})
        return diffs

    def _restore(self, fn: str, env: str, entry: dict[str, Any]) -> None:
        spec = FunctionSpec(name=fn, runtime=entry["runtime"], handler=entry["handler"], role_arn=entry["role"],
                            memory_mib=entry["memoryMiB"], ephemeral_mib=entry["ephemeralMiB"],
                            environment=entry["environmentVariables"], tags=entry["tags"])
        self.lam.update_code(fn, CodeRef.from_dict(entry["code"]))
        self.lam.configure(spec)
        self.lam.route(fn, env, entry["functionVersion"])

    def _go_live(self, doc: dict[str, Any], *, canary: bool) -> None:
        spec = self._spec(doc)
        entry = {"deploymentId": doc["deploymentId"], "packageId": doc["packageId"], "package": doc["package"],
                 "packageVersion": doc["packageVersion"], "functionVersion": doc["functionVersion"],
                 "codeSha256": doc["codeSha256"], "signedSha256": doc["signedSha256"], "code": doc["code"],
                 "runtime": spec.runtime, "handler": spec.handler, "role": spec.role_arn,
                 "memoryMiB": spec.memory_mib, "ephemeralMiB": spec.ephemeral_mib,
                 "environmentVariables": spec.environment, "tags": spec.tags, "tier": doc["tier"]}

        def change(t: dict[str, Any]) -> None:
            t["live"] = entry
            t["history"] = [*t.get("history", []), entry][-20:]
            if t.get("holder") == doc["deploymentId"]:
                t["holder"] = None

        update(self.docs, TARGET, doc["functionName"], change)
        update(self.docs, KIND, doc["deploymentId"], lambda d: self._stage(d, "live", fields={"canaryWeight": 1.0}))
        self._emit("DeploymentPromoted", doc["deploymentId"], {
            "functionName": doc["functionName"], "functionVersion": doc["functionVersion"], "weight": 1.0,
            "afterCanary": canary, "codeSha256": doc["codeSha256"]})

    def _spec(self, doc: dict[str, Any]) -> FunctionSpec:
        env = doc["environment"]
        role = self.roles.get(env)
        if not role:
            raise DomainError("no_execution_role", f"no execution role is configured for {env}", http_status=500)
        p = doc["profile"]
        return FunctionSpec(
            name=doc["functionName"], runtime=doc["runtime"], handler=doc["handler"], role_arn=role,
            memory_mib=int(p["memoryMiB"]), ephemeral_mib=int(p["ephemeralStorageMiB"]),
            environment={"HALLMARK_TIER": doc["tier"], "HALLMARK_MANIFEST_SIGNATURE_ID": doc["manifestSignatureId"],
                         "HALLMARK_ENVIRONMENT": env},
            tags={MANAGED_TAG: "true", "hallmark:tier": doc["tier"], "hallmark:environment": env,
                  "hallmark:manifest-signature-id": doc["manifestSignatureId"][-128:],
                  "hallmark:package": f"{doc['package']}@{doc['packageVersion']}"[:256]},
        )

    def _stage(self, d: dict[str, Any], stage: str, fields: dict[str, Any] | None = None, **extra: Any) -> None:
        d.update(fields or {})
        d["stage"] = stage
        d["stages"] = [*d.get("stages", []), {"stage": stage, "at": to_rfc3339(self.clock(), "auto"),
                                               **{k: v for k, v in extra.items() if v}}]

    def _lock(self, fn: str, environment: str, package: str, deployment_id: str) -> None:
        target = self.docs.get(TARGET, fn)
        if target is None:
            try:
                self.docs.create(TARGET, fn, {"functionName": fn, "environment": environment, "package": package,
                                              "holder": deployment_id, "live": None, "history": []})
                return
            except Conflict:
                target = self.docs.get(TARGET, fn)
        assert target is not None
        version = target.pop("version")
        if target.get("holder"):
            raise Conflict(f"a deployment of {fn} is running", {"runningDeploymentId": target["holder"]},
                           code="deployment_in_progress")
        target["holder"] = deployment_id
        try:
            self.docs.replace(TARGET, fn, target, version)
        except Conflict:
            running = (self.docs.get(TARGET, fn) or {}).get("holder")
            raise Conflict(f"a deployment of {fn} is running", {"runningDeploymentId": running},
                           code="deployment_in_progress") from None

    def _unlock(self, fn: str, deployment_id: str) -> None:
        def change(t: dict[str, Any]) -> None:
            if t.get("holder") == deployment_id:
                t["holder"] = None

        update(self.docs, TARGET, fn, change)

    def _emit(self, type_: str, subject: str, data: dict[str, Any], actor: str = "system:deploy") -> None:
        emit_all(self.audit, CHAIN, [EventDraft(type_, subject, data, actor=actor)])
