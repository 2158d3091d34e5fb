"""The report page (contract 16): Jinja2 templates and SVG charts, outside the domain, which reaches them
through the `ReportPages` port."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


class JinjaReportPages:
    """The page as `clickstream.pages.page` renders it. Jinja2 is imported on the first page only: every
    function builds the service, but only the export's finish step renders, so the others' cold starts
    do not pay for the template engine."""

    def render(self, manifest: Mapping[str, Any], history: Sequence[Mapping[str, Any]]) -> bytes:
        from clickstream.pages.page import render_report  # noqa: PLC0415 - see the class docstring

        return render_report(manifest, history).encode("utf-8")
