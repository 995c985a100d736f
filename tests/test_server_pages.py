"""``mlflow server --app-name scaling``: the scaling pages on a live server.

One module-scoped site: ``mlflow server --app-name scaling`` on a fresh SQLite store, member
runs of a synthetic Chinchilla family (5 sizes x 4 token budgets, losses on a known law)
fitted twice by the real refit job (4 sizes, then all 5, so the exponents have a history),
and a family named ``<script>alert(1)</script>`` in an experiment named like an HTML
injection. ``mlflow server --app-name scaling-auth`` starts on the same store meanwhile, for
the basic-auth tests. The paging tests add a third experiment of bare fit runs (names with
LIKE wildcards, quotes, a backslash, and a family with a duplicate fit run).

The pages are checked over HTTP (status, numbers against the fit run's metrics and the true
law, links, escaping, read-only) and in headless Chromium (no console errors, no dialog, a
screenshot per page under the test's temporary folder).
"""

from __future__ import annotations

import json
import re
import secrets
import threading
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from html import unescape
from pathlib import Path

import pytest
import requests
from _chromium import Chromium, find_chromium
from _ci import skip_or_fail
from _html_check import assert_valid_html
from _server_support import SIZES, TRUE_LAW, MlflowCliServer, log_family, start_cli_server

from mlflow_scaling.tracking import schema
from mlflow_scaling.tracking.published import artifact_name, published_fit

FAMILY = "chinchilla-synth"
EVIL_FAMILY = "<script>alert(1)</script>"
EVIL_EXPERIMENT = "<img src=x onerror=alert(2)>"
N_BOOT = 20  # bootstrap replicates per refit: enough for intervals, quick on 2 cores


@dataclass
class Site:
    server: MlflowCliServer
    client: object
    experiment_id: str
    evil_experiment_id: str
    fit_run_id: str
    evil_fit_run_id: str
    member_ids: list[str]
    root: Path
    auth: dict = field(default_factory=dict)

    def get(self, path: str, **kwargs) -> requests.Response:
        return requests.get(self.server.uri + path, timeout=60, **kwargs)


def _family_url(experiment_id: str, family: str) -> str:
    return f"/scaling/family/{experiment_id}/{urllib.parse.quote(family, safe='')}"


def _auth_available() -> bool:
    try:
        import flask_wtf  # noqa: F401  (MLflow's basic-auth app needs it: mlflow[auth])
    except ImportError:
        return False
    return True


