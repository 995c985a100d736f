"""The scaling pages' HTML without a server: tolerant of odd fit documents, always escaped.

The live-server tests are in ``test_server_pages.py``; these check what is hard to provoke
there: a ``fit.json`` with keys missing or of the wrong type, a family without a fit run,
names that are not safe as URL paths, and the route table of the Flask app.
"""

from __future__ import annotations

import re
import urllib.parse
from html import unescape

import pytest
from _html_check import assert_valid_html
from flask import Flask

from mlflow_scaling.formatting import as_float
from mlflow_scaling.server import data
from mlflow_scaling.server.app import BadArgument, index_query, register_routes
from mlflow_scaling.server.data import (
    FamilyDetail,
    FamilyPage,
    FamilySummary,
    History,
    IndexQuery,
    Span,
    dig,
)
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


EXPERIMENT = ExperimentRef("7", "<b>exp</b>")


def _page(*families: FamilySummary, next_token: str | None = None) -> FamilyPage:
    return FamilyPage(list(families), next_token, readable=[EXPERIMENT])


def test_index_escapes_and_formats() -> None:
    page = render_index(_page(_summary(), _summary("plain", fitted=False)), IndexQuery(), Links())
    _assert_no_raw_markup(page)
    assert 'data-field="alpha" data-value="0.34">0.3400<' in page
    assert "1.00e7 – 1.00e9" in page
    assert "not fitted yet" in page
    assert "Families 1–2 in 1 experiment," in page
    assert 'class="pager"' not in page  # one page: no First, no Next
    assert render_index(_page(), IndexQuery(), Links()).count("No scaling families yet") == 1


def _href(page: str, cls: str) -> str | None:
    match = re.search(rf'<a class="{cls}"[^>]* href="([^"]*)"', page)
    return unescape(match.group(1)) if match else None


def _args(url: str) -> dict[str, str]:
    path, _, query = url.partition("?")
    assert path == "/mlflow/scaling/"
    return dict(urllib.parse.parse_qsl(query, keep_blank_values=True, strict_parsing=True))


def test_index_links_carry_the_token_and_filters() -> None:
    token = 'eyJvZmZzZXQiOiAyfQ==+/&"<>'  # base64 and worse: quoted in the URL, escaped in HTML
    query = IndexQuery(per_page=2, page_token="prev", start=3, experiment=EVIL, name_contains=EVIL)
    page = render_index(
        _page(_summary(), _summary("plain"), next_token=token), query, Links("/mlflow")
    )
    _assert_no_raw_markup(page)
    assert "Families 3–4 " in page and 'data-first="3" data-last="4"' in page
    following = {"per_page": "2", "experiment": EVIL, "q": EVIL}
    assert _args(_href(page, "next-page")) == {**following, "page_token": token, "start": "5"}
    assert _args(_href(page, "first-page")) == following
    # The form shows the filters, escaped; a filtered page offers to clear them.
    assert unescape(re.search(r'name="q" value="([^"]*)"', page).group(1)) == EVIL
    assert 'name="per_page" min="1" max="500" value="2"' in page
    assert 'href="/mlflow/scaling/?per_page=2">Clear filters<' in page


def test_index_says_why_a_page_is_empty() -> None:
    later = render_index(_page(next_token="t"), IndexQuery(page_token="s", start=9), Links())
    assert "No families on this page." in later
    assert _href(later, "first-page") == "/scaling/" and _href(later, "next-page")
    filtered = render_index(_page(), IndexQuery(name_contains="zz"), Links())
    assert "No fitted family in 1 experiment whose name contains “zz”." in filtered
    one = FamilyPage([], None, [EXPERIMENT, ExperimentRef("8", "other")], experiment=EXPERIMENT)
    restricted = render_index(one, IndexQuery(experiment="<b>exp</b>"), Links())
    assert "No fitted family in experiment &lt;b&gt;exp&lt;/b&gt;." in restricted
    assert '<option value="7" selected>' in restricted and '<option value="8">' in restricted
    for html_text in (later, filtered, restricted):
        assert_valid_html(html_text)
        assert "No scaling families yet" not in html_text


def test_index_query_args() -> None:
    assert index_query({}) == IndexQuery(per_page=data.PAGE_SIZE, start=1)
    assert index_query({"per_page": " 7 "}).per_page == 7
    assert index_query({"per_page": "0"}).per_page == 1  # clamped
    assert index_query({"per_page": "-3"}).per_page == 1
    assert index_query({"per_page": "100000"}).per_page == data.MAX_PAGE_SIZE
    assert index_query({"start": "0"}).start == 1
    blank = index_query({"q": "  ", "experiment": "", "page_token": "", "per_page": ""})
    assert blank == IndexQuery()
    assert index_query({"q": " a b "}).name_contains == " a b "  # names are exact
    for name, bad in [("per_page", "abc"), ("per_page", "1.5"), ("per_page", "1e3"),
                      ("per_page", "5_0"), ("start", "x"), ("per_page", "١٢")]:  # fmt: skip
        with pytest.raises(BadArgument, match=f"query argument {name} must be a whole number"):
            index_query({name: bad})


def test_name_filter_cannot_be_widened_by_the_text() -> None:
    # LIKE wildcards, quotes and backslashes turn into "_": one character, and no way out of
    # the quoted pattern; name_contains then keeps exactly the names holding the text.
    assert data.name_contains_filter("ab") == "tags.`scaling.family` ILIKE '%ab%'"
    assert data.name_contains_filter("1%_'\\\"x") == "tags.`scaling.family` ILIKE '%1_____x%'"
    assert data.name_contains("Chinchilla-100%", "LA-100%")
    assert not data.name_contains("chinchilla-1000", "a-100%")
    assert not data.name_contains("p-under", "p_")


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
