"""Feedback -> EVI weights: fit, sign, canary, promote or roll back (the seed's RL weight updater).

- **Feedback** (``FeedbackService``): a caller says of a brief or an envelope "useful", "not useful"
  or "the band should have been X". One record per caller and item (a repeat of the same verdict
  changes nothing; another verdict replaces it), audited ``FeedbackRecorded``. Each record keeps
  what it judged: the item's domain, its five scores, its band and the weights version that scored
  it.
- **Targets**: every verdict is a target total EVI, the centre of a band: "band should have been X"
  -> the centre of X; "useful" -> the centre of the band it got (it was right); "not useful" -> the
  centre of the band below it (archive stays archive). Centres: instant 0.9, same_day 0.7,
  weekly 0.5, archive 0.2 with the default cut-offs (``band_centres``).
- **Fit** (``fit_weights``), per domain: ridge regression of the targets on the five scores,
  pulled towards the current weights, ``min ||S w - t||^2 + alpha ||w - w0||^2`` with ``w >= 0``,
  ``sum(w) = 1`` (projected gradient on the simplex), then a bounded step: the move from ``w0`` is
  scaled so no weight changes by more than ``max_step`` (a convex combination of two points of the
  simplex stays on it).
- **Versions** (``WeightsVersion``): ``w-<n>``, per-domain weights, the parent version, signed
  (``Signer``, the ``weights`` key) over their canonical JSON (RFC 8785); ``verify`` refuses one
  whose signature does not check with the public key.
- **Rollout** (``WeightsRollout``): a fitted version becomes the canary (``WeightsProposed``); a
  batch is a canary batch when ``sha256(batchId)`` falls in the first ``canary_percent`` of 100
  (deterministic, ~10 %); a canary batch is scored with the canary weights and the active weights
  score it in shadow (the other way round for the others); after ``promote_after`` canary batches
  with at least ``min_feedback`` verdicts on each side, the canary is promoted
  (``WeightsPromoted``) when its useful-rate is not below the active one's, else rolled back
  (``WeightsRolledBack``), automatically.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import json
import math
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, Protocol

import rfc8785
from pydantic import BaseModel, ConfigDict, model_validator

from hallmark.canonical import to_rfc3339
from hallmark.docstore import DocStore, update
from hallmark.errors import Conflict, DomainError, NotFound
from hallmark.ports import AuditEmitter, Signer
from hallmark.scoring.batching import batch_key, output_key
from hallmark.scoring.features import SCORE_NAMES, BandCutoffs, EviWeights
from hallmark.scoring.schema import BANDS, Band, EVIEnvelope
from hallmark.signing import verify_signature

if TYPE_CHECKING:  # numpy loads when weights are fitted or applied, not with every scoring handler
    import numpy as np
    import numpy.typing as npt

    F64 = npt.NDArray[np.float64]

CHAIN = "scoring"
FEEDBACK = "scoring-feedback"
WEIGHTS = "scoring-weights"
CURRENT = "current"
DEFAULT_VERSION = "w-0"
DOMAINS: tuple[str, ...] = ("crypto", "ai")
NAMESPACE = uuid.UUID("3f6f0a52-7f0e-4c39-9d55-0b9e2d1e4a77")
Verdict = Literal["useful", "not_useful", "wrong_band"]
ItemKind = Literal["brief", "envelope"]


class FeedbackIn(BaseModel):
    """``POST /briefs/{id}/feedback`` and ``POST /scoring/envelopes/{eventId}/feedback``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    verdict: Verdict
    band: Band | None = None
    """With ``wrong_band`` only: the band the item should have had."""
    batchId: str | None = None
    """For an envelope: the batch that scored it (webhook deliveries carry it)."""

    @model_validator(mode="after")
    def _band_with_wrong_band(self) -> FeedbackIn:
        if (self.verdict == "wrong_band") != (self.band is not None):
            raise ValueError("band goes with verdict 'wrong_band' (and only with it)")
        return self