def _boot(out: dict, **kwargs) -> threading.Thread:
    """Start ``mlflow server`` in a thread; ``out`` then holds ``server`` or ``error``."""

    def run() -> None:
        try:
            out["server"] = start_cli_server(**kwargs)
        except Exception as exc:  # reported by whoever needs the server
            out["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _boot_auth_server(root: Path, backend: str, artifacts: Path, out: dict) -> threading.Thread:
    password = "Adm1n-" + secrets.token_urlsafe(18)
    config = root / "basic_auth.ini"
    config.write_text(
        "[mlflow]\n"
        "default_permission = NO_PERMISSIONS\n"
        f"database_uri = sqlite:///{root / 'basic_auth.db'}\n"
        "admin_username = admin\n"
        f"admin_password = {password}\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
        "auth_cache_ttl_seconds = 300\n"  # hash each password once, not on every request
    )
    return _boot(
        out,
        root=root / "auth-server",
        app_name="scaling-auth",
        backend_store_uri=backend,
        artifacts_dir=artifacts,
        extra_env={
            "MLFLOW_AUTH_CONFIG_PATH": str(config),
            "MLFLOW_FLASK_SERVER_SECRET_KEY": secrets.token_hex(16),
        },
        credentials=("admin", password),
    )


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    from mlflow import MlflowClient

    from mlflow_scaling.jobs.analysis import RefitSettings
    from mlflow_scaling.jobs.refit import refit_pass

    root = tmp_path_factory.mktemp("scaling-site")
    backend = f"sqlite:///{root / 'mlflow.db'}"
    artifacts = root / "artifacts"
    started: dict = {}
    boot = _boot(
        started, root=root / "server", app_name="scaling", backend_store_uri=backend,
        artifacts_dir=artifacts,
    )  # fmt: skip
    import mlflow_scaling.report.figures  # noqa: F401  # load matplotlib while the server boots

    boot.join()
    if "error" in started:
        raise started["error"]
    server = started["server"]
    # The store's tables exist now; the auth server starts on the same store while we log.
    auth: dict = {}
    auth_thread = _boot_auth_server(root, backend, artifacts, auth) if _auth_available() else None
    try:
        client = MlflowClient(server.uri)
        exp = client.create_experiment("scaling-pages")
        evil_exp = client.create_experiment(EVIL_EXPERIMENT)
        members = log_family(client, exp, FAMILY, SIZES[:4])
        log_family(client, evil_exp, EVIL_FAMILY, SIZES[:4])
        settings = RefitSettings(n_boot=N_BOOT)
        first = refit_pass(client, settings=settings)
        assert {o.status for o in first} == {"fitted"}, [o.to_dict() for o in first]
        members += log_family(client, exp, FAMILY, SIZES[4:])  # a new size: refit number 2
        second = refit_pass(client, settings=settings, experiments=["scaling-pages"])
        assert [o.status for o in second] == ["fitted"], [o.to_dict() for o in second]
        fit_ids = {o.family: o.fit_run_id for o in first}
        if auth_thread is not None:
            auth_thread.join(timeout=300)
        yield Site(
            server=server, client=client, experiment_id=exp, evil_experiment_id=evil_exp,
            fit_run_id=fit_ids[FAMILY], evil_fit_run_id=fit_ids[EVIL_FAMILY],
            member_ids=members, root=root, auth=auth,
        )  # fmt: skip
    finally:
        if auth_thread is not None:
            auth_thread.join(timeout=300)
        # SIGKILL to each server's process group: nothing to drain in a test store.
        if "server" in auth:
            auth["server"].kill()
        server.kill()


def _row(page: str, family: str) -> str:
    match = re.search(
        r'<tr class="family-row"[^>]*data-family="' + re.escape(_esc(family)) + r'">(.*?)</tr>',
        page,
        re.S,
    )
    assert match, f"no index row for family {family!r}"
    return match.group(1)


def _esc(text: str) -> str:
    from html import escape

    return escape(text, quote=True)


def _values(fragment: str) -> dict[str, float]:
    return {
        k: float(v) for k, v in re.findall(r'data-field="([^"]+)" data-value="([^"]+)"', fragment)
    }


def _table(page: str, cls: str) -> str:
    match = re.search(rf'<table class="{cls}">(.*?)</table>', page, re.S)
    assert match, f"no table {cls!r}"
    return match.group(1)


# --- HTTP -----------------------------------------------------------------------------------


def test_index_lists_families_with_fit_numbers(site: Site) -> None:
    resp = site.get("/scaling/")
    assert resp.status_code == 200
    assert_valid_html(resp.text)
    assert resp.headers["Content-Type"].startswith("text/html")
    run = site.client.get_run(site.fit_run_id)
    row = _row(resp.text, FAMILY)
    values = _values(row)
    for name in ("alpha", "beta", "E"):
        posted = run.data.metrics[schema.fit_metric(name)]
        assert values[name] == posted  # the page shows what the refit job posted ...
        assert abs(posted - TRUE_LAW[name]) < 2e-3 * TRUE_LAW[name]  # ... which is the law
    assert values["members"] == 20
    assert f">{posted:.4f}<" in row  # E, rounded as shown
    assert "1.00e7 – 1.00e9" in row  # N range
    assert "1.00e9 – 3.00e10" in row  # D range
    assert f'data-phase="{run.data.tags[schema.TAG_PHASE]}"' in row
    assert f'data-check="{run.data.tags[schema.TAG_CHECK]}"' in row
    assert "(#2)" in row  # refit number
    # Links into the normal MLflow UI: the fit run, and a filter that selects the members.
    assert f'href="/#/experiments/{site.experiment_id}/runs/{site.fit_run_id}"' in row
    members_href = unescape(re.search(r'href="([^"]*searchFilter=[^"]*)"', row).group(1))
    search = urllib.parse.parse_qs(members_href.split("?", 1)[1])["searchFilter"][0]
    found = site.client.search_runs([site.experiment_id], filter_string=search, max_results=100)
    assert sorted(r.info.run_id for r in found) == sorted(site.member_ids)
    # The other experiment's family is listed too, escaped.
    assert _row(resp.text, EVIL_FAMILY)


def test_family_page_shows_fit_artifacts_and_history(site: Site) -> None:
    resp = site.get(_family_url(site.experiment_id, FAMILY))
    assert resp.status_code == 200
    page = resp.text
    assert_valid_html(page)
    run = site.client.get_run(site.fit_run_id)
    fit = _values(_table(page, "fit"))
    for name in schema.FIT_METRIC_NAMES:
        assert fit[name] == run.data.metrics[schema.fit_metric(name)], name
    for name in ("alpha", "beta", "E"):
        assert abs(fit[name] - TRUE_LAW[name]) < 2e-3 * TRUE_LAW[name]

    doc = json.loads(
        site.get(f"/scaling/artifact/{site.fit_run_id}/{schema.ARTIFACT_FIT_JSON}").text
    )
    assert doc["fit_run_id"] == site.fit_run_id
    # Phase segments and check criteria, as posted in fit.json.
    segments = _table(page, "segments")
    assert segments.count("<tr>") == len(doc["phases"]["segments"]) + 1  # + header row
    criteria = re.findall(r'<tr class="criterion" data-name="([^"]+)"', page)
    assert criteria == [c["name"] for c in doc["check"]["criteria"]]
    # The prediction table is predictions.csv, row for row.
    csv_text = site.get(f"/scaling/artifact/{site.fit_run_id}/{schema.ARTIFACT_PREDICTIONS_CSV}")
    assert csv_text.status_code == 200
    n_rows = len(csv_text.text.strip().splitlines()) - 1
    assert n_rows > 0
    assert _table(page, "predictions").count("<tr>") == n_rows + 1
    # The history of the exponents: one row per refit, values from the metric history.
    history = _table(page, "history")
    steps = [int(s) for s in re.findall(r'<tr data-step="(\d+)">', history)]
    assert steps == [1, 2]
    posted = {
        m.step: m.value
        for m in site.client.get_metric_history(site.fit_run_id, schema.fit_metric("alpha"))
    }
    for step in steps:
        row = re.search(rf'<tr data-step="{step}">(.*?)</tr>', history, re.S).group(1)
        assert _values(row)["alpha"] == posted[step]
    assert 'class="figure history" src="data:image/png;base64,' in page
    # The figure is the fit run's fit.png, served by the pages' artifact route.
    src = re.search(r'<img class="figure" src="([^"]+)"', page).group(1)
    png = site.get(unescape(src))
    assert png.status_code == 200 and png.headers["Content-Type"] == "image/png"
    assert png.content.startswith(b"\x89PNG")
    # Members with their numbers, and links back to MLflow.
    assert _table(page, "members").count("<tr>") == 21
    assert f'href="/#/experiments/{site.experiment_id}/runs/{site.fit_run_id}"' in page


def test_artifacts_go_through_the_proxied_store(site: Site) -> None:
    # `mlflow server --artifacts-destination`: runs carry mlflow-artifacts:/ URIs that only the
    # server resolves, so the refit job (writing, then reading curves.json back on the second
    # pass) and the pages (fit.json, predictions.csv, fit.png) worked without any local path.
    run = site.client.get_run(site.fit_run_id)
    assert run.info.artifact_uri.startswith("mlflow-artifacts:/")
    folder = published_fit(run).path  # the published refit's own folder
    names = {artifact_name(a.path) for a in site.client.list_artifacts(site.fit_run_id, folder)}
    assert names >= {"fit.json", "predictions.csv"}
    page = site.get(_family_url(site.experiment_id, FAMILY)).text
    assert "could not be read" not in page and 'class="predictions"' in page


def test_family_page_accepts_the_experiment_name(site: Site) -> None:
    by_name = site.get(_family_url("scaling-pages", FAMILY))
    assert by_name.status_code == 200
    assert f"/runs/{site.fit_run_id}" in by_name.text
    query = site.get(f"/scaling/family/{site.experiment_id}", params={"name": FAMILY})
    assert query.status_code == 200


def test_artifact_route_serves_only_fit_artifacts(site: Site) -> None:
    base = f"/scaling/artifact/{site.fit_run_id}/"
    report = site.get(base + schema.ARTIFACT_REPORT_HTML)
    assert report.status_code == 200
    policy = report.headers["Content-Security-Policy"]
    assert "sandbox" in policy and "script-src 'none'" in policy
    assert_valid_html(report.text)
    assert site.get(base + schema.ARTIFACT_CURVES_JSON).status_code == 404
    assert site.get(base + "scaling/%2E%2E/scaling/fit.json").status_code == 404
    assert site.get(base + "scaling/other.txt").status_code == 404
    member = site.member_ids[0]
    assert site.get(f"/scaling/artifact/{member}/{schema.ARTIFACT_FIT_PNG}").status_code == 404
    assert site.get(f"/scaling/artifact/nosuchrun/{schema.ARTIFACT_FIT_PNG}").status_code == 404


def test_unknown_family_and_experiment_are_404(site: Site) -> None:
    missing = site.get(_family_url(site.experiment_id, "<b>nope</b>"))
    assert missing.status_code == 404
    assert "&lt;b&gt;nope&lt;/b&gt;" in missing.text and "<b>nope</b>" not in missing.text
    assert site.get(_family_url("no-such-experiment", FAMILY)).status_code == 404


def test_user_strings_are_escaped(site: Site) -> None:
    index = site.get("/scaling/").text
    page = site.get(_family_url(site.evil_experiment_id, EVIL_FAMILY))
    assert page.status_code == 200
    for html_text in (index, page.text):
        assert_valid_html(html_text)
        assert EVIL_FAMILY not in html_text
        assert EVIL_EXPERIMENT not in html_text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html_text
        assert "&lt;img src=x onerror=alert(2)&gt;" in html_text
    assert "Content-Security-Policy" in page.headers


def test_pages_are_read_only(site: Site) -> None:
    before = site.client.get_run(site.fit_run_id)
    history = site.client.get_metric_history(site.fit_run_id, schema.fit_metric("alpha"))
    for path in ("/scaling/", _family_url(site.experiment_id, FAMILY)):
        assert site.get(path).status_code == 200
    after = site.client.get_run(site.fit_run_id)
    assert after.data.tags == before.data.tags
    assert after.data.metrics == before.data.metrics
    assert after.info.end_time == before.info.end_time
    assert site.client.get_metric_history(site.fit_run_id, schema.fit_metric("alpha")) == history


# --- the index, page by page ----------------------------------------------------------------

PAGING_EXPERIMENT = "scaling-paging"
PAGING_FAMILIES = ("p-alpha", "p-beta", "P-Gamma", "100% done", "p_under", 'it\'s "quoted"',
                   "back\\slash")  # fmt: skip
DUPLICATED = "p-beta"
ROW = re.compile(r'<tr class="family-row" data-experiment-id="([^"]*)" data-family="([^"]*)">')


@dataclass
class Paged:
    experiment_id: str
    family_fit_run: str
    """The older of ``DUPLICATED``'s two fit runs: the family's."""
    duplicate_fit_run: str
    families: set[tuple[str, str]]
    """(experiment id, family) of every family on the site."""


@pytest.fixture(scope="module")
def paged(site: Site) -> Paged:
    """Bare fit runs (tags only) in a third experiment; ``DUPLICATED`` has two, as when two
    refits race."""
    client = site.client
    exp = client.create_experiment(PAGING_EXPERIMENT)
    fit_tags = {schema.TAG_ROLE: schema.ROLE_FIT}
    start = 1_700_000_000_000
    runs = {
        name: client.create_run(exp, start_time=start, tags={**fit_tags, schema.TAG_FAMILY: name})
        for name in PAGING_FAMILIES
    }
    duplicate = client.create_run(
        exp, start_time=start + 1000, tags={**fit_tags, schema.TAG_FAMILY: DUPLICATED}
    )
    families = {(exp, name) for name in PAGING_FAMILIES}
    families |= {(site.experiment_id, FAMILY), (site.evil_experiment_id, EVIL_FAMILY)}
    return Paged(exp, runs[DUPLICATED].info.run_id, duplicate.info.run_id, families)


def _rows(page: str) -> list[tuple[str, str]]:
    return [(unescape(e), unescape(f)) for e, f in ROW.findall(page)]


def _next_path(page: str) -> str | None:
    match = re.search(r'<a class="next-page" rel="next" href="([^"]*)"', page)
    return unescape(match.group(1)) if match else None


def _walk(get: Callable[[str], requests.Response], path: str) -> list[list[tuple[str, str]]]:
    """The rows of each page, following Next from ``path`` to the last page."""
    pages = []
    while path is not None:
        resp = get(path)
        assert resp.status_code == 200, resp.text
        assert_valid_html(resp.text)
        pages.append(_rows(resp.text))
        path = _next_path(resp.text)
        assert len(pages) < 50, "Next never ends"
    return pages


def _listed(site: Site, **args: str | int) -> list[tuple[str, str]]:
    resp = site.get("/scaling/", params={"per_page": 500, **args})
    assert resp.status_code == 200, resp.text
    assert _next_path(resp.text) is None
    return _rows(resp.text)


def test_one_family_per_page_with_a_next_link(site: Site, paged: Paged) -> None:
    page = site.get("/scaling/", params={"per_page": 1}).text
    assert_valid_html(page)
    assert len(_rows(page)) == 1
    assert 'data-first="1" data-last="1"' in page
    assert _next_path(page).startswith("/scaling/?per_page=1&page_token=")
    assert 'class="first-page"' not in page  # on the first page already
    second = site.get(_next_path(page)).text
    assert 'data-first="2" data-last="2"' in second
    assert re.search(r'<a class="first-page" href="/scaling/\?per_page=1">', second)


@pytest.mark.parametrize("per_page", [1, 2, 3])
def test_next_visits_every_family_once_in_a_stable_order(
    site: Site, paged: Paged, per_page: int
) -> None:
    pages = _walk(site.get, f"/scaling/?per_page={per_page}")
    visited = [row for rows in pages for row in rows]
    assert all(len(rows) <= per_page for rows in pages)
    assert sorted(visited) == sorted(paged.families)  # each family exactly once
    assert visited == _listed(site)  # the same order as one long page
    # The duplicate fit run was a page's first run: dropped there, the family listed once.
    if per_page == 1:
        assert [] in pages and len(pages) == len(paged.families) + 1


def test_a_family_with_two_fit_runs_shows_the_oldest(site: Site, paged: Paged) -> None:
    page = site.get("/scaling/", params={"experiment": paged.experiment_id}).text
    row = _row(page, DUPLICATED)
    assert f"/runs/{paged.family_fit_run}" in row and paged.duplicate_fit_run not in page


def test_order_is_by_family_name(site: Site, paged: Paged) -> None:
    names = [name for _, name in _listed(site, experiment=paged.experiment_id)]
    assert names[:2] == ["100% done", "P-Gamma"]  # SQLite's order: byte order of the names
    assert names == sorted(names)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("100%", ["100% done"]),  # "%" is no wildcard ...
        ("p_", ["p_under"]),  # ... nor is "_"
        ("P-", ["P-Gamma", "p-alpha", "p-beta"]),  # case ignored
        ("'s \"", ['it\'s "quoted"']),
        ("\\", ["back\\slash"]),
        ("<script>", [EVIL_FAMILY]),
        ("nothing-like-this", []),
    ],
)
def test_q_selects_names_containing_the_text(
    site: Site, paged: Paged, text: str, expected: list[str]
) -> None:
    assert [name for _, name in _listed(site, q=text)] == expected
    if not expected:
        assert "No fitted family" in site.get("/scaling/", params={"q": text}).text


