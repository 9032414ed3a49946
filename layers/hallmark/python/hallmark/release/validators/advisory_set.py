"""The OSV advisory set dependency vetting reads, and the versions it compares: PyPI versions with
``packaging.version``, npm versions with semver 2.0 (see :mod:`.security` for the policy).

OSV evaluation follows the OSV schema: ``affected[].versions`` lists affected versions, and
the ``events`` of ``ECOSYSTEM``/``SEMVER`` ranges are applied in version order
(``introduced`` starts, ``fixed`` ends, ``last_affected`` ends after; ``GIT`` ranges are
ignored)."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import total_ordering
from pathlib import Path
from typing import Any, Final, Protocol

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from hallmark.release.validators.model import ValidatorConfig

PYPI: Final = "PyPI"
NPM: Final = "npm"

# ----------------------------------------------------------------------------- versions


SEMVER = re.compile(
    r"^v?(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?(?:\+[0-9A-Za-z.-]+)?$"
)


@total_ordering
class SemVer:
    """A semver 2.0 version with its precedence (build metadata ignored)."""

    def __init__(self, text: str) -> None:
        m = SEMVER.match(text.strip())
        if m is None:
            raise ValueError(f"not a semver version: {text!r}")
        self.text = text
        self.core = (int(m.group(1)), int(m.group(2)), int(m.group(3)))
        pre = m.group(4)
        self.pre: tuple[tuple[int, int, str], ...] | None = (
            tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in pre.split(".")) if pre else None
        )

    def _key(self) -> tuple[tuple[int, int, int], int, tuple[tuple[int, int, str], ...]]:
        return (self.core, 1, ()) if self.pre is None else (self.core, 0, self.pre)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SemVer) and self._key() == other._key()

    def __lt__(self, other: SemVer) -> bool:
        return self._key() < other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return f"SemVer({self.text!r})"


def parse_version(ecosystem: str, text: str) -> Any | None:
    """A comparable version, or None when the text is not a version of that ecosystem."""
    try:
        if ecosystem == PYPI:
            return Version(text)
        if text == "0":
            return SemVer("0.0.0-0")  # OSV's "since the beginning"
        return SemVer(text)
    except (InvalidVersion, ValueError):
        return None


def normalise_name(ecosystem: str, name: str) -> str:
    return str(canonicalize_name(name)) if ecosystem == PYPI else name.strip()


# ----------------------------------------------------------------------------- advisories


@dataclass(frozen=True, slots=True)
class _Affected:
    advisory_id: str
    ecosystem: str
    name: str
    ranges: tuple[tuple[tuple[str, str], ...], ...]  # per range: its (kind, version) events
    versions: tuple[str, ...]

    def fixed_versions(self) -> list[str]:
        return sorted({v for events in self.ranges for kind, v in events if kind == "fixed"})

    def affects(self, version: Any) -> bool:
        for listed in self.versions:
            if parse_version(self.ecosystem, listed) == version:
                return True
        return any(self._in_range(version, events) for events in self.ranges)

    def _in_range(self, version: Any, events: tuple[tuple[str, str], ...]) -> bool:
        parsed: list[tuple[Any, int, str]] = []
        for kind, text in events:
            v = parse_version(self.ecosystem, text)
            if v is None:
                continue
            parsed.append((v, {"introduced": 0, "fixed": 1, "last_affected": 2, "limit": 3}[kind], kind))
        parsed.sort(key=lambda item: (item[0], item[1]))
        affected = False
        for v, _, kind in parsed:
            if kind == "introduced" and version >= v:
                affected = True
            elif (kind == "fixed" and version >= v) or (kind == "last_affected" and version > v):
                affected = False
        limits = [v for v, _, kind in parsed if kind == "limit"]
        return affected and not any(version >= limit for limit in limits)

    def candidate_versions(self) -> list[Any]:
        texts = [v for events in self.ranges for kind, v in events if kind in ("introduced", "last_affected")]
        texts += list(self.versions)
        return [p for t in texts if (p := parse_version(self.ecosystem, t)) is not None]


class AdvisorySetUnavailable(Exception):
    """No usable advisory set; the message is the reason the validator reports."""


class AdvisorySource(Protocol):
    """Where the validator gets its advisory set (``hallmark.release.advisories.CurrentAdvisorySet``)."""

    def current(self) -> AdvisorySet:
        """The set to vet against; raises :class:`AdvisorySetUnavailable` with the reason."""
        ...


class AdvisorySet:
    """OSV records indexed by (ecosystem, normalised package name), with the set's identity."""

    def __init__(
        self,
        records: Iterable[dict[str, Any]],
        sha256: str | None = None,
        *,
        version: int | str | None = None,
        fetched_at: str | None = None,
        source: str | None = None,
    ) -> None:
        self.sha256 = sha256
        self.version = version
        self.fetched_at = fetched_at
        self.source = source
        self.count = 0
        self._index: dict[tuple[str, str], list[_Affected]] = {}
        for record in records:
            if not isinstance(record, dict) or record.get("withdrawn"):
                continue
            self.count += 1
            advisory_id = str(record.get("id", ""))
            for affected in record.get("affected") or []:
                package = affected.get("package") or {}
                ecosystem = package.get("ecosystem")
                name = package.get("name")
                if ecosystem not in (PYPI, NPM) or not isinstance(name, str):
                    continue
                ranges = []
                for rng in affected.get("ranges") or []:
                    if rng.get("type") not in ("ECOSYSTEM", "SEMVER"):
                        continue
                    events = tuple(
                        (kind, str(event[kind]))
                        for event in rng.get("events") or []
                        for kind in ("introduced", "fixed", "last_affected", "limit")
                        if kind in event
                    )
                    ranges.append(events)
                item = _Affected(
                    advisory_id,
                    ecosystem,
                    normalise_name(ecosystem, name),
                    tuple(ranges),
                    tuple(str(v) for v in affected.get("versions") or []),
                )
                self._index.setdefault((ecosystem, item.name), []).append(item)

    def for_package(self, ecosystem: str, name: str) -> list[_Affected]:
        return self._index.get((ecosystem, normalise_name(ecosystem, name)), [])


