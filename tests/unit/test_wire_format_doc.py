"""docs/wire-format.md stays in step with the code (issue 18, item 5), and no file of the
repository points at documents outside it."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from hallmark.audit.checkpoints import CHECKPOINT_FIELDS
from hallmark.audit.events import EVENT_FIELDS
from hallmark.audit.notes import open_checkpoint_note

ROOT = Path(__file__).resolve().parents[2]
#: how a path out of the checkout looks (built here, so this file does not match itself)
OUTSIDE = ("../" + "shared/", "/work/" + "shared")
DOC = (ROOT / "docs" / "wire-format.md").read_text(encoding="utf-8")


def _table_members(heading: str) -> list[str]:
    section = DOC.split(heading, 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\| `([A-Za-z]+)` \|", section, flags=re.M)


def test_event_and_checkpoint_members_are_documented() -> None:
    assert _table_members("## 2. Audit events") == list(EVENT_FIELDS)
    assert _table_members("## 3. Checkpoints (JSON)") == list(CHECKPOINT_FIELDS)


def test_the_example_note_is_well_formed() -> None:
    block = DOC.split("## 6.", 1)[1].split("```\n", 2)[1]
    lines = block.split("\n")
    assert lines[0] == "hallmark.local/audit/release" and lines[1] == "12" and lines[3] == ""
    assert lines[4].startswith("\u2014 hallmark.local/audit/release ")
    # the example was signed by a throwaway key: with any other key it must be refused, not crash
    from tests.fakes.signing import LocalSigner

    try:
        open_checkpoint_note(block, lines[0], LocalSigner.generate().public_key_pem())
    except ValueError as exc:
        assert "no signature" in str(exc)
    else:  # pragma: no cover
        raise AssertionError("a note verified with an unrelated key")


def test_no_tracked_file_points_outside_the_repository() -> None:
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    offenders = []
    for name in files:
        path = ROOT / name
        if path.suffix not in {".md", ".py", ".toml", ".txt", ".yml", ".yaml", ".json", ".cfg"} or not path.is_file():
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        if any(needle in text for needle in OUTSIDE):
            offenders.append(name)
    assert offenders == [], offenders