def test_experiment_selects_one_experiment(site: Site, paged: Paged) -> None:
    ours = sorted(f for f in paged.families if f[0] == paged.experiment_id)
    assert sorted(_listed(site, experiment=paged.experiment_id)) == ours
    assert sorted(_listed(site, experiment=PAGING_EXPERIMENT)) == ours  # by name too
    assert _listed(site, experiment=EVIL_EXPERIMENT) == [(site.evil_experiment_id, EVIL_FAMILY)]
    assert _listed(site, experiment="scaling-pages", q="p-") == []
    both = _listed(site, experiment=PAGING_EXPERIMENT, q="p-")
    assert [name for _, name in both] == ["P-Gamma", "p-alpha", "p-beta"]
    # Filters stay on every page.
    pages = _walk(site.get, f"/scaling/?per_page=1&experiment={paged.experiment_id}&q=p-")
    assert [row for rows in pages for row in rows] == both
    missing = site.get("/scaling/", params={"experiment": "<no such experiment>"})
    assert missing.status_code == 404 and "&lt;no such experiment&gt;" in missing.text


@pytest.mark.parametrize(
    "args, status, named",
    [
        ({"page_token": "garbled!"}, 400, "page_token"),
        ({"page_token": "W10="}, 400, "page_token"),  # base64 of "[]": decodes, not a token
        ({"per_page": "ten"}, 400, "per_page"),
        ({"per_page": "2.5"}, 400, "per_page"),
        ({"start": "first"}, 400, "start"),
    ],
)
def test_bad_query_args_get_a_clear_page(site: Site, args: dict, status: int, named: str) -> None:
    resp = site.get("/scaling/", params=args)
    assert resp.status_code == status
    assert_valid_html(resp.text)
    assert f"query argument {named}" in resp.text and "Traceback" not in resp.text
    assert "Content-Security-Policy" in resp.headers


