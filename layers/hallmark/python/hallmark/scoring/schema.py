"""Wire models of the scoring flow (seed 003's message schemas, in pydantic v2).

They say the same as the hand-written JSON Schemas in ``events/schemas/`` (draft 2020-12),
which are the contract for producers; ``tests/unit/test_scoring_schema.py`` holds both to it.
Validation is strict: no string-to-number or float-to-int coercion, no unknown top-level fields.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

EMBEDDING_DIM = 768
UUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
SOURCE_PATTERN = r"^[a-z_]+$"

Uuid = Annotated[str, StringConstraints(pattern=UUID_PATTERN)]
Domain = Literal["crypto", "ai"]
Band = Literal["instant", "same_day", "weekly", "archive"]
ImpactLevel = Literal["critical", "high", "medium", "low"]
UnitFloat = Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)]
FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]
Embedding = Annotated[list[FiniteFloat], Field(min_length=EMBEDDING_DIM, max_length=EMBEDDING_DIM)]

BANDS: tuple[Band, ...] = ("instant", "same_day", "weekly", "archive")


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True, defer_build=True)


class ExtractedData(_Strict):
    """What the enricher pulled out of the raw event."""

    entities: list[dict[str, Any]] = Field(default_factory=list)
    metrics: dict[str, FiniteFloat] = Field(default_factory=dict)
    sentiment: Annotated[float, Field(ge=-1.0, le=1.0, allow_inf_nan=False)] | None = None


class EventPayload(_Strict):
    """The event body. ``embeddings`` is one 768-dimensional vector (seed 003 names it plural)."""

    model_config = ConfigDict(strict=True, extra="allow", frozen=True, defer_build=True)

    raw: dict[str, Any] = Field(default_factory=dict)
    extracted: ExtractedData = Field(default_factory=ExtractedData)
    embeddings: Embedding | None = None


class GeoLocation(_Strict):
    latitude: Annotated[float, Field(ge=-90.0, le=90.0)]
    longitude: Annotated[float, Field(ge=-180.0, le=180.0)]
    country_code: Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")]


class EventMetadata(_Strict):
    model_config = ConfigDict(strict=True, extra="allow", frozen=True, defer_build=True)

    content_hash: Annotated[str, StringConstraints(min_length=1, max_length=256)]
    geo_location: GeoLocation | None = None
    language: str | None = None
    processing_time_ms: Annotated[int, Field(ge=0)] | None = None


class EnrichedEvent(_Strict):
    """An event put on the bus by a producer (detail type ``EnrichedEvent``)."""

    event_id: Uuid
    mission_id: Uuid | None = None
    timestamp: Annotated[int, Field(ge=0, description="Unix time in milliseconds")]
    domain: Domain
    source: Annotated[str, StringConstraints(pattern=SOURCE_PATTERN, max_length=64)]
    topic_hints: list[str] = Field(default_factory=list)
    payload: EventPayload
    metadata: EventMetadata

    @property
    def content_hash(self) -> str:
        return self.metadata.content_hash


class EVIScores(_Strict):
    freshness: UnitFloat
    novelty: UnitFloat
    impact: UnitFloat
    confidence: UnitFloat
    gap: UnitFloat


class EVIEnvelope(_Strict):
    """The scorer's verdict on one event."""

    event_id: Uuid
    scores: EVIScores
    total_evi: UnitFloat
    band: Band
    explanations: dict[str, str] = Field(default_factory=dict)
    weights_version: Annotated[str, StringConstraints(max_length=64)] | None = None
    """The EVI weights version that scored it (``hallmark.scoring.weights``; w-0: the defaults)."""


class Evidence(_Strict):
    source: str
    text: str
    confidence: UnitFloat


class Visualization(_Strict):
    type: str
    data: Any = None


class BriefContent(_Strict):
    summary: str = ""
    evidence: list[Evidence] = Field(default_factory=list)
    suggested_actions: list[str] = Field(default_factory=list)
    risk_factors: dict[str, FiniteFloat] = Field(default_factory=dict)
    visualizations: list[Visualization] = Field(default_factory=list)


class BriefPayload(_Strict):
    """A brief built from one or more scored events. Times are Unix milliseconds."""

    brief_id: Uuid
    mission_id: Uuid | None = None
    headline: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    content: BriefContent
    event_ids: Annotated[list[Uuid], Field(min_length=1)]
    impact_level: ImpactLevel
    confidence_score: UnitFloat
    created_at: Annotated[int, Field(ge=0)]
    expires_at: Annotated[int, Field(ge=0)] | None = None
