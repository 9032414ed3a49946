"""Value types of the release validators: the declared package, the configuration and the result.

Results are reproducible: a result holds no timestamps, its findings are sorted, and its
``digest`` is the SHA-256 of the RFC 8785 canonical JSON of everything in it except
``digest`` itself and ``observations`` (the one field for facts that vary between runs of
the same package, such as how long a smoke command took). The same package bytes under the
same configuration therefore give the same digests, which is what lets a signed manifest
cite them in its ``preconditions``.
"""

from __future__ import annotations

import hashlib
import json
from enum import StrEnum
from typing import Any, Final, Literal

import rfc8785
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = [
    "DEFAULT_LICENSE_ALLOW_LIST",
    "MAX_FINDINGS",
    "GiB",
    "Impact",
    "MiB",
    "PackageMeta",
    "SmokeLimits",
    "ValidationResult",
    "ValidatorConfig",
]

MiB: Final = 1024 * 1024
#: Findings kept in one result (results travel in Step Functions payloads, 256 KiB at most);
#: the rest are counted in ``stats["findings_omitted"]``.
MAX_FINDINGS: Final = 200
GiB: Final = 1024 * MiB

#: Permissive licenses accepted by default (SPDX ids; compared after SPDX normalisation).
DEFAULT_LICENSE_ALLOW_LIST: Final[frozenset[str]] = frozenset(
    {
        "0BSD",
        "Apache-2.0",
        "BSD-2-Clause",
        "BSD-3-Clause",
        "BSL-1.0",
        "CC0-1.0",
        "ISC",
        "MIT",
        "MIT-0",
        "MPL-2.0",
        "PSF-2.0",
        "Python-2.0",
        "Unlicense",
        "Zlib",
    }
)


class Impact(StrEnum):
    """How much a release can hurt: LOW/MEDIUM publish at once, HIGH/CRITICAL need 3-of-5."""

    LOW = "LOW"
    MEDIUM = "MEDIUM"
    HIGH = "HIGH"
    CRITICAL = "CRITICAL"


class PackageMeta(BaseModel):
    """What the submitter declares about a package (``POST /packages``)."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
    version: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9.+_-]*$")
    type: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z][A-Za-z0-9_.-]*$")
    target: str = Field(min_length=1, max_length=256)
    impact: Impact
    rationale: str = Field(default="", max_length=4000)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="declared SHA-256 of the package bytes")
    license: str = Field(min_length=1, max_length=512, description="SPDX license expression")
    emergency: bool = False
    filename: str | None = Field(
        default=None,
        min_length=1,
        max_length=255,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._+-]*$",
        description="a bare file name (no directories); when given, its extension must match the format",
    )

    @field_validator("sha256", mode="before")
    @classmethod
    def _lower_hex(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value


class SmokeLimits(BaseModel):
    """Limits of the isolated smoke runner. A package's ``hallmark.toml`` may ask for less, never more."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    default_timeout_s: float = Field(default=30.0, gt=0)
    max_timeout_s: float = Field(default=120.0, gt=0)
    default_memory_mb: int = Field(default=512, ge=16)
    max_memory_mb: int = Field(default=2048, ge=16)
    max_processes: int = Field(
        default=64, ge=1, description="RLIMIT_NPROC of the sandbox uid (not enforced when the command runs as root)"
    )
    max_file_size_mb: int = Field(default=64, ge=1, description="RLIMIT_FSIZE")
    max_open_files: int = Field(default=256, ge=16, description="RLIMIT_NOFILE")
    path: str | None = Field(
        default=None,
        description="PATH of the smoke command; default: the running interpreter's directory, "
        "then /usr/local/bin:/usr/bin:/bin",
    )
    require_network_isolation: bool = Field(
        default=False, description="fail when no network namespace can be made (otherwise only recorded)"
    )
    namespaces: bool = Field(
        default=True, description="try new PID, mount, network, IPC and UTS namespaces (recorded in stats.isolation)"
    )
    require_isolation: frozenset[Literal["pid", "mount", "net", "uid"]] = Field(
        default=frozenset(),
        description="isolation the runner must obtain or fail closed (production locally: all four; "
        "Lambda allows none of them)",
    )
    sandbox_uid: int | None = Field(
        default=65534, ge=1, description="unprivileged uid the command runs as when the runner is root"
    )
    sandbox_gid: int = Field(default=65534, ge=1, description="its gid")
    tmp_size_mb: int = Field(default=64, ge=1, le=4096, description="size of the private /tmp (tmpfs)")
    work_size_mb: int = Field(
        default=256, ge=1, le=8192, description="room the command may write in its work folder (a tmpfs), "
        "beyond the package itself"
    )
    hidden_paths: tuple[str, ...] = Field(
        default=("/root", "/home"),
        description="folders covered by an empty tmpfs in the sandbox (the runner's home is added)",
    )