def test_per_page_is_clamped(site: Site, paged: Paged) -> None:
    assert len(_rows(site.get("/scaling/", params={"per_page": 0}).text)) == 1
    everything = site.get("/scaling/", params={"per_page": 100_000}).text
    assert len(_rows(everything)) == len(paged.families) and _next_path(everything) is None
    assert 'value="500"' in everything  # the form shows the page size used


# --- headless Chromium ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chromium]:
    binary = find_chromium()
    if binary is None:
        skip_or_fail(
            "headless Chromium not found (Debian package 'chromium'; scripts/ci_chromium.sh "
            "installs it, or set CHROMIUM=/path/to/binary)"
        )
    with Chromium(binary, log_dir=tmp_path_factory.mktemp("chromium")) as b:
        yield b


def test_browser_harness_sees_alerts_and_errors(browser: Chromium) -> None:
    # The harness itself: a page that misbehaves must be caught, or the checks below say nothing.
    page = "data:text/html,<p>x</p><script>alert('boom'); console.error('bad'); nope()</script>"
    visit = browser.visit(page)
    assert visit.dialogs == ["alert: boom"]
    assert any("bad" in e for e in visit.console_errors)
    assert any("nope" in e for e in visit.console_errors)


@pytest.mark.parametrize("which", ["index", "family", "evil"])
def test_pages_in_chromium(site: Site, browser: Chromium, tmp_path: Path, which: str) -> None:
    path = {
        "index": "/scaling/",
        "family": _family_url(site.experiment_id, FAMILY),
        "evil": _family_url(site.evil_experiment_id, EVIL_FAMILY),
    }[which]
    visit = browser.visit(site.server.uri + path)
    shot = visit.save_screenshot(tmp_path / f"scaling-{which}.png")
    assert visit.status == 200
    assert visit.console_errors == []
    assert visit.dialogs == []  # no alert(1) from the family name, no alert(2) from the experiment
    assert shot.stat().st_size > 10_000 and shot.read_bytes().startswith(b"\x89PNG")
    if which in ("index", "evil"):
        assert EVIL_FAMILY in visit.text  # shown as text
        assert EVIL_EXPERIMENT in visit.text
    if which == "family":
        assert "Exponents across refits" in visit.text


