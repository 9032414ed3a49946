"""Fakes of the deployment ports, and a signed release built in memory with keys generated here
(manifest DSSE envelope, an audit log with a signed checkpoint, a DSSE ceremony record)."""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from hallmark.audit.log import AuditLog
from hallmark.bundle import collect_bundle
from hallmark.ceremony.models import ArtifactProvenance
from hallmark.ceremony.provenance import attest_dsse
from hallmark.deploy.ports import (
    AlarmHistoryUnavailable,
    AliasState,
    CodeRef,
    FunctionSpec,
    LiveConfig,
    ReleaseEvidence,
)
from hallmark.dsse import in_toto_statement, manifest_signature_id, sign_envelope
from hallmark.signing import public_key_fingerprint
from hallmark_tools import samples
from tests.fakes.audit import InMemoryAuditStore
from tests.fakes.signing import LocalSigner

NOW = datetime(2026, 12, 3, 6, 0, tzinfo=UTC)


@dataclass
class _Fn:
    spec: FunctionSpec
    code: CodeRef
    sha: str
    versions: dict[str, LiveConfig] = field(default_factory=dict)
    aliases: dict[str, AliasState] = field(default_factory=dict)
    layers: tuple[str, ...] = ()


class FakeLambda:
    """Lambda as far as the flow sees it; ``objects`` maps an S3 key to its bytes (CodeSha256 is
    base64 of their SHA-256); ``publish_sha`` forces what publish reports (a mismatch)."""

    def __init__(self, objects: dict[str, bytes]) -> None:
        self.objects = objects
        self.fns: dict[str, _Fn] = {}
        self.calls: list[str] = []
        self.publish_sha: str | None = None
        self.reserved: dict[str, int] = {}
        self.tags: dict[str, dict[str, str]] = {}

    def _sha(self, code: CodeRef) -> str:
        return base64.b64encode(hashlib.sha256(self.objects[code.key]).digest()).decode()

    def config(self, name: str, qualifier: str = "$LATEST") -> LiveConfig | None:
        fn = self.fns.get(name)
        if fn is None:
            return None
        if qualifier == "$LATEST":
            return LiveConfig(fn.sha, fn.spec.memory_mib, dict(fn.spec.environment), fn.layers, fn.spec.ephemeral_mib)
        return fn.versions.get(qualifier)

    def create(self, spec: FunctionSpec, code: CodeRef) -> None:
        self.calls.append("create")
        self.fns[spec.name] = _Fn(spec, code, self._sha(code))

    def update_code(self, name: str, code: CodeRef) -> None:
        self.calls.append("update_code")
        fn = self.fns[name]
        fn.code, fn.sha = code, self._sha(code)

    def configure(self, spec: FunctionSpec) -> None:
        self.calls.append("configure")
        fn = self.fns[spec.name]
        fn.spec, fn.layers = spec, ()

    def publish(self, name: str) -> tuple[str, str]:
        self.calls.append("publish")
        fn = self.fns[name]
        version = str(len(fn.versions) + 1)
        sha = self.publish_sha or fn.sha
        fn.versions[version] = LiveConfig(sha, fn.spec.memory_mib, dict(fn.spec.environment), (), fn.spec.ephemeral_mib)
        return version, sha

    def delete_version(self, name: str, version: str) -> None:
        self.calls.append(f"delete_version {version}")
        del self.fns[name].versions[version]

    def alias(self, name: str, alias: str) -> AliasState | None:
        fn = self.fns.get(name)
        return fn.aliases.get(alias) if fn else None

    def route(self, name: str, alias: str, version: str, extra: tuple[str, float] | None = None) -> None:
        self.calls.append(f"route {version} {extra}")
        self.fns[name].aliases[alias] = AliasState(version, {extra[0]: extra[1]} if extra else {})

    def remove_alias(self, name: str, alias: str) -> None:
        self.calls.append("remove_alias")
        self.fns[name].aliases.pop(alias, None)

    def reserve_concurrency(self, name: str, count: int) -> None:
        self.reserved[name] = count

    def provision_concurrency(self, name: str, alias: str, count: int) -> str | None:
        return "not implemented by this fake"

    def tag(self, name: str, tags: dict[str, str]) -> None:
        self.tags[name] = dict(tags)


class FakeMonitoring:
    def __init__(self) -> None:
        self.states: dict[str, str] = {}
        self.breached: set[str] = set()  # was in ALARM during the bake (the history)
        self.history_error: str | None = None
        self.retention: dict[str, int] = {}
        self.notified: list[dict[str, Any]] = []

    def retain_logs(self, function: str, days: int) -> None:
        self.retention[function] = days

    def put_alarms(self, function: str, version: str, kinds: tuple[str, ...]) -> list[str]:
        names = [f"{function}-v{version}-{k}" for k in kinds]
        for n in names:
            self.states.setdefault(n, "INSUFFICIENT_DATA")
        return names

    def alarm_states(self, names: list[str]) -> dict[str, str]:
        return {n: self.states[n] for n in names if n in self.states}

    def alarms_breached(self, names: list[str], since: datetime) -> list[str]:
        if self.history_error:
            raise AlarmHistoryUnavailable(self.history_error)
        return [n for n in names if n in self.breached or self.states.get(n) == "ALARM"]

    def notify(self, subject: str, detail: dict[str, Any]) -> None:
        self.notified.append(detail)