@dataclass(frozen=True)
class ScoredItem:
    """What a verdict judges: resolved from the brief or the envelope."""

    kind: ItemKind
    item_id: str
    domain: str
    scores: tuple[float, float, float, float, float]
    band: Band
    weights_version: str
    batch_id: str


class ScoredItems(Protocol):
    def brief(self, brief_id: str) -> ScoredItem | None: ...

    def envelope(self, event_id: str, batch_id: str) -> ScoredItem | None: ...


def band_centres(cutoffs: BandCutoffs | None = None) -> dict[Band, float]:
    c = cutoffs or BandCutoffs()
    return {"instant": (c.instant + 1.0) / 2, "same_day": (c.same_day + c.instant) / 2,
            "weekly": (c.weekly + c.same_day) / 2, "archive": c.weekly / 2}


def target(verdict: Verdict, band: Band, wanted: Band | None, cutoffs: BandCutoffs | None = None) -> float:
    centres = band_centres(cutoffs)
    if verdict == "wrong_band":
        assert wanted is not None
        return centres[wanted]
    if verdict == "useful":
        return centres[band]
    return centres[BANDS[min(BANDS.index(band) + 1, len(BANDS) - 1)]]


# --- the fit -----------------------------------------------------------------------------------


def project_simplex(v: F64) -> F64:
    """The Euclidean projection of ``v`` onto {w >= 0, sum w = 1} (Duchi et al., 2008)."""
    import numpy as np
    u = np.sort(v)[::-1]
    css = np.cumsum(u) - 1.0
    ks = np.arange(1, len(v) + 1)
    rho = int(np.nonzero(u - css / ks > 0)[0][-1])
    return np.maximum(v - css[rho] / (rho + 1), 0.0)


def fit_weights(scores: npt.ArrayLike, targets: npt.ArrayLike, current: Sequence[float], *,
                alpha: float = 1.0, max_step: float = 0.1, iterations: int = 5000) -> F64:
    """Constrained ridge (see the module docstring), then the bounded step from ``current``."""
    import numpy as np
    s = np.asarray(scores, dtype=np.float64).reshape(-1, len(SCORE_NAMES))
    t = np.asarray(targets, dtype=np.float64).reshape(-1)
    w0 = np.asarray(current, dtype=np.float64)
    if s.shape[0] != t.shape[0]:
        raise ValueError("one target per row of scores")
    if alpha < 0 or not 0 < max_step <= 1:
        raise ValueError("alpha must be >= 0 and max_step in (0, 1]")
    a = s.T @ s + alpha * np.eye(len(w0))
    b = s.T @ t + alpha * w0
    lipschitz = float(np.linalg.eigvalsh(a).max()) or 1.0
    w = project_simplex(w0.copy())
    for _ in range(iterations):
        nxt = project_simplex(w - (a @ w - b) / lipschitz)
        if float(np.abs(nxt - w).max()) < 1e-12:
            w = nxt
            break
        w = nxt
    move = float(np.abs(w - w0).max())
    if move > max_step:
        w = w0 + (w - w0) * (max_step / move)
    return np.maximum(w, 0.0) / np.maximum(w, 0.0).sum()


# --- signed versions -----------------------------------------------------------------------------