class ValidatorConfig(BaseModel):
    """Limits and policies of every validator, with secure defaults."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    # static
    max_size: int = Field(default=100 * MiB, ge=1, description="package bytes")
    license_allow_list: frozenset[str] = DEFAULT_LICENSE_ALLOW_LIST
    # archive safety
    max_entries: int = Field(default=10_000, ge=1, description="entries per archive (nested ones too)")
    max_ratio: float = Field(default=100.0, gt=1, description="expansion ratio, per entry and in total")
    ratio_min_size: int = Field(
        default=1 * MiB, ge=0, description="the ratio rule applies from this uncompressed size up"
    )
    max_total_uncompressed: int = Field(default=1 * GiB, ge=1)
    max_nested_depth: int = Field(default=2, ge=0, description="archives inside archives, levels")
    max_nested_inspect_size: int = Field(
        default=32 * MiB, ge=1, description="largest nested archive inspected"
    )
    # text scans (security, compliance, attribution)
    scan_max_file_bytes: int = Field(
        default=4 * MiB,
        ge=1024,
        description="scan window: a larger file is scanned whole, in overlapping windows of this many characters",
    )
    max_scan_files: int = Field(
        default=50_000, ge=1, description="regular files scanned in all, nested archives included"
    )
    max_manifest_bytes: int = Field(
        default=32 * MiB, ge=1, description="largest dependency manifest or lock file that is parsed"
    )
    # security
    advisory_path: str | None = Field(
        default=None, description="offline OSV JSON advisory set file (a list of records); see advisory_source"
    )
    advisory_source: Any = Field(
        default=None,
        exclude=True,
        description="an AdvisorySource (security.py): the deployed, synced set; wins over advisory_path",
    )
    fail_on_vulnerable_range: bool = Field(
        default=False, description="also fail when a version range merely admits an affected version"
    )
    secret_entropy_threshold: float = Field(default=3.5, gt=0, description="bits per character")
    # compliance
    pii_ignore_metadata_emails: bool = Field(
        default=True, description="emails in package metadata files (pyproject.toml, AUTHORS, ...) are public"
    )
    # attribution
    max_ai_share: float | None = Field(
        default=None, ge=0, le=1, description="None: attribution is informational and never fails"
    )
    attribution_min_confidence: float = Field(default=0.5, ge=0, le=1)
    # smoke
    smoke: SmokeLimits = SmokeLimits()


def _plain_json(value: Any) -> Any:
    """``value`` as plain JSON data (tuples become lists); NaN/infinity are refused."""
    return json.loads(json.dumps(value, allow_nan=False))


def _finding_sort_key(finding: dict[str, Any]) -> tuple[str, int, int, bytes]:
    def as_int(value: Any) -> int:
        return value if isinstance(value, int) and not isinstance(value, bool) else 0

    return (
        str(finding.get("file", finding.get("path", ""))),
        as_int(finding.get("line")),
        as_int(finding.get("column")),
        rfc8785.dumps(finding),
    )


class ValidationResult(BaseModel):
    """The outcome of one validator on one package. Build it with :meth:`build`.

    ``digest`` covers ``validator``, ``passed``, ``reasons``, ``findings`` and ``stats``;
    ``observations`` (timings and other run-to-run noise) is deliberately left out. An instance
    whose ``digest`` does not match its content cannot be constructed, also when it is read
    back from storage with ``model_validate``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    validator: str = Field(min_length=1, max_length=64)
    passed: bool
    reasons: list[str]
    findings: list[dict[str, Any]]
    stats: dict[str, Any]
    digest: str = Field(pattern=r"^[0-9a-f]{64}$")
    observations: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def build(
        cls,
        validator: str,
        *,
        passed: bool,
        reasons: list[str],
        findings: list[dict[str, Any]] | None = None,
        stats: dict[str, Any] | None = None,
        observations: dict[str, Any] | None = None,
    ) -> ValidationResult:
        """Normalise (plain JSON, sorted findings, de-duplicated reasons) and seal with the digest.

        Only the first :data:`MAX_FINDINGS` findings (in sorted order) are kept; how many were
        left out is then recorded as ``stats["findings_omitted"]``.
        """
        plain_findings = [_plain_json(f) for f in findings or []]
        plain_findings.sort(key=_finding_sort_key)
        plain_stats = _plain_json(stats or {})
        if len(plain_findings) > MAX_FINDINGS:
            plain_stats["findings_omitted"] = len(plain_findings) - MAX_FINDINGS
            del plain_findings[MAX_FINDINGS:]
        payload: dict[str, Any] = {
            "validator": validator,
            "passed": passed,
            "reasons": list(dict.fromkeys(reasons)),
            "findings": plain_findings,
            "stats": plain_stats,
        }
        digest = hashlib.sha256(rfc8785.dumps(payload)).hexdigest()
        return cls(**payload, digest=digest, observations=_plain_json(observations or {}))

    def digest_payload(self) -> dict[str, Any]:
        """The part of the result the digest covers."""
        return {
            "validator": self.validator,
            "passed": self.passed,
            "reasons": self.reasons,
            "findings": self.findings,
            "stats": self.stats,
        }

    def compute_digest(self) -> str:
        """SHA-256 (hex) of the RFC 8785 canonical JSON of :meth:`digest_payload`."""
        return hashlib.sha256(rfc8785.dumps(self.digest_payload())).hexdigest()

    @model_validator(mode="after")
    def _digest_matches(self) -> ValidationResult:
        if self.digest != self.compute_digest():
            raise ValueError("digest does not match the result's content")
        return self
