"""Security: dependency vetting against an OSV advisory set, and a secret scan.

Every file is read, in the package and in the archives nested in it (paths such as
``vendor/bundle.zip!/requirements.txt``; see :class:`~hallmark.release.validators.archive.FileWalk`),
in any encoding :mod:`._text` detects, large files whole (in overlapping windows).

Dependency manifests (``node_modules/`` is ignored: npm reads nothing there):

* PyPI: ``requirements*.txt`` / ``constraints*.txt`` / ``requirements*.in`` (and ``*.txt`` under
  a ``requirements/`` folder); ``pyproject.toml`` (``[project].dependencies``,
  ``[project.optional-dependencies]``, ``[dependency-groups]``, poetry's
  ``[tool.poetry.dependencies]``, ``dev-dependencies`` and groups, poetry constraints such as
  ``^1.2`` turned into PEP 440); ``Pipfile``; lock files ``poetry.lock``, ``uv.lock``,
  ``Pipfile.lock``;
* npm: ``package.json`` (``dependencies``, ``devDependencies``, ``optionalDependencies``,
  ``peerDependencies``; ranges in npm's syntax, evaluated with ``nodesemver``: ``^ ~ >= <``,
  x-ranges, hyphen ranges, ``||``, aliases ``npm:name@range``); lock files
  ``package-lock.json`` / ``npm-shrinkwrap.json`` (v2/v3 ``packages``, v1 ``dependencies``) and
  ``yarn.lock`` (classic and berry).

When a lock file sits beside a manifest, the manifest's ranges for the packages it locks are
left to it: the locked versions are what gets installed, and they are vetted as exact versions.
git, path and URL dependencies are counted (``non_registry``), not vetted.

Policy:

* an exact version (``==`` pin, an exact npm version, or any lock-file entry) that an advisory
  affects fails the validator (``vulnerable-dependency``);
* a range (or no version at all) that *admits* an affected version is reported as
  ``vulnerable-range``; it fails only with ``fail_on_vulnerable_range``. "Admits" is decided
  on the candidate versions we can name: the range's own lower bounds (for npm, each
  comparator set's least admitted version) and the advisory's ``introduced``/``last_affected``
  events and explicit ``versions``: where a range and an affected interval meet, the larger
  of their lower bounds is one of those;
* environment markers are not evaluated: every listed dependency counts;
* the advisory set comes from ``config.advisory_source`` (deployed: the synced set in the
  packages bucket, see ``hallmark.release.advisories``) or, offline, ``config.advisory_path``
  (a JSON file). With neither, or a source that refuses (no set, a stale one, one failing
  its integrity check), or a file that cannot be read, the validator **fails closed** with
  the reason: dependency vetting that cannot run never passes. The set's version and sha256
  are in the result's stats, so its digest says which set a package was vetted against.

OSV evaluation follows the OSV schema: ``affected[].versions`` lists affected versions, and
the ``events`` of ``ECOSYSTEM``/``SEMVER`` ranges are applied in version order
(``introduced`` starts, ``fixed`` ends, ``last_affected`` ends after; ``GIT`` ranges are
ignored). PyPI versions compare with ``packaging.version``, npm versions with semver 2.0.

Secrets: AWS access key ids, AWS secret access keys next to an ``aws..secret`` name, PEM
private keys, GitHub and Slack tokens, and high-entropy values assigned to names such as
``password``/``secret``/``token``/``api_key``. Binary data is searched too, in its printable
strings, with the precise rules only (no entropy heuristics). Findings carry file, line, column
and rule, never the value. Any secret fails the validator, and so does a scan that could not
cover the whole package (a bound of the walk, an unreadable member).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import tomllib
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import total_ordering
from pathlib import Path
from typing import Any, Final, Protocol

import nodesemver
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from hallmark.release.validators._text import (
    LineIndex,
    ScanStats,
    TextFile,
    ascii_lower,
    iter_text_files,
    lines_containing,
)
from hallmark.release.validators.archive import PackageView
from hallmark.release.validators.model import ValidationResult, ValidatorConfig

__all__ = [
    "AdvisorySet",
    "AdvisorySetUnavailable",
    "AdvisorySource",
    "Dependency",
    "SemVer",
    "find_secrets",
    "load_advisories",
    "parse_package_lock",
    "parse_pyproject",
    "parse_requirements",
    "validate_security",
]

PYPI: Final = "PyPI"
_MAX_REASONS: Final = 20
NPM: Final = "npm"

# ----------------------------------------------------------------------------- versions


_SEMVER = re.compile(
    r"^v?(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?(?:\+[0-9A-Za-z.-]+)?$"
)


@total_ordering
class SemVer:
    """A semver 2.0 version with its precedence (build metadata ignored)."""

    def __init__(self, text: str) -> None:
        m = _SEMVER.match(text.strip())
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


def _parse_version(ecosystem: str, text: str) -> Any | None:
    """A comparable version, or None when the text is not a version of that ecosystem."""
    try:
        if ecosystem == PYPI:
            return Version(text)
        if text == "0":
            return SemVer("0.0.0-0")  # OSV's "since the beginning"
        return SemVer(text)
    except (InvalidVersion, ValueError):
        return None


def _normalise_name(ecosystem: str, name: str) -> str:
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
            if _parse_version(self.ecosystem, listed) == version:
                return True
        return any(self._in_range(version, events) for events in self.ranges)

    def _in_range(self, version: Any, events: tuple[tuple[str, str], ...]) -> bool:
        parsed: list[tuple[Any, int, str]] = []
        for kind, text in events:
            v = _parse_version(self.ecosystem, text)
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
        return [p for t in texts if (p := _parse_version(self.ecosystem, t)) is not None]


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
                    _normalise_name(ecosystem, name),
                    tuple(ranges),
                    tuple(str(v) for v in affected.get("versions") or []),
                )
                self._index.setdefault((ecosystem, item.name), []).append(item)

    def for_package(self, ecosystem: str, name: str) -> list[_Affected]:
        return self._index.get((ecosystem, _normalise_name(ecosystem, name)), [])


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


def _current_advisories(config: ValidatorConfig) -> tuple[AdvisorySet, str | None]:
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


# ----------------------------------------------------------------------------- dependencies


@dataclass(frozen=True, slots=True)
class Dependency:
    ecosystem: str
    name: str
    file: str
    line: int
    version: str | None = None  # the exact version when pinned or locked
    specifier: str = ""  # PyPI: PEP 440 specifiers; npm: an npm range ("" = anything)
    source: str = "registry"  # "non-registry": git, path, url: not vetted against advisories


def _exact_pin(spec: SpecifierSet) -> str | None:
    items = list(spec)
    if len(items) == 1 and items[0].operator in ("==", "===") and not items[0].version.endswith(".*"):
        return items[0].version
    return None


def _requirement(text: str, file: str, line: int) -> Dependency | None:
    try:
        req = Requirement(text)
    except InvalidRequirement:
        return None
    if req.url:
        return Dependency(PYPI, req.name, file, line, None, "")
    return Dependency(PYPI, req.name, file, line, _exact_pin(req.specifier), str(req.specifier))


_OPTION_TAIL = re.compile(r"\s+--?[A-Za-z].*$")


def parse_requirements(text: str, file: str) -> tuple[list[Dependency], int]:
    """Dependencies of a pip requirements file, and the number of lines that were not understood."""
    deps: list[Dependency] = []
    unparsed = 0
    logical = ""
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        if not logical:
            start = number
        if raw.endswith("\\"):
            logical += raw[:-1] + " "
            continue
        logical += raw
        line, logical = logical, ""
        line = re.sub(r"(^|\s)#.*$", "", line).strip()
        if not line or line.startswith("-"):
            continue  # options: -r, -c, -e, --index-url, ...
        line = _OPTION_TAIL.sub("", line)  # per-requirement options such as --hash
        dep = _requirement(line, file, start)
        if dep is None:
            unparsed += 1
        else:
            deps.append(dep)
    return deps, unparsed


def _line_of(text: str, needle: str, index: LineIndex) -> int:
    pos = text.find(needle)
    return index.locate(pos)[0] if pos >= 0 else 0


def _npm_name_from_key(key: str) -> str:
    return key.rsplit("node_modules/", 1)[-1]


def parse_package_lock(text: str, file: str) -> tuple[list[Dependency], int]:
    """Locked npm packages of a ``package-lock.json`` (v1, v2, v3)."""
    doc = _json_object(text)
    if doc is None:
        return [], 1
    index = LineIndex(text)
    found: dict[tuple[str, str], Dependency] = {}
    unparsed = 0
    packages = doc.get("packages")
    if isinstance(packages, dict):
        for key, value in packages.items():
            if not key or not isinstance(value, dict) or value.get("link") or "node_modules/" not in key:
                continue
            alias = value.get("name")
            name = alias if isinstance(alias, str) else _npm_name_from_key(key)
            version = value.get("version")
            if not isinstance(version, str) or _parse_version(NPM, version) is None:
                unparsed += 1
                continue
            line = _line_of(text, json.dumps(key), index)
            found.setdefault((name, version), Dependency(NPM, name, file, line, version))
    else:

        def walk(deps: Any) -> Iterator[tuple[str, str]]:
            if not isinstance(deps, dict):
                return
            for name, value in deps.items():
                if isinstance(value, dict):
                    if isinstance(value.get("version"), str):
                        yield name, value["version"]
                    yield from walk(value.get("dependencies"))

        for name, version in walk(doc.get("dependencies")):
            if _parse_version(NPM, version) is None:
                unparsed += 1
                continue
            line = _line_of(text, json.dumps(name) + ":", index)
            found.setdefault((name, version), Dependency(NPM, name, file, line, version))
    return list(found.values()), unparsed


def _json_object(text: str) -> dict[str, Any] | None:
    """A JSON manifest or lock file's top-level object (None if it is not one)."""
    try:
        doc = json.loads(text)
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None


