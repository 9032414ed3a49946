"""Ports of the deployment flow. Adapters: ``hallmark.adapters.lambda_control`` (Lambda, CloudWatch
Logs and alarms, SNS) and ``hallmark.adapters.deploy_evidence`` (what admission verifies); tests
use the fakes in ``tests/fakes/deploy.py``."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from hallmark.ceremony.models import ArtifactProvenance, ProvenanceAttestation


@dataclass(frozen=True)
class CodeRef:
    """The immutable object whose digest was signed (``sha256/<digest>`` at one S3 version)."""

    bucket: str
    key: str
    version_id: str | None

    def to_json_dict(self) -> dict[str, Any]:
        return {"bucket": self.bucket, "key": self.key, "versionId": self.version_id}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CodeRef:
        return cls(str(d["bucket"]), str(d["key"]), d.get("versionId"))


@dataclass(frozen=True)
class FunctionSpec:
    name: str
    runtime: str
    handler: str
    role_arn: str
    memory_mib: int
    ephemeral_mib: int
    environment: dict[str, str]
    tags: dict[str, str]


@dataclass(frozen=True)
class LiveConfig:
    """What Lambda reports for one qualifier of a function."""

    code_sha256: str
    memory_mib: int
    environment: dict[str, str]
    layers: tuple[str, ...] = ()
    ephemeral_mib: int | None = None


@dataclass(frozen=True)
class AliasState:
    version: str
    weights: dict[str, float] = field(default_factory=dict)


class LambdaControl(Protocol):
    """The functions Hallmark manages (names start with ``hallmark-app-``)."""

    def config(self, name: str, qualifier: str = "$LATEST") -> LiveConfig | None:
        """None when the function (or that version) does not exist."""
        ...

    def create(self, spec: FunctionSpec, code: CodeRef) -> None: ...

    def update_code(self, name: str, code: CodeRef) -> None: ...

    def configure(self, spec: FunctionSpec) -> None:
        """Runtime, handler, role, memory, ephemeral storage, environment; no layers."""
        ...

    def publish(self, name: str) -> tuple[str, str]:
        """Publish $LATEST: (version, CodeSha256)."""
        ...

    def delete_version(self, name: str, version: str) -> None: ...

    def alias(self, name: str, alias: str) -> AliasState | None: ...

    def route(self, name: str, alias: str, version: str, extra: tuple[str, float] | None = None) -> None:
        """Create or update the alias: ``version`` takes what ``extra`` (version, weight) leaves."""
        ...

    def remove_alias(self, name: str, alias: str) -> None: ...

    def reserve_concurrency(self, name: str, count: int) -> None: ...

    def provision_concurrency(self, name: str, alias: str, count: int) -> str | None:
        """Provisioned concurrency on the alias; a reason string when the backend skipped it."""
        ...

    def tag(self, name: str, tags: dict[str, str]) -> None: ...


class AlarmHistoryUnavailable(Exception):
    """The alarms' history could not be read: the canary cannot be judged (fail closed)."""


class Monitoring(Protocol):
    def retain_logs(self, function: str, days: int) -> None: ...

    def put_alarms(self, function: str, version: str, kinds: tuple[str, ...]) -> list[str]:
        """The version's alarms (actions to the operators' topic); returns their names."""
        ...

    def alarm_states(self, names: list[str]) -> dict[str, str]:
        """``OK`` | ``ALARM`` | ``INSUFFICIENT_DATA`` per name (a missing alarm is absent)."""
        ...

    def alarms_breached(self, names: list[str], since: datetime) -> list[str]:
        """The names that were in ``ALARM`` at any moment since ``since`` (the bake's start), from
        the alarms' state-change history: an alarm that fired and cleared counts. Raises
        :class:`AlarmHistoryUnavailable` when the history cannot be read (the canary then fails)."""
        ...

    def notify(self, subject: str, detail: dict[str, Any]) -> None:
        """Tell the operators (the drift alarm)."""
        ...


@dataclass(frozen=True)
class ReleaseEvidence:
    """Everything admission verifies, as stored; none of it is trusted until verified."""

    package: dict[str, Any]
    bundle: dict[str, Any]
    keys: dict[str, bytes]  # manifest, audit, proof -> public key PEM
    provenance: ArtifactProvenance | None
    attestation: ProvenanceAttestation | None
    code: CodeRef
    artifact: bytes


class EvidenceSource(Protocol):
    def package_id(self, name: str, version: str) -> str | None:
        """The package released as name@version (None: never submitted)."""
        ...

    def evidence(self, package_id: str) -> ReleaseEvidence:
        """What admission verifies; the tier's ceremony record is the one naming ``package_id``."""
        ...


class ExecutionStarter(Protocol):
    def start(self, name: str, payload: dict[str, Any]) -> str: ...