@dataclass(frozen=True)
class WeightsVersion:
    version: str
    weights: dict[str, tuple[float, ...]]  # domain -> five weights (SCORE_NAMES order)
    parent: str | None
    created_at: str
    key_id: str = ""
    signature: str = ""  # base64 DER ECDSA over signed_bytes()

    def signed_bytes(self) -> bytes:
        return b"hallmark/evi-weights/v1\n" + rfc8785.dumps({
            "version": self.version, "parent": self.parent, "createdAt": self.created_at,
            "weights": {d: [float(x) for x in w] for d, w in sorted(self.weights.items())}})

    def for_domain(self, domain: str) -> EviWeights:
        w = self.weights.get(domain)
        return EviWeights() if w is None else EviWeights(**dict(zip(SCORE_NAMES, w, strict=True)))

    def as_dict(self) -> dict[str, Any]:
        return {"version": self.version, "weights": {d: list(w) for d, w in self.weights.items()},
                "parent": self.parent, "createdAt": self.created_at, "keyId": self.key_id,
                "signature": self.signature}

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> WeightsVersion:
        return cls(version=str(doc["version"]), weights={d: tuple(float(x) for x in w) for d, w in doc["weights"].items()},
                   parent=doc.get("parent"), created_at=str(doc["createdAt"]), key_id=str(doc.get("keyId", "")),
                   signature=str(doc.get("signature", "")))

    def signed(self, signer: Signer) -> WeightsVersion:
        sig = base64.b64encode(signer.sign(self.signed_bytes())).decode("ascii")
        return WeightsVersion(self.version, self.weights, self.parent, self.created_at, signer.key_id, sig)

    def verify(self, public_key_pem: bytes) -> None:
        """Raise ``WeightsUnsigned`` unless the signature checks with the public key."""
        try:
            ok = bool(self.signature) and verify_signature(public_key_pem, self.signed_bytes(),
                                                           base64.b64decode(self.signature, validate=True))
        except (ValueError, binascii.Error):
            ok = False
        if not ok:
            raise WeightsUnsigned(f"the signature of weights {self.version} does not verify")


class WeightsUnsigned(Exception):
    """A weights version whose signature does not verify: nothing is scored with it."""


def default_version() -> WeightsVersion:
    """The design's default weights, unsigned: what scores batches before any fit."""
    w = EviWeights().as_tuple()
    return WeightsVersion(DEFAULT_VERSION, {d: w for d in DOMAINS}, None, "1970-01-01T00:00:00.000Z")


def reweigh(scores: npt.ArrayLike, domains: Sequence[str], version: WeightsVersion,
            cutoffs: BandCutoffs | None = None) -> tuple[F64, list[Band]]:
    """Totals and bands of scored events under ``version``'s per-domain weights."""
    import numpy as np

    from hallmark.scoring.reference import bands as band_indices
    s = np.asarray(scores, dtype=np.float64).reshape(-1, len(SCORE_NAMES))
    w = np.asarray([version.for_domain(d).as_tuple() for d in domains], dtype=np.float64).reshape(s.shape)
    total = np.clip((s * w).sum(axis=1), 0.0, 1.0)
    return total, [BANDS[i] for i in band_indices(total, cutoffs or BandCutoffs())]


# --- feedback ----------------------------------------------------------------------------------


class FeedbackService:
    """Records verdicts on briefs and envelopes (idempotent per caller and item, audited)."""

    def __init__(self, docs: DocStore, audit: AuditEmitter, items: ScoredItems,
                 clock: Callable[[], datetime] | None = None) -> None:
        self.docs, self.audit, self.items = docs, audit, items
        self.clock = clock or (lambda: datetime.now(UTC))

    def record(self, kind: ItemKind, item_id: str, caller: str, body: FeedbackIn) -> tuple[dict[str, Any], bool]:
        """(the record, whether it changed anything)."""
        if kind == "brief":
            item = self.items.brief(item_id)
        else:
            if not body.batchId:
                raise DomainError("invalid_request", "feedback on an envelope names its batchId", 400)
            item = self.items.envelope(item_id, body.batchId)
        if item is None:
            raise NotFound(kind, item_id)
        ident = f"{kind}:{item_id}:{caller}"
        doc = {"kind": kind, "itemId": item_id, "caller": caller, "verdict": body.verdict, "band": body.band,
               "domain": item.domain, "scores": list(item.scores), "scoredBand": item.band,
               "weightsVersion": item.weights_version, "batchId": item.batch_id, "at": to_rfc3339(self.clock())}
        existing = self.docs.get(FEEDBACK, ident)
        if existing is not None and (existing["verdict"], existing.get("band")) == (body.verdict, body.band):
            return {k: v for k, v in existing.items() if k != "version"}, False
        if existing is None:
            try:
                self.docs.create(FEEDBACK, ident, doc)
            except Conflict:
                return self.record(kind, item_id, caller, body)
        else:
            self.docs.replace(FEEDBACK, ident, doc, existing["version"])
        self.audit.emit(chain=CHAIN, type="FeedbackRecorded", actor=caller, subject=item_id,
                        data={"kind": kind, "itemId": item_id, "verdict": body.verdict, "band": body.band,
                              "weightsVersion": item.weights_version, "batchId": item.batch_id},
                        event_id=str(uuid.uuid5(NAMESPACE, f"{ident}/{body.verdict}/{body.band}")))
        return doc, True


