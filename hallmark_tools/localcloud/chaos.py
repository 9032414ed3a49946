"""A fault injector for the local cloud, driven by a seed and a rate.

``LocalCloud(chaos=Chaos(seed, rate))`` makes the asynchronous paths misbehave the way AWS may:

- ``queue_error``: an SQS batch fails before its handler runs (the batch is received again);
- ``queue_late``: the handler ran, then the invocation is reported timed out (its result is
  discarded, so the whole batch is received again: the work was done, the caller was told it failed);
- ``queue_duplicate``: a batch that succeeded is delivered a second time (SQS is at least once);
- ``queue_dead_letter``: a batch that succeeded is sent again as a copy that fails every delivery
  until SQS moves it to the dead-letter queue (a poison message): an operator's redrive, later,
  must then change nothing (``chaos_run.settle`` redrives);
- ``event_error`` / ``event_duplicate``: an EventBridge delivery to a function fails before the
  handler (Lambda retries asynchronous events), or reaches it twice; a delivery to a state
  machine is started twice (the execution name keeps it one execution);
- ``task_throttle``: a Step Functions task's Lambda Invoke is throttled (429
  TooManyRequestsException; botocore and the ASL's retriers retry it);
- ``aws_throttle``: a DynamoDB or KMS call a handler makes is throttled
  (ProvisionedThroughputExceededException / ThrottlingException) before it reaches the service.

API calls are left alone: a client's request is its own to retry. Each kind is rolled
independently at ``rate`` from one ``random.Random(seed)``; ``counts`` says what was injected.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from dataclasses import dataclass, field

KINDS = ("queue_error", "queue_late", "queue_duplicate", "queue_dead_letter", "event_error", "event_duplicate",
         "task_throttle", "aws_throttle")


@dataclass
class Chaos:
    seed: int
    rate: float = 0.1
    kinds: tuple[str, ...] = KINDS
    counts: Counter[str] = field(default_factory=Counter)
    _rng: random.Random = field(init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        if not 0.0 <= self.rate < 1.0:
            raise ValueError("rate must be in [0, 1)")
        unknown = set(self.kinds) - set(KINDS)
        if unknown:
            raise ValueError(f"unknown fault kinds {sorted(unknown)}")
        self._rng = random.Random(self.seed)

    def roll(self, kind: str, scale: float = 1.0) -> bool:
        """True when this fault should happen now (at ``rate * scale``)."""
        with self._lock:
            hit = kind in self.kinds and self._rng.random() < self.rate * scale
            if hit:
                self.counts[kind] += 1
            return hit
