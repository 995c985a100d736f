"""The scaling pages' HTML without a server: tolerant of odd fit documents, always escaped.

The live-server tests are in ``test_server_pages.py``; these check what is hard to provoke
there: a ``fit.json`` with keys missing or of the wrong type, a family without a fit run,
names that are not safe as URL paths, and the route table of the Flask app.
"""

from __future__ import annotations

import re
import urllib.parse

import pytest
from _html_check import assert_valid_html
from flask import Flask

from mlflow_scaling.formatting import as_float
from mlflow_scaling.server import data
from mlflow_scaling.server.app import register_routes
from mlflow_scaling.server.data import FamilyDetail, FamilySummary, History, Span, dig
from mlflow_scaling.server.pages import (
    MISSING,
    Links,
    fmt_sci,
    fmt_span,
    render_family,
    render_index,
)
from mlflow_scaling.tracking import schema
from mlflow_scaling.tracking.reading import ExcludedRun, ExperimentRef, MemberPoint

EVIL = "<script>alert(1)</script>\"'&"


def _summary(name: str = EVIL, fitted: bool = True) -> FamilySummary:
    s = FamilySummary(
        experiment=ExperimentRef("7", "<b>exp</b>"),
        name=name,
        members=1,
        excluded=1,
        n_span=Span(1e7, 1e9),
        d_span=Span(1e9, 1e9),
        c_span=None,
    )
    if fitted:
        s.fit_run_id = "run<1>"
        s.fit = {"alpha": 0.34, "beta": 0.28, "E": 1.69}
        s.phase = "<i>weird-phase</i>"
        s.check = "pass"
        s.refit_number = 3
        s.refitted_ms = 1_700_000_000_000
        s.fit_error = "<img src=x onerror=alert(3)>"
        s.digest = ""
    return s


def _detail(doc: object, fitted: bool = True) -> FamilyDetail:
    d = FamilyDetail(
        summary=_summary(fitted=fitted),
        members=[MemberPoint("r1", "<u>run</u>", 1e7, 1e9, 6e16, "flops", 3.2, "<loss>", 0, None)],
        excluded=[ExcludedRun("r2", "<s>x</s>", "FAILED", "run failed <oops>")],
    )
    if fitted:
        d.doc = doc if isinstance(doc, dict) else None
        d.doc_problem = None if isinstance(doc, dict) else "scaling/fit.json is not an object"
        d.artifacts = {"scaling/fit.png", "scaling/fit.json"}
        d.predictions = (["flops", "<h>"], [["1e20", "<td>x</td>"], ["nan", ""]])
        d.history = [History("alpha", [(1, 1_700_000_000_000, 0.33), (2, 1_700_000_100_000, 0.34)])]
    return d


ODD_DOCS = [
    {},
    {"phases": "not a dict", "check": ["not", "a", "dict"], "approach3": None},
    {
        "status": "<b>fitted</b>",
        "reason": "<script>x()</script>",
        "approach3": {"params": {"E": "abc"}, "ci": {"alpha": [0.3]}, "ci_level": "high"},
        "phases": {"segments": [None, {"phase": 3, "x_min": "a"}, {"phase": "<q9>"}]},
        "check": {
            "criteria": [{"name": "<c>", "value": {"k": "<v>"}, "passed": "maybe"}, 5],
            "prediction": {"N": None, "loss": "<l>", "interval": 7},
        },
        "budgets": [{"flops": 1e20, "<k>": "<v>"}, "row"],
    },
    ["a list, not an object"],
]


@pytest.mark.parametrize("doc", ODD_DOCS)
def test_family_page_tolerates_odd_fit_documents(doc: object) -> None:
    page = render_family(_detail(doc), Links())
    assert page.startswith("<!doctype html>")
    assert MISSING in page
    _assert_no_raw_markup(page)


def test_family_without_fit_run_says_so() -> None:
    page = render_family(_detail({}, fitted=False), Links("/mlflow"))
    assert "Not fitted yet" in page
    assert 'href="/mlflow/scaling/"' in page
    _assert_no_raw_markup(page)


def test_index_escapes_and_formats() -> None:
    page = render_index([_summary(), _summary("plain", fitted=False)], Links())
    _assert_no_raw_markup(page)
    assert 'data-field="alpha" data-value="0.34">0.3400<' in page
    assert "1.00e7 – 1.00e9" in page
    assert "not fitted yet" in page
    assert render_index([], Links()).count("No scaling families yet") == 1


def _assert_no_raw_markup(page: str) -> None:
    assert_valid_html(page)
    body = page.split("<body>", 1)[1]
    for raw in ("<script", "<img src=x", "<b>exp", "<u>", "<s>", "<i>", "<c>", "<h>", "<loss>",
                "<oops>", "<td>x", "<q9>", "<k>", "<v>", "<l>"):  # fmt: skip
        assert raw not in body, raw
    # Every attribute value is quoted and free of raw quotes from the data.
    for value in re.findall(r'="([^"]*)"', body):
        assert "<" not in value and ">" not in value


def test_links_quote_names() -> None:
    links = Links()
    url = links.family("7", "a b/c?d#e")
    assert url == "/scaling/family/7/a%20b%2Fc%3Fd%23e"
    # Names a browser or router would normalise go in the query string instead.
    assert links.family("7", "../x") == "/scaling/family/7?name=..%2Fx"
    assert links.family("7", "/lead") == "/scaling/family/7?name=%2Flead"
    members = urllib.parse.unquote(links.ui_members("7", "it's"))
    expected = schema.family_filter("it's") + " and tags.`scaling.role` IS NULL"
    assert members.endswith("searchFilter=" + expected)


def test_number_formats() -> None:
    assert fmt_sci(None) == MISSING and fmt_sci(float("nan")) == MISSING
    assert fmt_sci(1.234e9) == "1.23e9" and fmt_sci(2.5) == "2.5" and fmt_sci(6e-5) == "6.00e-5"
    assert fmt_span(None) == MISSING and fmt_span(Span(3.0, 3.0)) == "3"


def test_dig_finds_the_first_existing_path() -> None:
    doc = {"a": {"b": 1}, "c": "x"}
    assert dig(doc, "z.y", "a.b") == 1
    assert dig(doc, "c", kind=dict) is None
    assert dig(doc, ("a", "b")) == 1
    assert as_float("1e3") == 1000.0 and as_float(True) is None
    assert as_float("inf") is None


def test_served_artifacts_are_a_fixed_list() -> None:
    assert data.is_served_artifact("scaling/fit.png")
    for path in ("scaling/curves.json", "scaling/../scaling/fit.png", "/scaling/fit.png", "x"):
        assert not data.is_served_artifact(path)


def test_routes_match_any_family_name() -> None:
    app = Flask("t")
    register_routes(app, source=lambda: None)  # type: ignore[arg-type,return-value]
    register_routes(app, source=lambda: None)  # type: ignore[arg-type,return-value]  # once only
    adapter = app.url_map.bind("localhost")
    for name in ("plain", EVIL, "a/b", "/lead", "a//b", "ends/"):
        endpoint, args = adapter.match(f"/scaling/family/7/{name}")
        assert endpoint.endswith(".family") and args == {"experiment": "7", "family": name}
    assert adapter.match("/scaling/")[0].endswith(".index")
    assert adapter.match("/scaling/artifact/abc/scaling/fit.png")[1]["path"] == "scaling/fit.png"
