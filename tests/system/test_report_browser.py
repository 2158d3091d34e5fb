"""The report page in a real browser (contract 16): headless Chromium renders the page of a real export
(sessions registered through the HTTP API with experiments and clicks, released, exported by the real
export steps, the page read from the lake and served by GET /batch/report) at desktop and phone width and
to an A4 PDF. It fails on a console error (the page's CSP makes Chromium report any fetch as one), on a
URL leaving the page, on a missing chart, and on a query rendering as markup.

Screenshots and the PDF are kept under tmp/artifacts/report-browser/ (ignored by git; the path is printed).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import pytest
import requests

from clickstream.service import Clickstream
from tests.support import new_session_body
from tests.support.datasets import run_export

ARTIFACTS = Path(__file__).resolve().parents[2] / "tmp" / "artifacts" / "report-browser"
HOSTILE = '<script>alert(1)</script> "quotes"'
A4_POINTS = (595, 842)  # 210 x 297 mm
TIMEOUT = 30
FLAGS = [
    "--headless",
    "--no-sandbox",  # as root here
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--host-resolver-rules=MAP * ~NOTFOUND",  # nothing resolves: a fetch can only fail, and is logged
    "--enable-logging=stderr",
    "--v=0",
]


def chromium_binary() -> str:
    """Debian's chromium, installed when missing where we may (root); else a loud skip."""
    found = shutil.which("chromium")
    if found is None and os.geteuid() == 0 and shutil.which("apt-get"):
        for command in (["apt-get", "update"], ["apt-get", "install", "-y", "chromium"]):
            subprocess.run(command, check=False, capture_output=True, timeout=900)  # noqa: S603
        found = shutil.which("chromium")
    if found is None:
        pytest.skip("SKIPPED LOUDLY: Debian's chromium is not installed and cannot be installed here (not root)")
    return found


@dataclass
class Rendered:
    output: str
    log: str


def chromium(binary: str, page: Path, *arguments: str) -> Rendered:
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        result = subprocess.run(  # noqa: S603 - the browser under test, on our own file
            [binary, *FLAGS, f"--user-data-dir={profile}", *arguments, page.as_uri()],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert result.returncode == 0, result.stderr[-2000:]
    return Rendered(result.stdout, result.stderr)


def console_errors(log: str) -> list[str]:
    """Messages the page put on the console (Chromium logs each as a CONSOLE line), and failed loads."""
    return [line for line in log.splitlines() if ":CONSOLE" in line or "net::ERR_" in line]


class Elements(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.urls: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.urls += [value or "" for name, value in attrs if name in ("src", "href", "xlink:href", "action")]

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def page_size_points(pdf: bytes) -> set[tuple[int, int]]:
    """The page sizes a PDF declares (each /MediaBox), rounded to points."""
    boxes = re.findall(rb"/MediaBox\s*\[\s*([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s*\]", pdf)
    return {(round(float(x1) - float(x0)), round(float(y1) - float(y0))) for x0, y0, x1, y1 in boxes}


@pytest.fixture(scope="module")
def binary() -> str:
    return chromium_binary()


@pytest.fixture
def artifacts() -> Iterator[Path]:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    yield ARTIFACTS
    print(f"\nreport page screenshots and PDF: {ARTIFACTS}")


def exported_page(url: str, http: requests.Session, service: Clickstream) -> tuple[str, Path]:
    """A real export's page: sessions through the API (an experiment with an interleaved variant, clicks,
    a hostile query, one without results), released, exported; the page's text as GET /batch/report
    serves it, and its file in the lake."""
    for n in range(12):
        variant = "control" if n % 2 else "b"
        results = [{"object_id": f"shoe-{k}", "team": variant if k % 2 else "control"} for k in range(1, 6)]
        body = new_session_body(
            f"page-{n}",
            search_query=HOSTILE if n < 4 else f"shoes {n % 3}",
            search_results=[] if n == 11 else results,
            experiment={"id": "ranker-v7", "variant": variant},
        )
        assert http.post(f"{url}/session", json=body, timeout=TIMEOUT).status_code == 200
        if n % 3 != 0:
            clicks = {"session_id": f"page-{n}", "events": [{"event_id": "c1", "object_id": f"shoe-{1 + n % 4}"}]}
            assert http.post(f"{url}/session/events", json=clicks, timeout=TIMEOUT).status_code == 200
    release = http.post(f"{url}/batch/release", json={"release_id": "release-page"}, timeout=TIMEOUT).json()
    lake = Path(service.settings.lake_dir)
    run_export(service, lake, "release-page")
    served = http.get(f"{url}/batch/report", params={"batch_id": release["batch_id"]}, timeout=TIMEOUT)
    assert served.status_code == 200
    assert served.headers["content-type"].startswith("text/html")
    path = lake / f"reports/batch_id={release['batch_id']}/report.html"
    assert served.text == path.read_text(encoding="utf-8")
    return served.text, path


def test_a_real_export_s_page_renders_in_chromium_self_contained_on_desktop_phone_and_a4(
    binary: str, artifacts: Path, local_api: str, http: requests.Session, service: Clickstream
) -> None:
    html, page = exported_page(local_api, http, service)
    expected_charts = html.count('<svg class="chart"')
    assert expected_charts >= 2  # the histogram and the trend at least; more with click model and experiments

    dom = chromium(binary, page, "--dump-dom")
    assert console_errors(dom.log) == []
    elements = Elements()
    elements.feed(dom.output)
    assert elements.tags.count("svg") == expected_charts
    assert "script" not in elements.tags  # the hostile query is text
    assert HOSTILE in "".join(elements.text)
    assert elements.urls == []
    assert not re.search(r"https?://", dom.output)

    for name, width in (("desktop", 1280), ("phone", 390)):
        shot = artifacts / f"report-{name}.png"
        shot.unlink(missing_ok=True)
        rendered = chromium(binary, page, f"--window-size={width},2400", f"--screenshot={shot}")
        assert console_errors(rendered.log) == []
        assert shot.stat().st_size > 10_000  # a page was drawn, not a blank

    pdf = artifacts / "report.pdf"
    pdf.unlink(missing_ok=True)
    printed = chromium(binary, page, f"--print-to-pdf={pdf}", "--no-pdf-header-footer")
    assert console_errors(printed.log) == []
    assert page_size_points(pdf.read_bytes()) == {A4_POINTS}


def test_the_checks_catch_a_page_that_fetches(binary: str, tmp_path: Path) -> None:
    """The console check is not vacuous: the same CSP makes an outside image a console error."""
    page = tmp_path / "fetching.html"
    page.write_text(
        '<!DOCTYPE html><meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        'style-src \'unsafe-inline\'; img-src data:"><p>x</p><img src="http://example.invalid/x.png">',
        encoding="utf-8",
    )
    rendered = chromium(binary, page, "--dump-dom")
    assert any("example.invalid" in line for line in console_errors(rendered.log))