def test_filter_form_submits_in_chromium(site: Site, paged: Paged, browser: Chromium) -> None:
    # GET form, no script: the page's Content-Security-Policy must let it submit to the index.
    fill_and_submit = (
        "document.querySelector('form.filters input[name=q]').value = 'P-';"
        "document.querySelector('form.filters').requestSubmit()"
    )
    visit = browser.visit(site.server.uri + "/scaling/?per_page=2", then=fill_and_submit)
    assert visit.console_errors == [] and visit.dialogs == []
    args = urllib.parse.parse_qs(urllib.parse.urlsplit(visit.location).query)
    assert args["q"] == ["P-"] and args["per_page"] == ["2"]
    assert "p-alpha" in visit.text and "Next page" in visit.text
    assert FAMILY not in visit.text


# --- with MLflow's basic-auth: mlflow server --app-name scaling-auth -------------------------


@pytest.fixture(scope="module")
def auth_server(site: Site) -> MlflowCliServer:
    if not _auth_available():
        skip_or_fail("MLflow's basic-auth app needs Flask-WTF: pip install 'mlflow[auth]'")
    if "error" in site.auth:
        raise site.auth["error"]
    if "server" not in site.auth:
        pytest.fail("mlflow server --app-name scaling-auth did not start in time")
    return site.auth["server"]


