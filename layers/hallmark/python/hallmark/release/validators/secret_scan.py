"""The secret scan: precise rules (AWS keys, PEM private keys, GitHub and Slack tokens) and
high-entropy values assigned to secret-looking names; findings carry file, line, column and
rule, never the value (see :mod:`.security`)."""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any, Final

from hallmark.release.validators._text import (
    LineIndex,
    TextFile,
    ascii_lower,
    lines_containing,
)

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
