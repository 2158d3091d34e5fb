"""The report page (contract 16) rendered from manifests in the exact shapes of 7.3, 14.3 and 15.2: every
section from the manifest when present, a clear note when absent, user input never markup, nothing fetched."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from clickstream.pages.page import render_report
from tests.support.report_fixtures import HOSTILE_QUERY, click_model, experiment, history, manifest


class Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parsed(html: str) -> Tags:
    tags = Tags()
    tags.feed(html)
    return tags


def full_page() -> str:
    return render_report(manifest(click_model=click_model(), experiments=[experiment()]), history(3))


def test_a_query_is_text_never_markup() -> None:
    html = full_page()
    tags = parsed(html)
    assert "script" not in tags.tags
    assert "b" not in tags.tags
    assert "i" not in tags.tags
    assert HOSTILE_QUERY in "".join(tags.text)  # shown as sent
    assert "ranker-<v7>" in "".join(tags.text)  # experiment ids too
    assert '{"text":"shoe"}' in "".join(tags.text)  # an object query as its compact JSON


def test_every_chart_is_there_with_a_title_and_a_text_alternative() -> None:
    html = full_page()
    charts = re.findall(r"<svg [^>]*>\s*<title>([^<]+)</title>", html)
    assert len(charts) == 5, charts  # histogram, examination, CTR and MRR of the experiment, trend
    assert html.count('role="img"') == 5
    assert html.count("<details>") == 5  # a data table for each


def test_sections_without_data_say_so() -> None:
    html = render_report(manifest(), [])
    assert "the click model is not available for this batch" in html
    assert "Experiments are not available for this batch" in html
    assert "No earlier exported release to compare with" in html
    assert html.count("<svg") == 2  # the histogram and the trend of this one release
    empty = render_report(manifest(experiments=[]), [])
    assert "No session of this batch named an experiment" in empty


def test_headlines_show_the_change_against_the_previous_release() -> None:
    earlier = history(2)  # the newest earlier release has CTR 0.31 (fixture), this one 0.5
    html = render_report(manifest(), earlier)
    assert earlier[0]["batch_id"] in html
    assert "+19.0 pp since previous" in html
    assert re.search(r'class="change good">\+19\.0 pp', html)
    assert "+10 since previous" in html  # sessions 100 against 90


def test_the_trend_shows_at_most_thirty_releases_this_one_last() -> None:
    html = render_report(manifest(), history(40))
    assert "CTR and MRR over the last 30 releases" in html
    table = html[html.index('id="trend-title"') :]
    rows = re.findall(r"<tr><td class=\"query\">(b-[^<]+)</td>", table)
    assert len(rows) == 30
    assert rows[0] == manifest()["batch_id"]  # the table lists newest first


def test_the_page_is_self_contained_phone_ready_and_printable() -> None:
    html = full_page()
    assert "default-src 'none'; style-src 'unsafe-inline'; img-src data:" in html
    assert not re.search(r"(?:src|href)\s*=", html)
    assert "http://" not in html
    assert "https://" not in html
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html
    assert "@page { size: A4" in html
    assert "@media print" in html


def test_the_raw_curve_is_the_click_rate_relative_to_position_one_and_none_where_nothing_was_shown() -> None:
    model = click_model()
    model["examination"].update({str(position): None for position in range(6, 21)})
    model["click_rate"] = {str(position): None for position in range(1, 21)} | {"1": 0.4, "2": 0.3, "3": 0.1}
    html = render_report(manifest(click_model=model), [])
    table = html[html.index("Raw click rate (rel. to 1)") :]
    rows = re.findall(r"<tr><td>(\d+)</td><td class=\"n\">([^<]+)</td><td class=\"n\">([^<]+)</td></tr>", table)
    assert rows[0] == ("1", "1.000", "1.000")
    assert rows[1][2] == f"{0.3 / 0.4:.3f}"  # the click rate at 2 over the one at 1
    assert rows[5] == ("6", "\u2013", "\u2013")