def load_advisories(path: str | Path) -> AdvisorySet:
    """Read an OSV advisory set file: a JSON list of records, ``{"vulns": [...]}`` or a synced
    set document (``{"records": [...]}``). Its version is ``file:<sha256 prefix>``.

    Raises ``OSError``/``ValueError`` when it cannot be read or has the wrong shape.
    """
    raw = Path(path).read_bytes()
    data = json.loads(raw)
    for key in ("vulns", "records"):
        if isinstance(data, dict) and isinstance(data.get(key), list):
            data = data[key]
    if not isinstance(data, list):
        raise ValueError("an OSV advisory set is a JSON list of records")
    digest = hashlib.sha256(raw).hexdigest()
    return AdvisorySet(data, digest, version=f"file:{digest[:12]}", source=f"file:{Path(path).name}")


def current_advisories(config: ValidatorConfig) -> tuple[AdvisorySet, str | None]:
    """The set to vet against, or an empty one and the reason the validator fails closed."""
    source: AdvisorySource | None = config.advisory_source
    if source is not None:
        try:
            return source.current(), None
        except AdvisorySetUnavailable as exc:
            return AdvisorySet([]), str(exc)
        except Exception as exc:  # a store that cannot be read: fail closed, say what broke
            return AdvisorySet([]), f"advisory set could not be read: {type(exc).__name__}: dependency vetting cannot run"
    if config.advisory_path is not None:
        try:
            return load_advisories(config.advisory_path), None
        except (OSError, ValueError) as exc:
            return AdvisorySet([]), (
                f"advisory set {config.advisory_path!r} could not be loaded: {type(exc).__name__}: "
                "dependency vetting cannot run"
            )
    return AdvisorySet([]), "no advisory set: dependency vetting cannot run"

