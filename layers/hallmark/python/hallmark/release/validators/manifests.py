"""Dependency manifests and lock files (PyPI and npm) parsed into :class:`Dependency` lists, and
npm ranges evaluated with ``nodesemver``; which files count is listed in :mod:`.security`."""

from __future__ import annotations

import functools
import json
import re
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Final

import nodesemver
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from hallmark.release.validators._text import (
    LineIndex,
)
from hallmark.release.validators.advisory_set import (
    NPM,
    PYPI,
    SEMVER,
    SemVer,
    normalise_name,
    parse_version,
)

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


_Parser = Callable[[str, str], tuple[list[Dependency], int]]
_DocParser = Callable[[dict[str, Any], str, str, LineIndex], tuple[list[Dependency], int]]


def _manifest(load: Callable[[str], dict[str, Any] | None]) -> Callable[[_DocParser], _Parser]:
    """The opening every structured manifest parser shares: ``load`` the document (one that does
    not load is nothing found and one unparsed) and index its lines; the parser gets
    ``(doc, text, file, index)`` and is called as ``parse(text, file)``."""

    def wrap(parse: _DocParser) -> _Parser:
        @functools.wraps(parse)
        def parser(text: str, file: str) -> tuple[list[Dependency], int]:
            doc = load(text)
            if doc is None:
                return [], 1
            return parse(doc, text, file, LineIndex(text))

        return parser

    return wrap


def _line_of(text: str, needle: str, index: LineIndex) -> int:
    pos = text.find(needle)
    return index.locate(pos)[0] if pos >= 0 else 0


def _npm_name_from_key(key: str) -> str:
    return key.rsplit("node_modules/", 1)[-1]


@_manifest(_json_object)
def parse_package_lock(
    doc: dict[str, Any], text: str, file: str, index: LineIndex
) -> tuple[list[Dependency], int]:
    """Locked npm packages of a ``package-lock.json`` (v1, v2, v3)."""
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
            if not isinstance(version, str) or parse_version(NPM, version) is None:
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
            if parse_version(NPM, version) is None:
                unparsed += 1
                continue
            line = _line_of(text, json.dumps(name) + ":", index)
            found.setdefault((name, version), Dependency(NPM, name, file, line, version))
    return list(found.values()), unparsed


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


@_manifest(_toml)
def parse_pyproject(
    doc: dict[str, Any], text: str, file: str, index: LineIndex
) -> tuple[list[Dependency], int]:
    """Dependencies of a ``pyproject.toml``: PEP 621 (``[project]``), PEP 735 (``[dependency-groups]``)
    and poetry (``[tool.poetry.*dependencies]`` and its groups)."""
    strings: list[str] = []
    project = _table(doc.get("project"))
    strings += [s for s in project.get("dependencies") or [] if isinstance(s, str)]
    for group in _table(project.get("optional-dependencies")).values():
        strings += [s for s in group or [] if isinstance(s, str)]
    for group in _table(doc.get("dependency-groups")).values():
        strings += [s for s in group or [] if isinstance(s, str)]
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


@_manifest(_toml)
def parse_pipfile(
    doc: dict[str, Any], text: str, file: str, index: LineIndex
) -> tuple[list[Dependency], int]:
    """Dependencies of a ``Pipfile`` (``[packages]``, ``[dev-packages]``)."""
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
    if parse_version(PYPI, version) is None:
        return None
    return Dependency(PYPI, name, file, line, version, f"=={version}")


@_manifest(_toml)
def parse_python_lock(
    doc: dict[str, Any], text: str, file: str, index: LineIndex
) -> tuple[list[Dependency], int]:
    """Locked packages of a ``poetry.lock`` or ``uv.lock`` (``[[package]]`` name and version; the
    project itself, an editable or virtual source, is not a dependency)."""
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


@_manifest(_json_object)
def parse_pipfile_lock(
    doc: dict[str, Any], text: str, file: str, index: LineIndex
) -> tuple[list[Dependency], int]:
    """Locked packages of a ``Pipfile.lock`` (``default`` and ``develop``)."""
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


def npm_range(spec: str) -> Any | None:
    try:
        return nodesemver.make_range(spec.strip() or "*", loose=True)
    except (ValueError, TypeError, AttributeError, IndexError):
        return None


def _npm_exact(spec: str) -> str | None:
    """The version when ``spec`` names exactly one version (``4.17.20``, ``=4.17.20``, ``v4.17.20``)."""
    text = spec.strip().lstrip("=").strip()
    text = text[1:] if text[:1] in ("v", "V") else text
    return text if SEMVER.match(text) else None


@_manifest(_json_object)
def parse_package_json(
    doc: dict[str, Any], text: str, file: str, index: LineIndex
) -> tuple[list[Dependency], int]:
    """Dependencies of a ``package.json`` (dependencies, devDependencies, optionalDependencies,
    peerDependencies): exact versions are pins, everything else an npm range; aliases
    (``npm:name@range``) count as the aliased package; git/file/url/workspace specs are not from
    the registry and are counted, not vetted."""
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
            if npm_range(spec) is None:
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
        if parse_version(NPM, version) is None:
            unparsed += 1
        else:
            deps.setdefault((name, version), Dependency(NPM, name, file, start, version))
        name = None
    return list(deps.values()), unparsed


_REQUIREMENTS_NAME = re.compile(r"^(?:requirements|constraints)[\w.-]*\.(?:txt|in)$", re.IGNORECASE)
_LOCK_KINDS: Final = frozenset({"package-lock", "yarn-lock", "python-lock", "pipfile-lock"})


def manifest_kind(path: str) -> str | None:
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


PARSERS = {
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


def resolve_locked(deps: list[Dependency]) -> list[Dependency]:
    """Ranges of a manifest whose folder holds a lock file that locks the same package are left to
    the lock file (its exact versions are what gets installed, and they are vetted)."""
    locked = {
        (_folder(d.file), d.ecosystem, normalise_name(d.ecosystem, d.name))
        for d in deps
        if manifest_kind(d.file) in _LOCK_KINDS and d.version is not None
    }
    return [
        d
        for d in deps
        if d.version is not None
        or manifest_kind(d.file) in _LOCK_KINDS
        or (_folder(d.file), d.ecosystem, normalise_name(d.ecosystem, d.name)) not in locked
    ]


def npm_candidates(rng: Any) -> list[Any]:
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


def npm_admits(rng: Any, version: Any) -> bool:
    try:
        return bool(rng.test(nodesemver.make_semver(version.text, loose=True)))
    except (ValueError, TypeError, AttributeError):
        return False
