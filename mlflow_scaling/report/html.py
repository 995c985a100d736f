"""``scaling/report.html``: one self-contained page per fit, rendered from ``report.html``.

Everything is inline (the figure as a base64 PNG, the shared style sheet in the page), so the
MLflow UI's artifact view shows it as it is. The template set is the one of the scaling pages
(autoescape on, the same macros), so a run or family named ``<script>…</script>`` shows up as
text; and the page's Content-Security-Policy forbids scripts altogether (``script-src 'none'``).
"""

from __future__ import annotations

import base64
from typing import Any

from markupsafe import Markup

from ..planning.section import plan_section
from ..rendering import render

CSP = "default-src 'none'; script-src 'none'; img-src data:; style-src 'unsafe-inline'"


def report_html(doc: dict[str, Any], png: bytes | None = None) -> str:
    """The report page of a fit document, with ``png`` (the figure) inlined."""
    figure = f"data:image/png;base64,{base64.b64encode(png).decode('ascii')}" if png else None
    plan = Markup(plan_section(doc))  # rendered by _plan.html, escaped there
    return render("report.html", doc=doc, figure=figure, csp=CSP, plan=plan)
