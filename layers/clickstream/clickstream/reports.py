"""The shapes of released batches, their datasets, quality reports and click models (contract 7.3, 7.4,
14.3): `GET /batch`, `GET /batches`."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from clickstream.fields import JsonObject


class QueryCount(BaseModel):
    query: str | JsonObject
    sessions: int


class QualityReport(BaseModel):
    """A released batch's search-quality report (contract 7.3). Rates are fractions; null: no denominator."""

    sessions: int
    events: int
    clicks: int
    click_through_rate: float | None
    no_click_rate: float | None
    no_results_rate: float | None
    mean_reciprocal_rank: float | None
    mean_click_position: float | None
    click_position_histogram: dict[str, int]
    irrelevant_rate: float | None
    payload_search_rate: float | None
    median_time_to_first_click_ms: float | None  # statistics.median as a float (also for reports stored as an int)
    top_no_click_queries: list[QueryCount]
    top_no_results_queries: list[QueryCount]
    top_queries_truncated: bool = False


class Estimate(BaseModel):
    """A figure with its 95 % interval; null where it has no denominator (an interval: fewer than 2 sessions)."""

    value: float | None
    low: float | None
    high: float | None


class VariantReport(BaseModel):
    variant: str
    sessions: int
    sessions_with_results: int = Field(description="Sessions with results that are not interleaved")
    click_through_rate: Estimate = Field(description="Wilson score interval")
    mean_reciprocal_rank: Estimate = Field(description="mean +- z s / sqrt(n)")


class Comparison(BaseModel):
    """A variant against the baseline: `difference` = variant - baseline, its interval and two-sided p-value."""

    variant: str
    baseline: str
    metric: Literal["click_through_rate", "mean_reciprocal_rank"]
    difference: float | None
    low: float | None
    high: float | None
    p_value: float | None


class InterleavingReport(BaseModel):
    """Team-draft interleaving credit: each session with a click on a teamed result is a win or a tie."""

    sessions: int = Field(description="Interleaved sessions, counted or not")
    teams: list[str]
    wins: dict[str, int]
    ties: int
    preference: float | None = Field(description="(wins of the second team - wins of the first) / (wins + ties)")
    p_value: float | None = Field(description="Two-sided exact sign test on the two teams' wins")


class ExperimentReport(BaseModel):
    """One experiment of a batch (contract 15.2)."""

    id: str
    sample_ratio_p_value: float | None = Field(description="Chi-square test of the variants' sessions: equal split")
    variants: list[VariantReport]
    comparisons: list[Comparison]
    interleaving: InterleavingReport | None


class ExperimentAcrossBatches(ExperimentReport):
    """`GET /experiment` (contract 15.3): the experiment over every exported batch that has it."""

    batches: list[str]


class ModelScore(BaseModel):
    """A model scored on the held-out sessions (contract 14.4); null when none were held out."""

    model_config = ConfigDict(extra="allow")

    log_likelihood: float | None
    perplexity: float | None


class HeldOut(BaseModel):
    model_config = ConfigDict(extra="allow")

    sessions: int
    impressions: int
    models: dict[str, ModelScore]


class ClickModel(BaseModel):
    """The click models fitted on a released batch (contract 14.3): PBM's examination by position
    ("1".."20", null where nothing was shown) beside the raw click rate there, its fit, and every model's
    held-out score."""

    model_config = ConfigDict(extra="allow")

    model: str
    sessions: int
    impressions: int
    iterations: int
    converged: bool
    examination: dict[str, float | None]
    click_rate: dict[str, float | None] | None = None  # None on batches judged before it was published
    held_out: HeldOut


class JudgmentsFile(BaseModel):
    """The batch's judgments (contract 14.3): gzip JSON Lines, one line per (query, object) pair."""

    uri: str
    pairs: int
    bytes: int
    sha256: str


class DatasetView(BaseModel):
    status: Literal["pending", "exporting", "exported", "failed"]
    manifest: str
    exported_at: int | None
    session_count: int | None
    event_count: int | None
    parts: int | None
    judgments: JudgmentsFile | None  # null for datasets exported before judgments were written
    report: str | None = None  # the report page's URI (contract 16), once exported


class BatchView(BaseModel):
    """`GET /batch` (contract 7.4)."""

    batch_id: str
    status: Literal["collecting", "released"]
    opened_at: int | None
    release_id: str | None
    released_at: int | None
    session_count: int | None
    erased_sessions: int = Field(
        default=0, description="Sessions of the batch erased since (contract 17.4), not counted in session_count"
    )
    dataset: DatasetView | None
    metrics: QualityReport | None
    experiments: list[ExperimentReport] | None = Field(
        description="One entry per experiment id in the batch, ascending (null until exported)"
    )
    experiments_truncated: bool = Field(
        default=False, description="Experiments were left off this record for its size; the manifest has them all"
    )
    click_model: ClickModel | None


class BatchList(BaseModel):
    """`GET /batches`: newest first, the collecting batch (if any) first; `next` continues as `before`."""

    batches: list[BatchView]
    next: str | None
