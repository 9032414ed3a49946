"""Execution environments as Lambda has them, for the local cloud.

On Lambda an execution environment runs one invocation at a time, so anything a handler module
keeps at module level (Powertools' resolver holds the current event and the authorizer's context
on ``app``) belongs to that one invocation. The local cloud gives the same guarantee:

- per function, a pool of environments, each its own module instance of ``functions/<code>/app.py``
  (the source is compiled once per function and executed into a fresh module object for each new
  environment: a cold start; a reused idle environment is a warm start);
- an environment runs one invocation at a time; the pool holds at most the function's reserved
  concurrency busy at once (``Function.reserved_concurrency``, else :data:`DEFAULT_CONCURRENCY`);
  past it an invocation is throttled (:class:`Throttled`, Lambda's ``TooManyRequestsException``);
- the function's timeout is enforced: each invocation runs on its own worker thread and the caller
  waits at most ``Function.timeout`` seconds; then the invocation fails as Lambda's does
  (:class:`TimedOut`, "Task timed out after N seconds"), its late result is discarded, and its
  environment is retired (never reused). As on Lambda, what the handler already did before the
  deadline (a write, a message sent) is not undone, and a thread cannot be killed: the late
  handler runs on to its end, in an environment nobody else gets.

What is still shared between environments, as it is not on Lambda: the process (environment
variables, ``sys.modules`` of the layer, so ``hallmark.adapters.runtime``'s client caches and the
Powertools logger/metrics/tracer singletons of ``hallmark.observability``), and Powertools'
own class-level state. Of that, one piece is request input a handler reads back: the resolver's
current event, kept on the class (``BaseRouter.current_event``); the local cloud patches each
resolver to keep its own (``patches._patch_resolver_event``). What remains is output only: the
shared Logger's appended keys (request id, correlation id: a log line may carry another
concurrent invocation's) and the shared EMF metric set (a flush may carry another's metrics).
"""

from __future__ import annotations

import itertools
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from types import CodeType, ModuleType

from hallmark_tools.topology import Function

DEFAULT_CONCURRENCY = 64
"""Environments a function without reserved concurrency may have busy at once locally (on AWS
it shares the account's unreserved concurrency, 1,000 by default; one process stands in here)."""


# One handler module body at a time in the process: the first ones import Powertools and the layer,
# and two threads importing the same package with import cycles can each see the other's module
# partially initialised ("cannot import name ... from partially initialized module"). Later
# environments import nothing new: their module body takes well under a millisecond.
_EXEC_LOCK = threading.RLock()


class HandlerError(Exception):
    """An invocation that raised: carries the Lambda error payload."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(f"{error_type}: {message}")
        self.error_type = error_type
        self.message = message


class Throttled(HandlerError):
    """Every environment the function may have is busy: Lambda's 429 TooManyRequestsException."""

    def __init__(self, function: str, limit: int) -> None:
        super().__init__("TooManyRequestsException", "Rate Exceeded.")
        self.function = function
        self.limit = limit
        self.reason = "ReservedFunctionConcurrentInvocationLimitExceeded"


class TimedOut(HandlerError):
    """The handler ran past the function's timeout; its result, if it comes, is discarded."""

    def __init__(self, request_id: str, timeout_s: int) -> None:
        super().__init__("Sandbox.Timedout", f"RequestId: {request_id} Error: Task timed out after "
                                             f"{timeout_s:.2f} seconds")
        self.request_id = request_id
        self.timeout_s = timeout_s


@dataclass
class Environment:
    """One execution environment: its own module instance of the function's code."""

    function: str
    number: int
    module: ModuleType
    invocations: int = 0


@dataclass
class Pool:
    """The execution environments of one function."""

    fn: Function
    path: Path
    limit: int
    cold_starts: int = 0
    busy: int = 0
    retired: int = 0
    _idle: list[Environment] = field(default_factory=list)
    _names: list[str] = field(default_factory=list)
    _code: CodeType | None = None
    _serial: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def of(cls, fn: Function, root: Path) -> Pool:
        limit = DEFAULT_CONCURRENCY if fn.reserved_concurrency is None else fn.reserved_concurrency
        return cls(fn, root / "functions" / fn.code_dir / "app.py", limit)

    def acquire(self) -> Environment:
        """An idle environment (warm), or a new one (cold); :class:`Throttled` past the limit."""
        with self._lock:
            if self.busy >= self.limit:
                raise Throttled(self.fn.name, self.limit)
            self.busy += 1
            if self._idle:
                return self._idle.pop()  # the most recently used one, as Lambda tends to
            self.cold_starts += 1
        try:
            return self._new_environment()
        except BaseException:
            with self._lock:
                self.busy -= 1
            raise

    def release(self, env: Environment) -> None:
        """The invocation ended in time: the environment is idle again."""
        with self._lock:
            self.busy -= 1
            self._idle.append(env)

    def abandon(self, env: Environment) -> None:
        """The invocation timed out: its slot is free now, the environment is never reused."""
        with self._lock:
            self.busy -= 1
            self.retired += 1
        del env

    def new_module(self) -> ModuleType:
        """A fresh module instance of the function's code (also used to read a handler's routes)."""
        return self._new_environment(count=False).module

    def _new_environment(self, count: bool = True) -> Environment:
        with self._lock:
            if self._code is None:
                # dont_inherit: not this module's ``from __future__ import annotations``, which
                # would turn the handler's annotations into strings Powertools cannot resolve
                self._code = compile(self.path.read_bytes(), str(self.path), "exec", dont_inherit=True)
            code = self._code
            number = next(self._serial)
        name = f"hallmark_fn_{self.fn.name}__env{number}"
        module = ModuleType(name)
        module.__file__ = str(self.path)
        # registered while the cloud runs: dataclasses/pydantic resolve postponed annotations
        # of classes defined in the handler through sys.modules[cls.__module__]
        sys.modules[name] = module
        with self._lock:
            self._names.append(name)
        try:
            with _EXEC_LOCK:
                exec(code, module.__dict__)
        except BaseException:
            sys.modules.pop(name, None)
            raise
        return Environment(self.fn.name, number, module)

    def close(self) -> None:
        with self._lock:
            for name in self._names:
                sys.modules.pop(name, None)
            self._names.clear()
            self._idle.clear()


@dataclass
class Invocation:
    """Who settles an invocation first: the worker (a result or an error) or the deadline."""

    done: threading.Event = field(default_factory=threading.Event)
    late: bool = False
    result: object = None
    error: BaseException | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def finish(self, result: object = None, error: BaseException | None = None) -> bool:
        """The worker's outcome; False when the caller already gave up on it (discarded)."""
        with self._lock:
            if self.late:
                return False
            self.result, self.error = result, error
            self.done.set()
            return True

    def wait(self, timeout_s: float) -> bool:
        """True when the worker finished in time; else the invocation is late from now on."""
        if self.done.wait(timeout_s):
            return True
        with self._lock:
            if self.done.is_set():
                return True
            self.late = True
            return False
