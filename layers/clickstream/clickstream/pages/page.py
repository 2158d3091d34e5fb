"""The report page of an export (contract 16): the manifest and the previous releases' reports, rendered by
Jinja2 (autoescaping on: queries are user input) into one self-contained HTML page.

Sections whose data a manifest does not carry (`click_model`, `experiments`: added by later exports) are
rendered as "not available for this batch" rather than left out, so a reader knows what is missing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from clickstream.pages.charts import Interval, Series, bar_chart, interval_chart, line_chart

TREND_RELEASES = 30
NO_VALUE = "\u2013"  # an en dash
HISTOGRAM_KEYS = [*(str(position) for position in range(1, 11)), "11-20", "21+"]

_environment = Environment(
    loader=PackageLoader("clickstream.pages", "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


@dataclass(frozen=True)
class Headline:
    """One headline figure: `key` in the report, how to show it, and whether a rise is good news."""

    key: str
    name: str
    kind: str  # "count", "rate" (a fraction shown as %), "number", "ms"
    higher_is_better: bool | None


HEADLINES = (
    Headline("sessions", "Sessions", "count", None),
    Headline("click_through_rate", "Click-through rate", "rate", True),
    Headline("mean_reciprocal_rank", "Mean reciprocal rank", "number", True),
    Headline("no_results_rate", "No-results rate", "rate", False),
    Headline("mean_click_position", "Mean click position", "number", False),
    Headline("median_time_to_first_click_ms", "Median time to first click", "ms", False),
)


def show(value: float | None, kind: str) -> str:
    """A figure as the page prints it; an empty denominator is a dash."""
    if value is None:
        return NO_VALUE
    if kind == "rate":
        return f"{value * 100:.1f}%"
    if kind == "count":
        return f"{int(value):,}"
    if kind == "ms":
        return f"{value / 1000:.2f} s" if value >= 1000 else f"{value:.0f} ms"
    return f"{value:.3f}"


def change(now: float | None, before: float | None, headline: Headline) -> dict[str, str] | None:
    """The change against the previous release, and whether it is good news (`tone`)."""
    if now is None or before is None:
        return None
    delta = now - before
    if headline.kind == "rate":
        text = f"{delta * 100:+.1f} pp"
    elif headline.kind == "count":
        text = f"{int(delta):+,}"
    elif headline.kind == "ms":
        text = f"{delta:+.0f} ms"
    else:
        text = f"{delta:+.3f}"
    tone = "same" if delta == 0 or headline.higher_is_better is None else "up" if delta > 0 else "down"
    if tone != "same" and headline.higher_is_better is not None:
        tone = "good" if (delta > 0) == headline.higher_is_better else "bad"
    return {"text": text, "tone": tone}


def query_text(query: Any) -> str:
    """A query as sent: a string as it is, any other JSON value as its compact JSON text."""
    return query if isinstance(query, str) else json.dumps(query, separators=(",", ":"), ensure_ascii=False)


def _when(ms: int | None) -> str:
    return NO_VALUE if ms is None else datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _headlines(metrics: Mapping[str, Any], previous: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    return [
        {
            "name": headline.name,
            "value": show(metrics.get(headline.key), headline.kind),
            "change": None
            if previous is None
            else change(metrics.get(headline.key), previous.get(headline.key), headline),
        }
        for headline in HEADLINES
    ]


def _histogram(metrics: Mapping[str, Any]) -> dict[str, Any]:
    counts = metrics.get("click_position_histogram") or {}
    values = [float(counts.get(key, 0)) for key in HISTOGRAM_KEYS]
    chart = bar_chart("click-positions", "Clicks by position in the results", HISTOGRAM_KEYS, values)
    return {"chart": chart, "rows": [(key, int(counts.get(key, 0))) for key in HISTOGRAM_KEYS]}


def _examination(click_model: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """PBM's examination curve against the raw click rate by position, both relative to position 1 (PBM fixes
    examination(1) = 1): where the raw rate falls faster than examination, the old ranking, not the
    position, made the lower results less clicked."""
    if not click_model or not click_model.get("examination"):
        return None
    examination = click_model["examination"]
    positions = [str(position) for position in range(1, 21) if str(position) in examination]
    rates = click_model.get("click_rate") or {}
    first = rates.get("1") or 0
    model = [examination.get(key) for key in positions]
    raw = [rates[key] / first if first and rates.get(key) is not None else None for key in positions]
    series = [Series("Examination (PBM)", model), Series("Raw click rate, relative to position 1", raw)]
    chart = line_chart("examination", "Examination by position against the raw click rate", positions, series)
    rows = [(key, model[index], raw[index]) for index, key in enumerate(positions)]
    return {"chart": chart, "rows": rows, "model": click_model.get("model", "pbm"), "fit": click_model}


def _experiment(experiment: Mapping[str, Any]) -> dict[str, Any]:
    variants = experiment.get("variants") or []
    charts = {}
    for metric, name in (("click_through_rate", "CTR"), ("mean_reciprocal_rank", "MRR")):
        intervals = [
            Interval(str(variant["variant"]), *(_bound(variant.get(metric), part) for part in ("value", "low", "high")))
            for variant in variants
        ]
        chart_id = f"experiment-{experiment.get('id')}-{metric}"
        title = f"{name} per variant with 95% intervals: {experiment.get('id')}"
        charts[metric] = interval_chart(chart_id, title, intervals)
    return {"experiment": experiment, "charts": charts}


def _bound(estimate: Mapping[str, Any] | None, part: str) -> float | None:
    return None if estimate is None else estimate.get(part)


def _trend(manifest: Mapping[str, Any], history: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    releases = [*reversed(history[: TREND_RELEASES - 1]), {"batch_id": manifest["batch_id"], **manifest}]
    labels = [_when(release.get("released_at"))[:10] for release in releases]
    ctr = [(release.get("metrics") or {}).get("click_through_rate") for release in releases]
    mrr = [(release.get("metrics") or {}).get("mean_reciprocal_rank") for release in releases]
    chart = line_chart(
        "trend", f"CTR and MRR over the last {len(releases)} releases", labels, [Series("CTR", ctr), Series("MRR", mrr)]
    )
    rows = [(release["batch_id"], labels[index], ctr[index], mrr[index]) for index, release in enumerate(releases)]
    return {"chart": chart, "rows": list(reversed(rows))}


def render_report(manifest: Mapping[str, Any], history: Sequence[Mapping[str, Any]]) -> str:
    """The page of the export whose manifest is given; `history`: the earlier exported releases, newest first,
    each `{"batch_id", "released_at", "metrics"}` (the first is the previous release)."""
    metrics = manifest.get("metrics") or {}
    previous = history[0] if history else None
    experiments = manifest.get("experiments")
    return _environment.get_template("report.html.j2").render(
        manifest=manifest,
        released=_when(manifest.get("released_at")),
        exported=_when(manifest.get("exported_at")),
        previous=previous,
        previous_released=_when(previous.get("released_at")) if previous else None,
        headlines=_headlines(metrics, (previous or {}).get("metrics")),
        histogram=_histogram(metrics),
        examination=_examination(manifest.get("click_model")),
        no_click=[(query_text(item["query"]), item["sessions"]) for item in metrics.get("top_no_click_queries", [])],
        no_results=[
            (query_text(item["query"]), item["sessions"]) for item in metrics.get("top_no_results_queries", [])
        ],
        experiments=None if experiments is None else [_experiment(item) for item in experiments],
        trend=_trend(manifest, history),
        show=show,
    )
