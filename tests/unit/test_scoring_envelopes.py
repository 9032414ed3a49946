"""``envelopes_from`` validates the whole batch of envelopes in one pydantic call: the result must
equal envelope-by-envelope construction, and anything the schema refuses is still refused."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from hallmark.scoring.features import SCORE_NAMES, EventFeatures
from hallmark.scoring.runner import ScoreArrays, envelopes_from
from hallmark.scoring.schema import BANDS, EVIEnvelope, EVIScores


def _events(n: int) -> list[EventFeatures]:
    return [EventFeatures(event_id=f"{i:08x}-0000-4000-8000-000000000000", freshness=0.5, impact=0.5,
                          confidence=0.5, gap=0.5, has_embedding=True) for i in range(n)]


def _arrays(n: int, seed: int = 3) -> ScoreArrays:
    rng = np.random.default_rng(seed)
    scores = rng.random((n, 5), dtype=np.float32)
    if n:
        scores[0] = [0.0, 1.0, 0.0, 1.0, 0.0]  # the bounds themselves are valid
    return ScoreArrays(topk=np.zeros((n, 10), np.float32), novelty=scores[:, 1].copy(), scores=scores,
                       total_evi=rng.random(n, dtype=np.float32), band=rng.integers(0, len(BANDS), n))


def test_same_envelopes_as_validated_construction() -> None:
    events, res = _events(200), _arrays(200)
    fast = envelopes_from(events, res)
    validated = [EVIEnvelope(event_id=ev.event_id, scores=EVIScores(**dict(zip(SCORE_NAMES, s, strict=True))),
                             total_evi=float(t), band=BANDS[int(b)])
                 for ev, s, t, b in zip(events, res.scores.tolist(), res.total_evi, res.band, strict=True)]
    assert fast == validated
    assert [e.model_dump_json() for e in fast] == [e.model_dump_json() for e in validated]
    assert fast[7].total_evi == float(res.total_evi[7]) and fast[7].band == BANDS[int(res.band[7])]
    assert fast[7].scores.gap == float(res.scores[7, 4]) and fast[7].explanations == {}


@pytest.mark.parametrize(("field", "value", "message"), [
    ("scores", 1.0000001, "less than or equal to 1"),
    ("scores", -0.5, "greater than or equal to 0"),
    ("scores", np.nan, "finite number"),
    ("total_evi", np.inf, "finite number"),
    ("band", 4, "Input should be 'instant'"),
    ("band", -1, "Input should be 'instant'"),
])
def test_out_of_range_outputs_are_refused(field: str, value: float, message: str) -> None:
    res = _arrays(5)
    arr = getattr(res, field).copy()
    arr.flat[3] = value
    with pytest.raises(ValidationError, match=message):
        envelopes_from(_events(5), ScoreArrays(**{**res.__dict__, field: arr}))


def test_a_non_uuid_event_id_and_a_count_mismatch_are_refused() -> None:
    events = _events(4)
    events[2] = EventFeatures(event_id="not-a-uuid", freshness=0.5, impact=0.5, confidence=0.5, gap=0.5,
                              has_embedding=True)
    with pytest.raises(ValidationError, match="event_id"):
        envelopes_from(events, _arrays(4))
    with pytest.raises(ValueError, match="do not match 3 events"):
        envelopes_from(_events(3), _arrays(4))
    assert envelopes_from([], _arrays(0)) == []
