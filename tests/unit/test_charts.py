"""The report page's SVG charts (clickstream.pages.charts): each is one titled, labelled <svg>, its marks
where the values put them, its text escaped."""

from __future__ import annotations

import itertools
import re
import xml.etree.ElementTree as ET

from clickstream.pages.charts import BOTTOM, CHAR_WIDTH, HEIGHT, Interval, Series, bar_chart, interval_chart, line_chart

SVG = ""  # inline SVG in HTML needs no namespace, so the page names no URL at all


def parse(markup: str) -> ET.Element:
    return ET.fromstring(markup)  # noqa: S314 - our own output


def test_a_bar_chart_draws_one_bar_per_value_with_heights_in_proportion() -> None:
    svg = parse(bar_chart("bars", "Clicks", ["1", "2", "3"], [30.0, 15.0, None]))
    assert svg.get("role") == "img"
    assert svg.get("aria-label") == "Clicks"
    assert svg.find(f"{SVG}title") is not None
    assert svg.find(f"{SVG}title").text == "Clicks"  # type: ignore[union-attr]
    bars = svg.findall(f"{SVG}rect")
    assert len(bars) == 2  # None draws nothing
    heights = [float(bar.get("height", "0")) for bar in bars]
    assert abs(heights[0] / heights[1] - 2.0) < 0.01
    assert [bar.find(f"{SVG}title").text for bar in bars] == ["1: 30", "2: 15"]  # type: ignore[union-attr]


def test_text_in_a_chart_is_escaped() -> None:
    markup = bar_chart("x", '<script>alert(1)</script> "q"', ["<b>1</b>"], [1.0])
    assert "<script>" not in markup
    assert "<b>" not in markup
    svg = parse(markup)
    assert svg.get("aria-label") == '<script>alert(1)</script> "q"'


def test_a_line_chart_breaks_where_a_value_is_missing_and_has_a_legend() -> None:
    series = [Series("CTR", [0.1, 0.2, None, 0.4, 0.5]), Series("MRR", [0.3, None, None, None, None])]
    svg = parse(line_chart("trend", "Trend", ["a", "b", "c", "d", "e"], series))
    lines = svg.findall(f"{SVG}polyline")
    assert [len(line.get("points", "").split()) for line in lines] == [2, 2]
    (lone,) = svg.findall(f"{SVG}circle")  # MRR's lone value is a point, in MRR's colour
    assert lone.get("fill") == svg.findall(f"{SVG}rect")[1].get("fill") != svg.findall(f"{SVG}rect")[0].get("fill")
    assert [text.text for text in svg.findall(f"{SVG}text") if text.get("class") == "legend"] == ["CTR", "MRR"]


def test_a_higher_value_is_drawn_higher() -> None:
    svg = parse(line_chart("up", "Up", ["a", "b"], [Series("s", [1.0, 2.0])]))
    points = [tuple(map(float, point.split(","))) for point in svg.find(f"{SVG}polyline").get("points", "").split()]  # type: ignore[union-attr]
    assert points[0][0] < points[1][0]
    assert points[1][1] < points[0][1] < HEIGHT  # SVG's y grows downwards


def test_an_interval_chart_draws_each_interval_around_its_point() -> None:
    intervals = [Interval("control", 0.4, 0.3, 0.5), Interval("b", 0.6, 0.5, 0.7), Interval("c", 0.2, None, None)]
    svg = parse(interval_chart("ci", "CTR", intervals))
    bars = svg.findall(f"{SVG}g")
    assert len(bars) == 2  # no interval, no error bar
    points = svg.findall(f"{SVG}circle")
    assert len(points) == 3
    for bar, point in zip(bars, points, strict=False):
        stem = bar.findall(f"{SVG}line")[0]
        low, high = float(stem.get("y1", "0")), float(stem.get("y2", "0"))
        assert high < float(point.get("cy", "0")) < low
        assert stem.get("x1") == point.get("cx")


def test_labels_are_thinned_so_thirty_releases_do_not_overlap() -> None:
    labels = [f"2026-01-{day:02d}" for day in range(1, 31)]
    svg = parse(line_chart("t", "T", labels, [Series("s", [0.5] * 30)]))
    shown = [text for text in svg.findall("text") if text.text and re.fullmatch(r"2026-01-\d\d", text.text)]
    assert shown[-1].text == "2026-01-30"
    assert len(shown) >= 5
    centers = [float(text.get("x", "0")) for text in shown]
    gaps = [right - left for left, right in itertools.pairwise(centers)]
    assert min(gaps) >= len("2026-01-01") * CHAR_WIDTH  # room for each label


def test_short_labels_are_all_shown() -> None:
    svg = parse(bar_chart("h", "H", [str(position) for position in range(1, 13)], [1.0] * 12))
    assert [text.text for text in svg.findall("text") if text.get("y") == str(HEIGHT - BOTTOM + 16)] == [
        str(position) for position in range(1, 13)
    ]
