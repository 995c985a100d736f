"""The cluster plan as an HTML section (``templates/_plan.html``) for the family page and
``report.html``."""

from __future__ import annotations

from jinja2 import TemplateError

from ..rendering import render


def plan_section(doc: dict | None) -> str:
    """The plan held under ``plan`` in a fit document, as HTML; '' when there is none.

    A plan that cannot be shown (a fit.json edited by hand, an older layout) becomes a note
    saying so rather than an error page.
    """
    plan = (doc or {}).get("plan") if isinstance(doc, dict) else None
    if not isinstance(plan, dict):
        return ""
    try:
        return render("_plan.html", plan=plan)
    except (TemplateError, TypeError, ValueError, KeyError) as exc:
        gpu = plan.get("gpu")
        name = gpu.get("name") if isinstance(gpu, dict) else gpu
        note = f"the plan in fit.json could not be shown ({type(exc).__name__}: {exc})"
        return render("_plan.html", plan={"error": note, "gpu": str(name)})
