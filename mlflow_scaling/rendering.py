"""The one HTML renderer: Jinja2 templates in ``mlflow_scaling/templates`` with autoescape on.

The scaling pages (``server/pages.py``) and the self-contained ``report.html``
(``report/html.py``) render through :func:`render`, so every value is escaped by the template
engine rather than by habit at each call site. Templates receive plain data (dicts, lists,
strings, numbers); formatting helpers are registered as filters here, once.
"""

from __future__ import annotations

from functools import cache

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from . import formatting
from .tracking import schema

PHASE_LABELS = {
    schema.PHASE_COLD_START: "cold start",
    schema.PHASE_SCALING: "scaling",
    schema.PHASE_PLATEAU: "plateau",
    schema.PHASE_INVERSE_SCALING: "inverse scaling",
    schema.PHASE_INSUFFICIENT_DATA: "insufficient data",
    schema.PHASE_DATA_LIMITED: "data-limited",
}
PHASE_CLASSES = {
    schema.PHASE_COLD_START: "phase-cold",
    schema.PHASE_SCALING: "phase-scaling",
    schema.PHASE_PLATEAU: "phase-plateau",
    schema.PHASE_INVERSE_SCALING: "phase-inverse",
    schema.PHASE_INSUFFICIENT_DATA: "phase-insufficient",
    schema.PHASE_DATA_LIMITED: "phase-data-limited",
}


@cache
def environment() -> Environment:
    """The shared Jinja2 environment (created once per process)."""
    env = Environment(
        loader=PackageLoader("mlflow_scaling", "templates"),
        autoescape=select_autoescape(enabled_extensions=("html",), default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(formatting.FILTERS)
    env.globals.update(
        MISSING=formatting.MISSING, PHASE_LABELS=PHASE_LABELS, PHASE_CLASSES=PHASE_CLASSES
    )
    return env


def render(template: str, **context) -> str:
    """Render ``template`` (a file name under ``mlflow_scaling/templates``) with ``context``."""
    return environment().get_template(template).render(**context)
