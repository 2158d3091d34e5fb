"""Small SVG charts for the report page: bars, lines and points with error bars.

Each chart is one `<svg role="img">` with a `<title>` (the chart's name) and an `aria-label`, sized by its
viewBox so it scales to the page's width. Every text that reaches the markup is escaped here, so a chart is
returned as `Markup` the template inserts as it is. Values may be None (no denominator): a bar or point
is then left out, a line is broken there.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

WIDTH = 640
HEIGHT = 260
LEFT, RIGHT, TOP, BOTTOM = 48, 40, 16, 52  # room for the axes' labels and, below them, a legend
CHAR_WIDTH = 6.5  # of an 11px tick label, generously
PALETTE = ("#2563eb", "#d97706", "#059669", "#db2777", "#7c3aed", "#0891b2")


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[float | None]


@dataclass(frozen=True)
class Interval:
    """A value and its interval (low..high), as 15.2 gives them; any of the three may be None."""

    label: str
    value: float | None
    low: float | None
    high: float | None


def _number(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _label(value: float) -> str:
    return f"{value:.3g}"


def _markup(parts: list[str]) -> Markup:
    """The chart as markup the template inserts unescaped: every text in `parts` went through escape()."""
    return Markup("".join(parts))  # noqa: S704 # nosec B704


def _open(chart_id: str, title: str) -> list[str]:
    return [
        f'<svg class="chart" id="{escape(chart_id)}" role="img" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
    ]


def _scale_top(values: Sequence[float | None]) -> float:
    """The y axis' top: the largest value (at least 1e-9, so an all-zero chart still draws), plus a margin."""
    present = [value for value in values if value is not None]
    return max(max(present, default=0.0), 1e-9) * 1.1


def _y(value: float, top: float) -> float:
    return TOP + (HEIGHT - TOP - BOTTOM) * (1 - value / top)


def _axes(top: float) -> list[str]:
    base = HEIGHT - BOTTOM
    lines = [
        f'<line class="axis" x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{base}"/>',
        f'<line class="axis" x1="{LEFT}" y1="{base}" x2="{WIDTH - RIGHT}" y2="{base}"/>',
    ]
    for fraction in (0.0, 0.5, 1.0):
        value = top / 1.1 * fraction
        y = _number(_y(value, top))
        lines.append(f'<text class="tick" x="{LEFT - 6}" y="{y}" text-anchor="end">{escape(_label(value))}</text>')
    return lines


def _x_labels(labels: Sequence[str], centers: Sequence[float]) -> list[str]:
    """Every label that fits: as many as the widest label (at about CHAR_WIDTH a character) leaves room for."""
    widest = max((len(label) for label in labels), default=1) * CHAR_WIDTH + 8
    room = max(1, int((WIDTH - LEFT - RIGHT) // widest))
    every = -(-len(labels) // room)  # ceiling: labels never overlap
    return [
        f'<text class="tick" x="{_number(x)}" y="{HEIGHT - BOTTOM + 16}" text-anchor="middle">{escape(label)}</text>'
        for index, (label, x) in enumerate(zip(labels, centers, strict=True))
        if (len(labels) - 1 - index) % every == 0  # counted from the last: the newest release is labelled
    ]


def _centers(count: int) -> list[float]:
    step = (WIDTH - LEFT - RIGHT) / max(count, 1)
    return [LEFT + step * (index + 0.5) for index in range(count)]


def bar_chart(chart_id: str, title: str, labels: Sequence[str], values: Sequence[float | None]) -> Markup:
    """One bar per label; None draws no bar."""
    top = _scale_top(values)
    centers = _centers(len(labels))
    width = (WIDTH - LEFT - RIGHT) / max(len(labels), 1) * 0.7
    parts = [*_open(chart_id, title), *_axes(top)]
    for label, value, x in zip(labels, values, centers, strict=True):
        if value is None:
            continue
        y = _y(value, top)
        parts.append(
            f'<rect class="bar" x="{_number(x - width / 2)}" y="{_number(y)}" width="{_number(width)}" '
            f'height="{_number(HEIGHT - BOTTOM - y)}"><title>{escape(label)}: {escape(_label(value))}</title></rect>'
        )
    parts += [*_x_labels(labels, centers), "</svg>"]
    return _markup(parts)


def line_chart(chart_id: str, title: str, labels: Sequence[str], series: Sequence[Series]) -> Markup:
    """One polyline per series over the same x labels, with a legend; a None breaks the line."""
    top = _scale_top([value for line in series for value in line.values])
    centers = _centers(len(labels))
    parts = [*_open(chart_id, title), *_axes(top)]
    for index, line in enumerate(series):
        colour = PALETTE[index % len(PALETTE)]
        for run in _runs(line.values, centers, top):
            if len(run) == 1:
                x, y = run[0]
                parts.append(f'<circle class="marker" cx="{x}" cy="{y}" r="3" fill="{colour}"/>')
            else:
                points = " ".join(f"{x},{y}" for x, y in run)
                parts.append(f'<polyline class="line" fill="none" stroke="{colour}" points="{points}"/>')
        legend_x = LEFT + 260 * index  # below the x labels, side by side
        parts.append(
            f'<rect x="{legend_x}" y="{HEIGHT - 16}" width="10" height="10" fill="{colour}"/>'
            f'<text class="legend" x="{legend_x + 15}" y="{HEIGHT - 7}">{escape(line.name)}</text>'
        )
    parts += [*_x_labels(labels, centers), "</svg>"]
    return _markup(parts)


def _runs(values: Sequence[float | None], centers: Sequence[float], top: float) -> list[list[tuple[str, str]]]:
    """The points of a line, cut where a value is missing."""
    runs: list[list[tuple[str, str]]] = [[]]
    for value, x in zip(values, centers, strict=True):
        if value is None:
            runs.append([])
        else:
            runs[-1].append((_number(x), _number(_y(value, top))))
    return [run for run in runs if run]


def interval_chart(chart_id: str, title: str, intervals: Sequence[Interval]) -> Markup:
    """A point per label with its interval as an error bar (whiskers at low and high)."""
    top = _scale_top([bound for item in intervals for bound in (item.value, item.high)])
    centers = _centers(len(intervals))
    parts = [*_open(chart_id, title), *_axes(top)]
    for item, x in zip(intervals, centers, strict=True):
        if item.low is not None and item.high is not None:
            low, high = _number(_y(item.low, top)), _number(_y(item.high, top))
            left, right = _number(x - 8), _number(x + 8)
            parts.append(
                f'<g class="error-bar"><line x1="{_number(x)}" y1="{low}" x2="{_number(x)}" y2="{high}"/>'
                f'<line x1="{left}" y1="{low}" x2="{right}" y2="{low}"/>'
                f'<line x1="{left}" y1="{high}" x2="{right}" y2="{high}"/></g>'
            )
        if item.value is not None:
            parts.append(
                f'<circle class="point" cx="{_number(x)}" cy="{_number(_y(item.value, top))}" r="4">'
                f"<title>{escape(item.label)}: {escape(_label(item.value))}</title></circle>"
            )
    parts += [*_x_labels([item.label for item in intervals], centers), "</svg>"]
    return _markup(parts)
