"""The OpenAPI document as a page: Powertools' own Swagger UI, its script and styles inlined from the
aws_lambda_powertools package (as `enable_swagger` serves them without a `swagger_base_url`), so the
page works offline and loads nothing from a CDN."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aws_lambda_powertools.event_handler.openapi import swagger_ui
from aws_lambda_powertools.event_handler.openapi.swagger_ui import generate_swagger_html

DOCS_PATH = "/docs"
_ASSETS = Path(swagger_ui.__file__).parent


def swagger_page(document: dict[str, Any]) -> str:
    # "</" inside the inlined JSON would end the <script> element early.
    spec = json.dumps(document, ensure_ascii=False).replace("</", "<\\/")
    script = (_ASSETS / "swagger-ui-bundle.min.js").read_text(encoding="utf-8")
    styles = (_ASSETS / "swagger-ui.min.css").read_text(encoding="utf-8")
    return generate_swagger_html(spec, script, styles, swagger_base_url="", oauth2_config=None)