class RecordingAudit:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def emit(self, *, chain: str, type: str, actor: str, subject: str, data: dict[str, Any],
             event_id: str | None = None) -> str:
        self.events.append({"chain": chain, "type": type, "subject": subject, "data": data, "actor": actor})
        return event_id or str(len(self.events))

    def types(self, subject: str | None = None) -> list[str]:
        return [e["type"] for e in self.events if subject is None or e["subject"] == subject]


@dataclass
class SignedRelease:
    """A LOW ``lambda`` release as the release flow and a ceremony leave it, signed with keys
    generated here; :meth:`evidence` is what admission is given."""

    name: str
    version: str
    artifact: bytes
    tier: str | None = "bronze"
    package_type: str = "lambda"
    keys: dict[str, LocalSigner] = field(default_factory=lambda: {p: LocalSigner.generate(f"local:{p}")
                                                                   for p in ("manifest", "audit", "proof")})

    def __post_init__(self) -> None:
        self.package_id = f"pkg-{self.name}-{self.version}"
        self.sha256 = hashlib.sha256(self.artifact).hexdigest()
        statement = in_toto_statement(
            [{"name": f"{self.name}-{self.version}.zip", "digest": {"sha256": self.sha256}}],
            "https://hallmark.dev/manifest/v1",
            {"type": self.package_type, "impact": "LOW", "emergency": False,
             "package": {"name": self.name, "version": self.version, "license": "MIT"},
             "signerKeyFingerprint": public_key_fingerprint(self.keys["manifest"].public_key_pem())})
        payload = json.dumps(statement, sort_keys=True).encode()
        self.envelope = sign_envelope(payload, "application/vnd.in-toto+json", self.keys["manifest"])
        self.log = AuditLog(InMemoryAuditStore(), self.keys["audit"])
        for i, t in enumerate(("PackageSubmitted", "ManifestSigned", "PackagePublished")):
            self.log.append("release", f"ev-{self.package_id}-{i}", NOW, t, "system", self.package_id,
                            {"manifestDigest": hashlib.sha256(payload).hexdigest()} if t == "ManifestSigned" else {})
        self.log.checkpoint_now("release")
        self.package = {"packageId": self.package_id, "status": "Published",
                        "meta": {"name": self.name, "version": self.version, "impact": "LOW", "type": "lambda"},
                        "manifest": {"digest": hashlib.sha256(payload).hexdigest(),
                                     "signatureId": manifest_signature_id(self.envelope)},
                        "pinned": {"key": f"sha256/{self.sha256}"}}
        self.provenance: ArtifactProvenance | None = None
        self.attestation = None
        if self.tier:
            artifact_id = self.package_id
            record = {"_type": "hallmark/provenance/v1", "ceremonyId": f"cer-{artifact_id}", "tier": self.tier,
                      "artifacts": [artifact_id], "witnesses": ["wit-a"]}
            self.attestation = attest_dsse(record, self.keys["proof"])
            self.provenance = ArtifactProvenance(artifact_id=artifact_id, tier=self.tier,  # type: ignore[arg-type]
                                                 ceremony_id=record["ceremonyId"],
                                                 signature_id=self.attestation.signature_id, awarded_at=NOW)

    def bundle(self) -> dict[str, Any]:
        return collect_bundle(self.package, self.envelope, upgrade=None, approver_keys={}, threshold=3,
                              audit_log=self.log, key_fingerprints={
                                  p: public_key_fingerprint(s.public_key_pem()) for p, s in self.keys.items()})

    def evidence(self, artifact: bytes | None = None) -> ReleaseEvidence:
        return ReleaseEvidence(
            package=self.package, bundle=self.bundle(), keys={p: s.public_key_pem() for p, s in self.keys.items()},
            provenance=self.provenance, attestation=self.attestation,
            code=CodeRef("packages", f"sha256/{self.sha256}", "v1"),
            artifact=self.artifact if artifact is None else artifact)


class FakeEvidence:
    def __init__(self) -> None:
        self.releases: dict[str, SignedRelease] = {}
        self.override: dict[str, ReleaseEvidence] = {}

    def add(self, release: SignedRelease) -> SignedRelease:
        self.releases[release.package_id] = release
        return release

    def package_id(self, name: str, version: str) -> str | None:
        return next((r.package_id for r in self.releases.values() if (r.name, r.version) == (name, version)), None)

    def evidence(self, package_id: str) -> ReleaseEvidence:
        return self.override.get(package_id) or self.releases[package_id].evidence()


def lambda_zip(name: str, greeting: str = "hello") -> bytes:
    return samples.lambda_package(name, greeting)


__all__ = ["FakeEvidence", "FakeLambda", "FakeMonitoring", "RecordingAudit", "SignedRelease", "lambda_zip", "replace"]