# --- rollout -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RolloutPolicy:
    canary_percent: int = 10
    promote_after: int = 5  # canary batches
    min_feedback: int = 20  # verdicts on each side before deciding
    min_samples: int = 50  # verdicts in a domain before fitting it
    alpha: float = 1.0
    max_step: float = 0.1
    min_change: float = 1e-3  # a fit moving no weight by more than this proposes nothing


@dataclass(frozen=True)
class Assignment:
    """The weights a batch is scored with, and those scoring it in shadow."""

    scoring: WeightsVersion
    shadow: WeightsVersion | None
    canary: bool

    def as_dict(self) -> dict[str, Any]:
        return {"scoring": self.scoring.as_dict(), "shadow": self.shadow.as_dict() if self.shadow else None,
                "canary": self.canary}

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> Assignment:
        shadow = doc.get("shadow")
        return cls(WeightsVersion.from_dict(doc["scoring"]), WeightsVersion.from_dict(shadow) if shadow else None,
                   bool(doc.get("canary")))


def is_canary_batch(batch_id: str, percent: int) -> bool:
    return int(hashlib.sha256(batch_id.encode("utf-8")).hexdigest()[:8], 16) % 100 < percent


@dataclass
class RolloutState:
    active: WeightsVersion
    canary: WeightsVersion | None = None
    canary_batches: list[str] = field(default_factory=list)
    serial: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"active": self.active.as_dict(), "canary": self.canary.as_dict() if self.canary else None,
                "canaryBatches": list(self.canary_batches), "serial": self.serial}

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any] | None) -> RolloutState:
        if not doc:
            return cls(default_version())
        canary = doc.get("canary")
        return cls(WeightsVersion.from_dict(doc["active"]), WeightsVersion.from_dict(canary) if canary else None,
                   list(doc.get("canaryBatches", [])), int(doc.get("serial", 0)))


