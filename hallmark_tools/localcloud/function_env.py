"""Each function sees only its own environment (issue 19, item 8).

On Lambda a function's environment holds what the topology gives it (``topology.env_for``) and
nothing of another function's. The local cloud runs every function in one process, whose
``os.environ`` is shared; so while a function's module loads and while its handler runs, the
thread doing it reads an overlay: the function's own ``env_for`` values, and none of the
resource or route variables the local cloud provisioned for the others (process-wide settings,
such as the AWS region or moto's endpoint, stay visible). A handler that needs a resource its
topology entry lacks then fails locally with ``ConfigurationError: X is not set``, as on AWS.

Known gap: threads a handler starts itself read the process environment, and clients the layer
caches per process (``hallmark.adapters.runtime``) are shared between functions.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator, Mapping
from typing import Any

_LOCAL = threading.local()
_ORIGINAL: dict[str, Any] = {}


def _view() -> tuple[Mapping[str, str], frozenset[str]] | None:
    return getattr(_LOCAL, "view", None)


def _install() -> None:
    if _ORIGINAL:
        return
    cls = type(os.environ)
    _ORIGINAL.update(getitem=cls.__getitem__, iter=cls.__iter__, len=cls.__len__)

    def getitem(self: Any, key: str) -> str:
        view = _view() if self is os.environ else None
        if view is not None:
            own, hidden = view
            if key in own:
                return own[key]
            if key in hidden:
                raise KeyError(key)
        return _ORIGINAL["getitem"](self, key)  # type: ignore[no-any-return]

    def iterate(self: Any) -> Iterator[str]:
        view = _view() if self is os.environ else None
        keys = list(_ORIGINAL["iter"](self))
        if view is None:
            return iter(keys)
        own, hidden = view
        return iter([*(k for k in keys if k not in hidden and k not in own), *own])

    def length(self: Any) -> int:
        return sum(1 for _ in iterate(self)) if self is os.environ else _ORIGINAL["len"](self)  # type: ignore[no-any-return]

    cls.__getitem__ = getitem  # type: ignore[method-assign]
    cls.__iter__ = iterate  # type: ignore[method-assign]
    cls.__len__ = length  # type: ignore[method-assign]


def uninstall() -> None:
    if not _ORIGINAL:
        return
    cls = type(os.environ)
    cls.__getitem__ = _ORIGINAL["getitem"]  # type: ignore[method-assign]
    cls.__iter__ = _ORIGINAL["iter"]  # type: ignore[method-assign]
    cls.__len__ = _ORIGINAL["len"]  # type: ignore[method-assign]
    _ORIGINAL.clear()


@contextlib.contextmanager
def scoped(own: Mapping[str, str], hidden: frozenset[str]) -> Iterator[None]:
    """In this thread, ``os.environ`` shows ``own`` and hides ``hidden`` (less ``own``)."""
    _install()
    previous = _view()
    _LOCAL.view = (dict(own), frozenset(hidden) - set(own))
    try:
        yield
    finally:
        _LOCAL.view = previous
