"""Feedback -> EVI weights: the constrained ridge fit recovers known weights from a synthetic
feedback source, a fitted version is signed and rolled out as a 10 % canary, promoted when its
useful-rate is not worse, and rolled back (audited) when a poisoned batch of feedback makes it worse."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pytest

from hallmark.errors import DomainError, NotFound
from hallmark.scoring.features import EviWeights, band_for
from hallmark.scoring.weights import (
    CURRENT,
    DEFAULT_VERSION,
    WEIGHTS,
    Assignment,
    FeedbackIn,
    FeedbackService,
    RolloutPolicy,
    ScoredItem,
    WeightsRollout,
    WeightsUnsigned,
    WeightsVersion,
    fit_weights,
    is_canary_batch,
    project_simplex,
    reweigh,
    target,
)
from tests.fakes.docstore import InMemoryDocStore
from tests.fakes.release import RecordingAudit
from tests.fakes.signing import LocalSigner

TRUE = np.array([0.10, 0.20, 0.40, 0.20, 0.10])  # the synthetic readers' weights (crypto)
DEFAULT = np.array(EviWeights().as_tuple())
TOLERANCE = 0.05  # max |w - TRUE| recovered from band feedback (the bands quantise the targets)


class Items:
    """A ScoredItems over a dict (the envelopes a test 'scored')."""

    def __init__(self) -> None:
        self.by_id: dict[str, ScoredItem] = {}

    def brief(self, brief_id: str) -> ScoredItem | None:
        item = self.by_id.get(brief_id)
        return item if item is not None and item.kind == "brief" else None

    def envelope(self, event_id: str, batch_id: str) -> ScoredItem | None:
        item = self.by_id.get(event_id)
        return item if item is not None and item.kind == "envelope" and item.batch_id == batch_id else None


def reader_verdict(scores: np.ndarray, band: str) -> FeedbackIn:
    """The synthetic source: a reader whose sense of value is TRUE . scores."""
    wanted = band_for(float(scores @ TRUE))
    return FeedbackIn(verdict="useful") if wanted == band else FeedbackIn(verdict="wrong_band", band=wanted)


def test_project_simplex() -> None:
    np.testing.assert_allclose(project_simplex(np.array([0.5, 0.5, 0.5, 0.5, 0.5])), [0.2] * 5)
    np.testing.assert_allclose(project_simplex(np.array([2.0, 0.0, 0.0, 0.0, -1.0])), [1, 0, 0, 0, 0])
    w = project_simplex(np.array([0.3, -0.2, 0.6, 0.1, 0.4]))
    assert w.min() >= 0 and w.sum() == pytest.approx(1.0)


def test_targets_are_band_centres() -> None:
    assert target("wrong_band", "archive", "instant") == pytest.approx(0.9)
    assert target("useful", "same_day", None) == pytest.approx(0.7)
    assert target("not_useful", "same_day", None) == pytest.approx(0.5)  # one band lower
    assert target("not_useful", "archive", None) == pytest.approx(0.2)


@pytest.mark.parametrize("true", [TRUE, np.array([0.35, 0.15, 0.20, 0.10, 0.20])])
def test_the_fit_recovers_the_true_weights_from_band_feedback(true: np.ndarray) -> None:
    rng = np.random.default_rng(0)
    scores = rng.random((4000, 5))
    targets = [target("wrong_band", "archive", band_for(float(u))) for u in scores @ true]
    w = fit_weights(scores, targets, DEFAULT, alpha=1.0, max_step=1.0)
    assert w.min() >= 0 and w.sum() == pytest.approx(1.0)
    assert np.abs(w - true).max() < TOLERANCE, w
    # exact targets: exact weights
    w = fit_weights(scores, scores @ true, DEFAULT, alpha=1.0, max_step=1.0)
    assert np.abs(w - true).max() < 1e-3


def test_the_step_from_the_current_weights_is_bounded() -> None:
    rng = np.random.default_rng(1)
    scores = rng.random((2000, 5))
    w = fit_weights(scores, scores @ TRUE, DEFAULT, max_step=0.05)
    assert np.abs(w - DEFAULT).max() == pytest.approx(0.05, abs=1e-9)
    assert np.abs(w - TRUE).max() < np.abs(DEFAULT - TRUE).max()  # towards the truth
    assert w.min() >= 0 and w.sum() == pytest.approx(1.0)


def test_versions_are_signed_and_a_tampered_one_is_refused() -> None:
    signer = LocalSigner.generate()
    v = WeightsVersion("w-1", {"crypto": tuple(TRUE)}, "w-0", "2026-12-03T00:00:00.000Z").signed(signer)
    v.verify(signer.public_key_pem())
    tampered = WeightsVersion(v.version, {"crypto": (0.0, 0.0, 1.0, 0.0, 0.0)}, v.parent, v.created_at, v.key_id,
                              v.signature)
    with pytest.raises(WeightsUnsigned):
        tampered.verify(signer.public_key_pem())
    with pytest.raises(WeightsUnsigned):
        v.verify(LocalSigner.generate().public_key_pem())
    assert WeightsVersion.from_dict(v.as_dict()) == v


def test_reweigh_per_domain() -> None:
    v = WeightsVersion("w-1", {"crypto": (0.0, 0.0, 1.0, 0.0, 0.0)}, None, "t")
    total, bands = reweigh([[1, 1, 0.85, 1, 1], [0.2, 0.2, 0.2, 0.2, 0.2]], ["crypto", "ai"], v)
    np.testing.assert_allclose(total, [0.85, 0.2])  # ai falls back to the default weights
    assert bands == ["instant", "archive"]


def test_canary_split_is_deterministic_and_about_ten_percent() -> None:
    ids = [f"batch-{i}" for i in range(2000)]
    picked = [b for b in ids if is_canary_batch(b, 10)]
    assert 0.08 < len(picked) / len(ids) < 0.12
    assert picked == [b for b in ids if is_canary_batch(b, 10)]


# --- feedback records ------------------------------------------------------------------------


def item(i: int, scores: np.ndarray, band: str, version: str, kind: str = "envelope") -> ScoredItem:
    return ScoredItem(kind, f"00000000-0000-4000-8000-{i:012d}", "crypto",  # type: ignore[arg-type]
                      tuple(float(x) for x in scores), band, version, f"b-{i // 50}")  # type: ignore[arg-type]


def test_feedback_is_idempotent_per_caller_and_item_and_audited() -> None:
    docs, audit, items = InMemoryDocStore(), RecordingAudit(), Items()
    it = item(1, np.full(5, 0.5), "weekly", DEFAULT_VERSION)
    items.by_id[it.item_id] = it
    svc = FeedbackService(docs, audit, items)
    body = FeedbackIn(verdict="useful", batchId=it.batch_id)
    doc, changed = svc.record("envelope", it.item_id, "user:alice", body)
    assert changed and doc["weightsVersion"] == DEFAULT_VERSION and doc["scores"] == [0.5] * 5
    assert svc.record("envelope", it.item_id, "user:alice", body)[1] is False  # a repeat changes nothing
    assert audit.types() == ["FeedbackRecorded"]
    svc.record("envelope", it.item_id, "user:alice", FeedbackIn(verdict="wrong_band", band="instant",
                                                                 batchId=it.batch_id))
    svc.record("envelope", it.item_id, "user:bob", body)
    assert audit.types() == ["FeedbackRecorded"] * 3
    records = docs.query("scoring-feedback")
    assert sorted((r["caller"], r["verdict"]) for r in records) == [("user:alice", "wrong_band"), ("user:bob", "useful")]
    with pytest.raises(NotFound):
        svc.record("brief", it.item_id, "user:alice", body)  # no such brief
    with pytest.raises(NotFound):
        svc.record("envelope", it.item_id, "user:alice", FeedbackIn(verdict="useful", batchId="other"))
    with pytest.raises(DomainError):
        svc.record("envelope", it.item_id, "user:alice", FeedbackIn(verdict="useful"))  # no batchId
    with pytest.raises(ValueError):
        FeedbackIn(verdict="wrong_band")
    with pytest.raises(ValueError):
        FeedbackIn(verdict="useful", band="instant")


# --- the rollout ---------------------------------------------------------------------------


class World:
    def __init__(self, seed: int = 0) -> None:
        self.docs, self.audit, self.items = InMemoryDocStore(), RecordingAudit(), Items()
        self.signer = LocalSigner.generate()
        self.rollout = WeightsRollout(self.docs, self.audit, self.signer,
                                      RolloutPolicy(promote_after=3, min_feedback=100, min_samples=200, max_step=0.1))
        self.feedback = FeedbackService(self.docs, self.audit, self.items)
        self.rng = np.random.default_rng(seed)
        self.n = 0

    def score_and_judge(self, version: WeightsVersion, count: int, poisoned: bool = False) -> None:
        """``count`` envelopes scored with ``version``, each judged by the synthetic source
        (or, poisoned, every one called not useful)."""
        scores = self.rng.random((count, 5))
        _, bands = reweigh(scores, ["crypto"] * count, version)
        for s, b in zip(scores, bands, strict=True):
            self.n += 1
            it = item(self.n, s, b, version.version)
            self.items.by_id[it.item_id] = it
            verdict = FeedbackIn(verdict="not_useful") if poisoned else reader_verdict(s, b)
            self.feedback.record("envelope", it.item_id, "user:reader",
                                 FeedbackIn(**{**verdict.model_dump(), "batchId": it.batch_id}))

    def run_canary_batches(self, needed: int) -> list[Assignment]:
        pem = self.signer.public_key_pem()
        out = []
        i = 0
        while sum(a.canary for a in out) < needed:
            a = self.rollout.assign(f"batch-{i}", pem)
            self.rollout.record_batch(f"batch-{i}", a)
            out.append(a)
            i += 1
        return out


def test_a_better_canary_is_promoted() -> None:
    w = World()
    w.score_and_judge(w.rollout.state().active, 1500)
    proposed = w.rollout.run()
    assert proposed["action"] == "proposed" and proposed["version"] == "w-1"
    st = w.rollout.state()
    assert st.canary is not None and st.active.version == DEFAULT_VERSION
    new = np.array(st.canary.weights["crypto"])
    assert np.abs(new - DEFAULT).max() <= 0.1 + 1e-9 and np.abs(new - TRUE).max() < np.abs(DEFAULT - TRUE).max()
    assert st.canary.weights["ai"] == tuple(DEFAULT)
    # canary batches are scored with the canary, the active weights in shadow; the others the other way round
    assignments = w.run_canary_batches(3)
    canary, control = [a for a in assignments if a.canary], [a for a in assignments if not a.canary]
    assert all(a.scoring.version == "w-1" and a.shadow is not None and a.shadow.version == DEFAULT_VERSION
               for a in canary)
    assert all(a.scoring.version == DEFAULT_VERSION and a.shadow is not None and a.shadow.version == "w-1"
               for a in control)
    assert w.rollout.run()["action"] == "waiting"  # no verdicts on the canary's envelopes yet
    w.score_and_judge(st.canary, 400)
    w.score_and_judge(st.active, 400)
    decided = w.rollout.run()
    assert decided["action"] == "promoted", decided
    assert decided["canaryUsefulRate"] >= decided["activeUsefulRate"]
    st = w.rollout.state()
    assert st.active.version == "w-1" and st.canary is None
    assert "WeightsPromoted" in w.audit.types("w-1") and "WeightsRolledBack" not in w.audit.types()


def test_a_poisoned_batch_of_feedback_rolls_the_canary_back() -> None:
    w = World(seed=1)
    w.score_and_judge(w.rollout.state().active, 1500)
    assert w.rollout.run()["action"] == "proposed"
    canary = w.rollout.state().canary
    assert canary is not None
    w.run_canary_batches(3)
    w.score_and_judge(canary, 400, poisoned=True)  # someone calls every canary envelope not useful
    w.score_and_judge(w.rollout.state().active, 400)
    decided = w.rollout.run()
    assert decided["action"] == "rolled_back", decided
    assert decided["canaryUsefulRate"] < decided["activeUsefulRate"]
    st = w.rollout.state()
    assert st.active.version == DEFAULT_VERSION and st.canary is None
    rolled = [e for e in w.audit.events.values() if e["type"] == "WeightsRolledBack"]
    assert len(rolled) == 1 and rolled[0]["subject"] == "w-1" and rolled[0]["data"]["canaryFeedback"] == 400
    # after the rollback every batch is scored with the active weights again
    a = w.rollout.assign("batch-x", w.signer.public_key_pem())
    assert (a.scoring.version, a.shadow, a.canary) == (DEFAULT_VERSION, None, False)


def test_a_tampered_stored_version_is_refused_at_assignment() -> None:
    w = World()
    w.score_and_judge(w.rollout.state().active, 1500)
    w.rollout.run()
    doc = w.docs.get(WEIGHTS, CURRENT)
    assert doc is not None
    version = doc.pop("version")
    bad: dict[str, Any] = copy.deepcopy(doc)
    bad["canary"]["weights"]["crypto"] = [0.0, 0.0, 1.0, 0.0, 0.0]
    w.docs.replace(WEIGHTS, CURRENT, bad, version)
    with pytest.raises(WeightsUnsigned):
        w.rollout.assign("batch-1", w.signer.public_key_pem())