class WeightsRollout:
    """The scheduled updater's steps and the scoring plan's weights assignment."""

    def __init__(self, docs: DocStore, audit: AuditEmitter, signer: Signer | None = None,
                 policy: RolloutPolicy | None = None,
                 cutoffs: BandCutoffs | None = None, clock: Callable[[], datetime] | None = None) -> None:
        self.docs, self.audit, self.signer = docs, audit, signer
        self.policy = policy or RolloutPolicy()
        self.cutoffs = cutoffs or BandCutoffs()
        self.clock = clock or (lambda: datetime.now(UTC))

    def state(self) -> RolloutState:
        return RolloutState.from_dict(self.docs.get(WEIGHTS, CURRENT))

    def _save(self, change: Callable[[RolloutState], None]) -> RolloutState:
        out: list[RolloutState] = []

        def apply(doc: dict[str, Any]) -> None:
            st = RolloutState.from_dict(doc)
            change(st)
            doc.clear()
            doc.update(st.as_dict())
            out.append(st)

        if self.docs.get(WEIGHTS, CURRENT) is None:
            with contextlib.suppress(Conflict):  # created concurrently: fine
                self.docs.create(WEIGHTS, CURRENT, RolloutState(default_version()).as_dict())
        update(self.docs, WEIGHTS, CURRENT, apply)
        return out[-1]

    # ---- the plan step
    def assign(self, batch_id: str, public_key_pem: bytes) -> Assignment:
        """Which weights score this batch (signatures checked; the default weights need none)."""
        st = self.state()
        for v in (st.active, st.canary):
            if v is not None and v.version != DEFAULT_VERSION:
                v.verify(public_key_pem)
        if st.canary is None:
            return Assignment(st.active, None, False)
        if is_canary_batch(batch_id, self.policy.canary_percent):
            return Assignment(st.canary, st.active, True)
        return Assignment(st.active, st.canary, False)

    def record_batch(self, batch_id: str, assignment: Assignment) -> None:
        """The record step: a scored canary batch counts towards promotion."""
        if not assignment.canary:
            return

        def change(st: RolloutState) -> None:
            if st.canary is not None and st.canary.version == assignment.scoring.version \
                    and batch_id not in st.canary_batches:
                st.canary_batches.append(batch_id)

        self._save(change)

    # ---- the scheduled job
    def feedback(self) -> list[dict[str, Any]]:
        return self.docs.query(FEEDBACK, 1_000_000)

    def useful_rate(self, records: Sequence[Mapping[str, Any]], version: str) -> tuple[float, int]:
        mine = [r for r in records if r.get("weightsVersion") == version]
        if not mine:
            return math.nan, 0
        return sum(1 for r in mine if r["verdict"] == "useful") / len(mine), len(mine)

    def run(self) -> dict[str, Any]:
        """Decide a running canary, else fit and propose one. Returns what it did."""
        st = self.state()
        records = self.feedback()
        if st.canary is not None:
            return self._decide(st, records)
        return self._propose(st, records)

    def _decide(self, st: RolloutState, records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        assert st.canary is not None
        canary_rate, n_canary = self.useful_rate(records, st.canary.version)
        active_rate, n_active = self.useful_rate(records, st.active.version)
        p = self.policy
        if len(st.canary_batches) < p.promote_after or n_canary < p.min_feedback or n_active < p.min_feedback:
            return {"action": "waiting", "canary": st.canary.version, "canaryBatches": len(st.canary_batches),
                    "canaryFeedback": n_canary, "activeFeedback": n_active}
        canary, active = st.canary, st.active
        data = {"canary": canary.version, "active": active.version, "canaryUsefulRate": round(canary_rate, 6),
                "activeUsefulRate": round(active_rate, 6), "canaryFeedback": n_canary, "activeFeedback": n_active,
                "canaryBatches": len(st.canary_batches)}
        promote = canary_rate >= active_rate

        def change(s: RolloutState) -> None:
            if s.canary is None or s.canary.version != canary.version:
                return
            if promote:
                s.active = canary
            s.canary, s.canary_batches = None, []

        self._save(change)
        kind = "WeightsPromoted" if promote else "WeightsRolledBack"
        self.audit.emit(chain=CHAIN, type=kind, actor="system:scoring_weights", subject=canary.version, data=data,
                        event_id=str(uuid.uuid5(NAMESPACE, f"{kind}/{canary.version}")))
        return {"action": "promoted" if promote else "rolled_back", **data}

    def _propose(self, st: RolloutState, records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        import numpy as np
        p = self.policy
        weights: dict[str, tuple[float, ...]] = {}
        samples: dict[str, int] = {}
        moved = 0.0
        for domain in DOMAINS:
            mine = [r for r in records if r.get("domain") == domain]
            current = st.active.for_domain(domain).as_tuple()
            samples[domain] = len(mine)
            if len(mine) < p.min_samples:
                weights[domain] = current
                continue
            s = np.asarray([r["scores"] for r in mine], dtype=np.float64)
            t = np.asarray([target(r["verdict"], r["scoredBand"], r.get("band"), self.cutoffs) for r in mine])
            w = fit_weights(s, t, current, alpha=p.alpha, max_step=p.max_step)
            moved = max(moved, float(np.abs(w - np.asarray(current)).max()))
            weights[domain] = tuple(round(float(x), 9) for x in w / w.sum())
        if moved < p.min_change:
            return {"action": "none", "samples": samples}
        if self.signer is None:
            raise WeightsUnsigned("the weights updater needs the weights signing key")
        serial = st.serial + 1
        version = WeightsVersion(f"w-{serial}", weights, st.active.version, to_rfc3339(self.clock())).signed(self.signer)

        def change(s: RolloutState) -> None:
            if s.canary is None and s.serial == st.serial:
                s.canary, s.canary_batches, s.serial = version, [], serial

        saved = self._save(change)
        if saved.canary is None or saved.canary.version != version.version:
            return {"action": "none", "reason": "the state changed meanwhile", "samples": samples}
        self.audit.emit(chain=CHAIN, type="WeightsProposed", actor="system:scoring_weights", subject=version.version,
                        data={"version": version.version, "parent": version.parent, "weights": version.as_dict()["weights"],
                              "samples": samples, "keyId": version.key_id},
                        event_id=str(uuid.uuid5(NAMESPACE, f"WeightsProposed/{version.version}")))
        return {"action": "proposed", "version": version.version, "weights": version.as_dict()["weights"],
                "samples": samples}


class BlobReader(Protocol):
    def get(self, key: str) -> bytes: ...


class BriefLookup(Protocol):
    def get(self, brief_id: str) -> Any: ...


class StoredItems:
    """``ScoredItems`` from what the scoring flow stored: a batch's envelopes (``scored/<batchId>.jsonl``)
    and events (``batches/<batchId>.jsonl``) in the scoring bucket, and the briefs. A brief's scores
    are the mean of its events' envelopes."""

    def __init__(self, briefs: BriefLookup, blobs: BlobReader) -> None:
        self.briefs, self.blobs = briefs, blobs

    def _batch(self, batch_id: str) -> tuple[dict[str, EVIEnvelope], dict[str, str]]:
        try:
            scored, events = self.blobs.get(output_key(batch_id)), self.blobs.get(batch_key(batch_id))
        except KeyError:
            return {}, {}
        lines = [x for x in scored.decode("utf-8").split("\n") if x.strip()]
        envelopes = {e.event_id: e for e in map(EVIEnvelope.model_validate_json, lines)}
        domains: dict[str, str] = {}
        for line in events.decode("utf-8").split("\n"):
            try:
                doc = json.loads(line)
                domains[str(doc["event_id"])] = str(doc["domain"])
            except (ValueError, KeyError, TypeError):
                continue  # a line the runners refused too
        return envelopes, domains

    def envelope(self, event_id: str, batch_id: str) -> ScoredItem | None:
        envelopes, domains = self._batch(batch_id)
        env = envelopes.get(event_id)
        if env is None or event_id not in domains:
            return None
        s = env.scores
        return ScoredItem("envelope", event_id, domains[event_id],
                          (s.freshness, s.novelty, s.impact, s.confidence, s.gap), env.band,
                          env.weights_version or DEFAULT_VERSION, batch_id)

    def brief(self, brief_id: str) -> ScoredItem | None:
        import numpy as np
        stored = self.briefs.get(brief_id)
        if stored is None:
            return None
        envelopes, _ = self._batch(stored.batch_id)
        mine = [envelopes[e] for e in stored.brief.event_ids if e in envelopes]
        if not mine:
            return None
        mean = np.mean([[e.scores.freshness, e.scores.novelty, e.scores.impact, e.scores.confidence, e.scores.gap]
                        for e in mine], axis=0)
        return ScoredItem("brief", brief_id, stored.domain, tuple(float(x) for x in mean),  # type: ignore[arg-type]
                          stored.band, mine[0].weights_version or DEFAULT_VERSION, stored.batch_id)
