"""What every scenario step gets: the cloud, a driver acting as the users, the output dir."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from hallmark_tools.driver import Driver
from hallmark_tools.localcloud.cloud import LocalCloud


@dataclass
class DemoContext:
    cloud: LocalCloud
    driver: Driver
    out: Path
    console: Console
    facts: dict[str, Any] = field(default_factory=dict)


Step = Callable[[DemoContext], dict[str, Any]]