def _toml(text: str) -> dict[str, Any] | None:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return None


def _table(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


# ---- poetry constraints (pyproject [tool.poetry], Pipfile) -> PEP 440


def _release_parts(text: str) -> list[int] | None:
    parts = text.split(".")
    if not all(p.isdigit() for p in parts) or not 1 <= len(parts) <= 4:
        return None
    return [int(p) for p in parts]


def _poetry_clause(clause: str) -> str | None:
    """One poetry constraint clause (``^1.2``, ``~1.2.3``, ``1.2.*``, ``>=1,<2``, ``1.2.3``) as PEP 440."""
    clause = clause.strip()
    if clause in ("", "*"):
        return ""
    if clause[0] in "^~" and not clause.startswith("~="):
        op, rest = clause[0], clause[1:].strip()
        parts = _release_parts(rest)
        if parts is None:
            try:
                Version(rest)
            except InvalidVersion:
                return None
            return f">={rest}"
        if op == "^":
            first = next((i for i, p in enumerate(parts) if p != 0), len(parts) - 1)
        else:
            first = 0 if len(parts) == 1 else 1
        upper = parts[: first + 1]
        upper[-1] += 1
        return f">={rest},<{'.'.join(map(str, upper))}"
    items = []
    for item in clause.split(","):
        item = item.strip()
        if not item:
            continue
        if item[0].isdigit() or item[0] == "*":
            item = "==" + item
        items.append(item)
    spec = ",".join(items)
    try:
        SpecifierSet(spec)
    except InvalidSpecifier:
        return None
    return spec


def poetry_to_pep440(constraint: str) -> list[str] | None:
    """A poetry/Pipfile version constraint as PEP 440 specifier sets, one per ``||`` alternative."""
    out = []
    for alternative in constraint.split("||"):
        spec = _poetry_clause(alternative)
        if spec is None:
            return None
        out.append(spec)
    return out


def _poetry_dependency(name: str, value: Any, file: str, line: int) -> tuple[list[Dependency], int]:
    if name.lower() == "python":
        return [], 0
    if isinstance(value, list):  # multiple-constraint dependencies
        deps: list[Dependency] = []
        bad = 0
        for item in value:
            found, miss = _poetry_dependency(name, item, file, line)
            deps += found
            bad += miss
        return deps, bad
    if isinstance(value, dict):
        if any(k in value for k in ("git", "path", "url", "file")):
            return [Dependency(PYPI, name, file, line, None, "", source="non-registry")], 0
        value = value.get("version", "*")
    if not isinstance(value, str):
        return [], 1
    specs = poetry_to_pep440(value)
    if specs is None:
        return [], 1
    deps = []
    for spec in specs:
        pin = _exact_pin(SpecifierSet(spec)) if len(specs) == 1 else None
        deps.append(Dependency(PYPI, name, file, line, pin, spec))
    return deps, 0


def parse_pyproject(text: str, file: str) -> tuple[list[Dependency], int]:
    """Dependencies of a ``pyproject.toml``: PEP 621 (``[project]``), PEP 735 (``[dependency-groups]``)
    and poetry (``[tool.poetry.*dependencies]`` and its groups)."""
    doc = _toml(text)
    if doc is None:
        return [], 1
    strings: list[str] = []
    project = _table(doc.get("project"))
    strings += [s for s in project.get("dependencies") or [] if isinstance(s, str)]
    for group in _table(project.get("optional-dependencies")).values():
        strings += [s for s in group or [] if isinstance(s, str)]
    for group in _table(doc.get("dependency-groups")).values():
        strings += [s for s in group or [] if isinstance(s, str)]
    index = LineIndex(text)
    deps, unparsed = [], 0
    for item in strings:
        dep = _requirement(item, file, _line_of(text, item, index))
        if dep is None:
            unparsed += 1
        else:
            deps.append(dep)
    poetry = _table(_table(doc.get("tool")).get("poetry"))
    tables = [_table(poetry.get("dependencies")), _table(poetry.get("dev-dependencies"))]
    tables += [_table(_table(g).get("dependencies")) for g in _table(poetry.get("group")).values()]
    for table in tables:
        for name, value in table.items():
            found, bad = _poetry_dependency(name, value, file, _line_of(text, name, index))
            deps += found
            unparsed += bad
    return deps, unparsed


def parse_pipfile(text: str, file: str) -> tuple[list[Dependency], int]:
    """Dependencies of a ``Pipfile`` (``[packages]``, ``[dev-packages]``)."""
    doc = _toml(text)
    if doc is None:
        return [], 1
    index = LineIndex(text)
    deps: list[Dependency] = []
    unparsed = 0
    for section in ("packages", "dev-packages"):
        for name, value in _table(doc.get(section)).items():
            found, bad = _poetry_dependency(name, value, file, _line_of(text, name, index))
            deps += found
            unparsed += bad
    return deps, unparsed


def _locked(name: Any, version: Any, file: str, line: int) -> Dependency | None:
    if not isinstance(name, str) or not isinstance(version, str):
        return None
    version = version.removeprefix("==")
    if _parse_version(PYPI, version) is None:
        return None
    return Dependency(PYPI, name, file, line, version, f"=={version}")


def parse_python_lock(text: str, file: str) -> tuple[list[Dependency], int]:
    """Locked packages of a ``poetry.lock`` or ``uv.lock`` (``[[package]]`` name and version; the
    project itself, an editable or virtual source, is not a dependency)."""
    doc = _toml(text)
    if doc is None:
        return [], 1
    index = LineIndex(text)
    deps: list[Dependency] = []
    unparsed = 0
    for package in doc.get("package") or []:
        if not isinstance(package, dict):
            unparsed += 1
            continue
        source = _table(package.get("source"))
        if any(k in source for k in ("editable", "virtual")):
            continue
        name = package.get("name")
        line = _line_of(text, f'name = "{name}"', index)
        if source.get("type") in ("git", "directory", "file", "url") or any(
            k in source for k in ("git", "path", "directory", "url")
        ):
            if isinstance(name, str):
                deps.append(Dependency(PYPI, name, file, line, None, "", source="non-registry"))
            continue
        dep = _locked(name, package.get("version"), file, line)
        if dep is None:
            unparsed += 1
        else:
            deps.append(dep)
    return deps, unparsed


def parse_pipfile_lock(text: str, file: str) -> tuple[list[Dependency], int]:
    """Locked packages of a ``Pipfile.lock`` (``default`` and ``develop``)."""
    doc = _json_object(text)
    if doc is None:
        return [], 1
    index = LineIndex(text)
    deps: list[Dependency] = []
    unparsed = 0
    for section in ("default", "develop"):
        for name, value in _table(doc.get(section)).items():
            value = _table(value)
            if "version" not in value:
                deps.append(Dependency(PYPI, name, file, _line_of(text, json.dumps(name), index), None, "",
                                       source="non-registry"))
                continue
            dep = _locked(name, value.get("version"), file, _line_of(text, json.dumps(name), index))
            if dep is None:
                unparsed += 1
            else:
                deps.append(dep)
    return deps, unparsed


# ---- npm package.json

_NPM_SECTIONS: Final = ("dependencies", "devDependencies", "optionalDependencies", "peerDependencies")
_NPM_NON_REGISTRY = re.compile(r"^(?:[a-z+]+:|\.{1,2}/|~/|/|[\w.-]+/[\w.-]+(?:#.*)?$)", re.IGNORECASE)


def _npm_range(spec: str) -> Any | None:
    try:
        return nodesemver.make_range(spec.strip() or "*", loose=True)
    except (ValueError, TypeError, AttributeError, IndexError):
        return None


def _npm_exact(spec: str) -> str | None:
    """The version when ``spec`` names exactly one version (``4.17.20``, ``=4.17.20``, ``v4.17.20``)."""
    text = spec.strip().lstrip("=").strip()
    text = text[1:] if text[:1] in ("v", "V") else text
    return text if _SEMVER.match(text) else None


def parse_package_json(text: str, file: str) -> tuple[list[Dependency], int]:
    """Dependencies of a ``package.json`` (dependencies, devDependencies, optionalDependencies,
    peerDependencies): exact versions are pins, everything else an npm range; aliases
    (``npm:name@range``) count as the aliased package; git/file/url/workspace specs are not from
    the registry and are counted, not vetted."""
    doc = _json_object(text)
    if doc is None:
        return [], 1
    index = LineIndex(text)
    deps: list[Dependency] = []
    unparsed = 0
    for section in _NPM_SECTIONS:
        for name, spec in _table(doc.get(section)).items():
            line = _line_of(text, json.dumps(name) + ":", index) or _line_of(text, json.dumps(name), index)
            if not isinstance(spec, str):
                unparsed += 1
                continue
            spec = spec.strip()
            if spec.startswith("npm:"):
                alias = spec[4:]
                at = alias.rfind("@")
                name, spec = (alias[:at], alias[at + 1 :]) if at > 0 else (alias, "*")
            if spec == "latest" or spec == "":
                spec = "*"
            if _NPM_NON_REGISTRY.match(spec):
                deps.append(Dependency(NPM, name, file, line, None, spec, source="non-registry"))
                continue
            if _npm_range(spec) is None:
                unparsed += 1
                continue
            deps.append(Dependency(NPM, name, file, line, _npm_exact(spec), spec))
    return deps, unparsed


_YARN_HEADER = re.compile(r"^(\S[^\n]*):\s*$")
_YARN_VERSION = re.compile(r"^\s+version:?\s+\"?([^\"\s]+)\"?\s*$")


def _yarn_name(header: str) -> str | None:
    """The package a yarn.lock entry header names (``"lodash@^4.17.0", lodash@~4.17.1`` -> lodash)."""
    first = header.split(",")[0].strip().strip('"').strip("'")
    at = first.find("@", 1)  # a scoped name starts with "@"
    if at < 0:
        return None
    return first[:at]


def parse_yarn_lock(text: str, file: str) -> tuple[list[Dependency], int]:
    """Locked packages of a ``yarn.lock`` (classic v1 and berry): each entry's name and version;
    workspace and link entries are the project's own, not dependencies."""
    deps: dict[tuple[str, str], Dependency] = {}
    unparsed = 0
    name: str | None = None
    header = ""
    start = 0
    for number, line in enumerate(text.splitlines(), start=1):
        if not line or line.lstrip().startswith("#"):
            continue
        if not line[0].isspace():
            m = _YARN_HEADER.match(line)
            header = m.group(1) if m else ""
            name = _yarn_name(header) if m and header != "__metadata" else None
            start = number
            continue
        m = _YARN_VERSION.match(line)
        if m is None or name is None or line.startswith("    "):
            continue
        if any(tag in header for tag in ("@workspace:", "@link:", "@portal:", "@file:", "@patch:")):
            name = None
            continue
        version = m.group(1)
        if _parse_version(NPM, version) is None:
            unparsed += 1
        else:
            deps.setdefault((name, version), Dependency(NPM, name, file, start, version))
        name = None
    return list(deps.values()), unparsed


_REQUIREMENTS_NAME = re.compile(r"^(?:requirements|constraints)[\w.-]*\.(?:txt|in)$", re.IGNORECASE)
_LOCK_KINDS: Final = frozenset({"package-lock", "yarn-lock", "python-lock", "pipfile-lock"})


def _manifest_kind(path: str) -> str | None:
    parts = path.split("/")
    base = parts[-1]
    if "node_modules" in parts:
        return None  # npm reads no manifest under node_modules; the lock file lists those packages
    if _REQUIREMENTS_NAME.match(base) or (
        len(parts) > 1 and parts[-2] == "requirements" and base.endswith(".txt")
    ):
        return "requirements"
    return {
        "pyproject.toml": "pyproject",
        "package-lock.json": "package-lock",
        "npm-shrinkwrap.json": "package-lock",
        "package.json": "package-json",
        "yarn.lock": "yarn-lock",
        "poetry.lock": "python-lock",
        "uv.lock": "python-lock",
        "Pipfile": "pipfile",
        "Pipfile.lock": "pipfile-lock",
    }.get(base)


_PARSERS = {
    "requirements": parse_requirements,
    "pyproject": parse_pyproject,
    "package-lock": parse_package_lock,
    "package-json": parse_package_json,
    "yarn-lock": parse_yarn_lock,
    "python-lock": parse_python_lock,
    "pipfile": parse_pipfile,
    "pipfile-lock": parse_pipfile_lock,
}


def _folder(path: str) -> str:
    return path.rsplit("/", 1)[0] if "/" in path else ""


def _resolve_locked(deps: list[Dependency]) -> list[Dependency]:
    """Ranges of a manifest whose folder holds a lock file that locks the same package are left to
    the lock file (its exact versions are what gets installed, and they are vetted)."""
    locked = {
        (_folder(d.file), d.ecosystem, _normalise_name(d.ecosystem, d.name))
        for d in deps
        if _manifest_kind(d.file) in _LOCK_KINDS and d.version is not None
    }
    return [
        d
        for d in deps
        if d.version is not None
        or _manifest_kind(d.file) in _LOCK_KINDS
        or (_folder(d.file), d.ecosystem, _normalise_name(d.ecosystem, d.name)) not in locked
    ]


def _npm_candidates(rng: Any) -> list[Any]:
    """Versions at which an npm range can first meet an affected interval: each comparator set's
    least admitted version (its lower bound, or 0.0.0)."""
    out = []
    for comparators in rng.set:
        lowest = SemVer("0.0.0")
        for c in comparators:
            if c.semver is nodesemver.ANY or c.operator in ("<", "<="):
                continue
            try:
                v = SemVer(str(c.semver))
            except ValueError:
                continue
            if c.operator == ">":
                v = SemVer(f"{v.core[0]}.{v.core[1]}.{v.core[2] + 1}") if v.pre is None else v
            lowest = max(lowest, v)
        out.append(lowest)
    return out


def _npm_admits(rng: Any, version: Any) -> bool:
    try:
        return bool(rng.test(nodesemver.make_semver(version.text, loose=True)))
    except (ValueError, TypeError, AttributeError):
        return False


def _vet(dep: Dependency, advisories: AdvisorySet) -> list[dict[str, Any]]:
    findings: list[dict[str, Any]] = []
    if dep.source == "non-registry":
        return findings
    for affected in advisories.for_package(dep.ecosystem, dep.name):
        base = {
            "file": dep.file,
            "line": dep.line,
            "ecosystem": dep.ecosystem,
            "package": dep.name,
            "advisory": affected.advisory_id,
            "fixed": affected.fixed_versions(),
        }
        if dep.version is not None:
            version = _parse_version(dep.ecosystem, dep.version)
            if version is not None and affected.affects(version):
                findings.append({**base, "rule": "vulnerable-dependency", "version": dep.version})
            continue
        candidates = list(affected.candidate_versions())
        if dep.ecosystem == NPM:
            rng = _npm_range(dep.specifier)
            if rng is None:
                continue
            candidates += _npm_candidates(rng)
            candidates += [SemVer(f"{c.core[0]}.{c.core[1]}.{c.core[2]}") for c in list(candidates) if c.pre]
            admitted = any(_npm_admits(rng, c) and affected.affects(c) for c in candidates)
        else:
            try:
                spec = SpecifierSet(dep.specifier)
            except InvalidSpecifier:
                continue
            for item in spec:
                if item.operator in (">=", "~=", "==", "===", ">") and not item.version.endswith(".*"):
                    parsed = _parse_version(PYPI, item.version)
                    if parsed is not None:
                        candidates.append(parsed)
                        if item.operator == ">":
                            candidates.append(Version(f"{parsed.base_version}.post0"))
                            rel = list(parsed.release) + [0] * (3 - len(parsed.release))
                            candidates.append(Version(".".join(map(str, [*rel[:-1], rel[-1] + 1]))))
                elif item.operator == "==" and item.version.endswith(".*"):
                    parsed = _parse_version(PYPI, item.version[:-2])
                    if parsed is not None:
                        candidates.append(parsed)
            if not any(item.operator in (">=", "~=", "==", "===", ">") for item in spec):
                candidates.append(Version("0"))
            admitted = any(spec.contains(str(c), prereleases=True) and affected.affects(c) for c in candidates)
        if admitted:
            findings.append({**base, "rule": "vulnerable-range", "specifier": dep.specifier or "*"})
    return findings


# ----------------------------------------------------------------------------- secrets


@dataclass(frozen=True, slots=True)
class _Rule:
    name: str
    pattern: re.Pattern[str]
    needles: tuple[str, ...]  # only lines holding one of these are matched (fast ``str.find``)
    group: int = 0  # the group holding the secret value
    lowered: bool = False  # needles are lower case, searched in the ASCII-lowered text


_RULES: Final[tuple[_Rule, ...]] = (
    _Rule(
        "aws-access-key-id",
        re.compile(r"(?<![A-Z0-9])((?:AKIA|ASIA)[A-Z0-9]{16})(?![A-Z0-9])"),
        ("AKIA", "ASIA"),
        1,
    ),
    _Rule(
        "aws-secret-access-key",
        re.compile(
            r"(?i)aws[\w.-]{0,20}?secret[\w.-]{0,20}['\"]?\s*[:=]>?\s*['\"]?([A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])"
        ),
        ("secret",),
        1,
        lowered=True,
    ),
    _Rule(
        "private-key",
        re.compile(r"-----BEGIN (?:RSA |EC |DSA |OPENSSH |ENCRYPTED |PGP )?PRIVATE KEY(?: BLOCK)?-----"),
        ("PRIVATE KEY",),
    ),
    _Rule(
        "github-token",
        re.compile(r"\b((?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36})\b"),
        ("ghp_", "gho_", "ghu_", "ghs_", "ghr_"),
        1,
    ),
    _Rule("github-token", re.compile(r"\b(github_pat_[A-Za-z0-9_]{60,100})\b"), ("github_pat_",), 1),
    _Rule("slack-token", re.compile(r"\b(xox[abposr]-[A-Za-z0-9-]{10,})"), ("xox",), 1),
    _Rule(
        "slack-webhook",
        re.compile(r"(https://hooks\.slack\.com/services/T[A-Z0-9]+/B[A-Z0-9]+/[A-Za-z0-9]+)"),
        ("hooks.slack.com",),
        1,
    ),
    _Rule(
        "high-entropy-assignment",
        re.compile(
            r"(?i)(?<![A-Za-z0-9_.-])([A-Za-z0-9_.-]*(?:password|passwd|pwd|secret|token|api[_-]?key|apikey"
            r"|access[_-]?key|private[_-]?key|credentials?)[A-Za-z0-9_.-]*)['\"]?\s*(?::=|=>|[:=])\s*"
            r"(['\"]?)([A-Za-z0-9+/=_\-.~!@#?$%^&*]{12,})\2"
        ),
        ("password", "passwd", "pwd", "secret", "token", "key", "credential"),
        3,
        lowered=True,
    ),
)
_PLACEHOLDER = re.compile(r"(?i)example|changeme|placeholder|your[_-]|xxxx|dummy|redacted|\*\*\*|<|\$\{|\{\{")


def shannon_entropy(value: str) -> float:
    """Shannon entropy of ``value`` in bits per character."""
    if not value:
        return 0.0
    counts = Counter(value)
    n = len(value)
    return -sum(c / n * math.log2(c / n) for c in counts.values())


#: rules precise enough to run on the printable strings of binary data
_BINARY_RULES: Final = frozenset({"aws-access-key-id", "private-key", "github-token", "slack-token", "slack-webhook"})


def find_secrets(
    text: str, path: str, entropy_threshold: float, *, window: TextFile | None = None
) -> list[dict[str, Any]]:
    """Secret findings in one text (file, line, column, rule; never the value).

    With ``window`` (a window of a larger file), ``text`` is ``window.text``, locations are those
    in the whole file, and only matches the window owns are reported; a binary window is
    searched with the precise rules only (no entropy heuristics on random bytes).
    """
    index = window.index() if window is not None else LineIndex(text)
    binary = window is not None and window.binary
    lowered = ascii_lower(text)
    findings: list[dict[str, Any]] = []
    claimed: set[int] = set()
    for rule in _RULES:
        if binary and rule.name not in _BINARY_RULES:
            continue
        for line_start, line_end in lines_containing(
            text, rule.needles, haystack=lowered if rule.lowered else None, nul_breaks=binary
        ):
            for m in rule.pattern.finditer(text, line_start, line_end):
                value = m.group(rule.group)
                start = m.start(rule.group)
                if start in claimed or (window is not None and not window.owns(m.start(), m.end())):
                    continue
                if rule.name == "aws-access-key-id" and value.endswith("EXAMPLE"):
                    continue  # AWS's documented example key
                if rule.name == "high-entropy-assignment" and (
                    _PLACEHOLDER.search(value) or shannon_entropy(value) < entropy_threshold
                ):
                    continue
                claimed.add(start)
                line, column = index.locate(start)
                finding: dict[str, Any] = {"file": path, "line": line, "column": column, "rule": rule.name}
                if binary:
                    finding["binary"] = True
                findings.append(finding)
    return findings


# ----------------------------------------------------------------------------- the validator


def validate_security(pkg: PackageView, config: ValidatorConfig) -> ValidationResult:
    """Dependency vetting (OSV) and secret scan (see the module doc for the policy)."""
    if not pkg.is_archive:
        return ValidationResult.build(
            "security",
            passed=False,
            reasons=[f"not an archive (detected: {pkg.format.value}); nothing scanned"],
        )
    reasons: list[str] = []
    advisories, unavailable = _current_advisories(config)
    advisories_ok = unavailable is None
    if unavailable is not None:
        reasons.append(unavailable)

    scan = ScanStats()
    deps: list[Dependency] = []
    unparsed = 0
    manifests = 0
    secrets: list[dict[str, Any]] = []
    manifest_parts: dict[str, list[str]] = {}
    manifest_size: dict[str, int] = {}
    too_large: list[str] = []
    for tf in iter_text_files(pkg, config, scan, binary=True):
        if not (tf.binary or tf.alternate) and _manifest_kind(tf.path) is not None and tf.path not in too_large:
            part = tf.new_text
            manifest_size[tf.path] = manifest_size.get(tf.path, 0) + len(part)
            if manifest_size[tf.path] > config.max_manifest_bytes:
                too_large.append(tf.path)
                manifest_parts.pop(tf.path, None)
            else:
                manifest_parts.setdefault(tf.path, []).append(part)
        secrets += find_secrets(tf.text, tf.path, config.secret_entropy_threshold, window=tf)
    parsed = {path: "".join(parts) for path, parts in manifest_parts.items()}
    for path in sorted(parsed):
        kind = _manifest_kind(path)
        assert kind is not None
        manifests += 1
        found, bad = _PARSERS[kind](parsed[path], path)
        deps += found
        unparsed += bad
    deps = _resolve_locked(deps)
    for path in too_large:
        reasons.append(
            f"dependency manifest {path} is larger than {config.max_manifest_bytes} bytes and was not vetted; "
            "split it or trim it"
        )
    complete = pkg.listing_error is None and scan.complete and not too_large
    if pkg.listing_error is not None:
        reasons.append(
            f"archive could not be read completely, the scan is incomplete: {pkg.listing_error}"
        )
    reasons += scan.incomplete_reasons()

    vuln_findings = [f for dep in deps for f in _vet(dep, advisories)]
    exact = [f for f in vuln_findings if f["rule"] == "vulnerable-dependency"]
    ranged = [f for f in vuln_findings if f["rule"] == "vulnerable-range"]

    for f in sorted(exact, key=lambda f: (f["file"], f["line"], f["advisory"]))[:_MAX_REASONS]:
        reasons.append(
            f"vulnerable dependency: {f['package']} {f['version']} ({f['ecosystem']}) in {f['file']}:{f['line']} "
            f"is affected by {f['advisory']}"
            + (f"; fixed in {', '.join(f['fixed'])}: upgrade" if f["fixed"] else "; no fixed version is known")
        )
    if ranged:
        verb = "fails" if config.fail_on_vulnerable_range else "warning"
        for f in sorted(ranged, key=lambda f: (f["file"], f["line"], f["advisory"]))[:_MAX_REASONS]:
            reasons.append(
                f"{verb}: {f['package']} {f['specifier']} ({f['ecosystem']}) in {f['file']}:{f['line']} admits "
                f"versions affected by {f['advisory']}; "
                + (f"require a fixed version ({', '.join(f['fixed'])} or later) or pin one with a lock file"
                   if f["fixed"] else "no fixed version is known: drop or replace the dependency")
            )
    if len(exact) + len(ranged) > 2 * _MAX_REASONS:
        reasons.append(f"{len(exact)} vulnerable dependencies and {len(ranged)} vulnerable ranges in all")
    if secrets:
        by_rule = Counter(f["rule"] for f in secrets)
        first = min(secrets, key=lambda f: (f["file"], f["line"], f["column"]))
        reasons.append(
            f"leaked secrets: {len(secrets)} ("
            + ", ".join(f"{rule} x{n}" for rule, n in sorted(by_rule.items()))
            + f"), first in {first['file']}:{first['line']}"
            + (" (in binary data)" if first.get("binary") else "")
            + "; remove them from the package and revoke them"
        )
    passed = (
        complete
        and advisories_ok
        and not exact
        and not secrets
        and not (ranged and config.fail_on_vulnerable_range)
    )
    if passed:
        reasons.append(
            f"{len(deps)} dependencies in {manifests} manifests vetted against {advisories.count} advisories; "
            f"no exact vulnerable version; no secret in {scan.files_scanned} files"
        )
    stats: dict[str, Any] = {
        **scan.as_dict(),
        "manifests": manifests,
        "dependencies": len(deps),
        "pinned": sum(1 for d in deps if d.version is not None),
        "ranges": sum(1 for d in deps if d.version is None and d.specifier),
        "unpinned": sum(1 for d in deps if d.version is None and not d.specifier),
        "unparsed": unparsed,
        "non_registry": sum(1 for d in deps if d.source == "non-registry"),
        "vulnerable": len(exact),
        "vulnerable_ranges": len(ranged),
        "secrets": len(secrets),
        "advisories": advisories.count,
        "advisory_set_sha256": advisories.sha256,
        "advisory_set_version": advisories.version,
    }
    return ValidationResult.build(
        "security", passed=passed, reasons=reasons, findings=vuln_findings + secrets, stats=stats,
        observations={"advisory_set_fetched_at": advisories.fetched_at},
    )
