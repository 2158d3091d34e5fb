"""The shapes of released batches, their datasets and quality reports (contract 7.3, 7.4): `GET /batch`,
`GET /batches`."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

from clickstream.models import JsonObject


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


class DatasetView(BaseModel):
    status: Literal["pending", "exporting", "exported", "failed"]
    manifest: str
    exported_at: int | None
    session_count: int | None
    event_count: int | None
    parts: int | None


class BatchView(BaseModel):
    """`GET /batch` (contract 7.4)."""

    batch_id: str
    status: Literal["collecting", "released"]
    opened_at: int | None
    release_id: str | None
    released_at: int | None
    session_count: int | None
    dataset: DatasetView | None
    metrics: QualityReport | None


class BatchList(BaseModel):
    """`GET /batches`: newest first, the collecting batch (if any) first; `next` continues as `before`."""

    batches: list[BatchView]
    next: str | None