def test_scaling_auth_requires_login_and_filters_by_permission(
    site: Site, paged: Paged, auth_server: MlflowCliServer
) -> None:
    uri = auth_server.uri
    admin = auth_server.auth_header()
    family_path = _family_url(site.experiment_id, FAMILY)
    png_path = f"/scaling/artifact/{site.fit_run_id}/{schema.ARTIFACT_FIT_PNG}"

    def get(path: str, headers: dict | None = None) -> requests.Response:
        return requests.get(uri + path, headers=headers or {}, timeout=60)

    anonymous = get("/scaling/")
    assert anonymous.status_code == 401
    assert "Basic" in anonymous.headers.get("WWW-Authenticate", "")
    assert get(family_path).status_code == 401
    assert get("/api/2.0/mlflow/experiments/search?max_results=1").status_code == 401

    as_admin = get("/scaling/", admin)
    assert as_admin.status_code == 200
    assert _row(as_admin.text, FAMILY) and _row(as_admin.text, EVIL_FAMILY)
    admin_pages = _walk(lambda path: get(path, admin), "/scaling/?per_page=2")
    assert sorted(row for rows in admin_pages for row in rows) == sorted(paged.families)
    assert get(family_path, admin).status_code == 200

    # A user without permissions (default NO_PERMISSIONS) sees nothing of the experiment ...
    user, password = "reader", "Re4der-" + secrets.token_urlsafe(12)
    created = requests.post(
        uri + "/api/2.0/mlflow/users/create",
        json={"username": user, "password": password},
        headers=admin,
        timeout=60,
    )
    assert created.status_code == 200, created.text
    reader = auth_server.auth_header((user, password))
    index = get("/scaling/", reader)
    assert index.status_code == 200
    assert 'class="family-row"' not in index.text
    assert _walk(lambda path: get(path, reader), "/scaling/?per_page=1") == [[]]
    for other in (site.experiment_id, paged.experiment_id, PAGING_EXPERIMENT):
        assert get(f"/scaling/?experiment={urllib.parse.quote(other)}", reader).status_code == 404
    assert get(family_path, reader).status_code == 404
    assert get(png_path, reader).status_code == 404

    # ... until READ on that one experiment is granted: then that family only.
    granted = requests.post(
        uri + "/api/3.0/mlflow/users/permissions/grant",
        json={
            "username": user,
            "resource_type": "experiment",
            "resource_id": site.experiment_id,
            "permission": "READ",
        },
        headers=admin,
        timeout=60,
    )
    assert granted.status_code == 200, granted.text
    index = get("/scaling/", reader)
    assert _row(index.text, FAMILY)
    shown = unescape(index.text)
    assert EVIL_FAMILY not in shown
    assert EVIL_EXPERIMENT not in shown and PAGING_EXPERIMENT not in shown  # not in the form
    # Page by page, filtered or not, only the readable experiment's family.
    reader_pages = _walk(lambda path: get(path, reader), "/scaling/?per_page=1")
    assert [row for rows in reader_pages for row in rows] == [(site.experiment_id, FAMILY)]
    assert _walk(lambda path: get(path, reader), "/scaling/?per_page=1&q=p-") == [[]]
    for other in (site.evil_experiment_id, paged.experiment_id, PAGING_EXPERIMENT):
        assert get(f"/scaling/?experiment={urllib.parse.quote(other)}", reader).status_code == 404
    by_id = get(f"/scaling/?experiment={site.experiment_id}", reader)
    assert _rows(by_id.text) == [(site.experiment_id, FAMILY)]
    page = get(family_path, reader)
    assert page.status_code == 200
    assert _values(_table(page.text, "fit"))["alpha"] == pytest.approx(TRUE_LAW["alpha"], rel=2e-3)
    assert get(png_path, reader).status_code == 200
    evil = get(_family_url(site.evil_experiment_id, EVIL_FAMILY), reader)
    assert evil.status_code == 404
