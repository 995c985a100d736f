"""The scaling routes on MLflow's Flask app (:func:`register_routes`), and the wrapper
``mlflow server`` expects (:func:`wrap_for_server`); the entry points are in :mod:`.app`.

Routes (under ``--static-prefix`` when one is set):

* ``/scaling/``: the fitted families of every experiment the person may read, one page at a
  time (:func:`index_query` reads its query args: ``per_page``, ``page_token``, ``start``,
  ``experiment``, ``q``);
* ``/scaling/family/<experiment id or name>/<family>`` (or ``...?name=<family>``): one family;
* ``/scaling/compare/<experiment>/<baseline>/<candidate>`` (or ``...?baseline=&candidate=``):
  the comparison of two families (:mod:`.compare_page`);
* ``/scaling/artifact/<run id>/scaling/<file>``: a fit run's ``fit.png``, ``fit.json``,
  ``predictions.csv`` or ``report.html`` (the report sandboxed: it cannot script this origin),
  or a comparison run's ``compare.png`` or ``compare.json``.
"""

from __future__ import annotations

import logging
import mimetypes
import os
import re
from collections.abc import Callable, Mapping
from typing import Any

from flask import Blueprint, Flask, Response, request
from werkzeug.exceptions import HTTPException
from werkzeug.routing import PathConverter

from ..compat import server_app
from ..tracking import schema
from . import data
from .compare_page import comparison_detail, render_comparison
from .data import AccessCheck, IndexQuery, TrackingSource, allow_all
from .pages import Links, render_family, render_index, render_message

log = logging.getLogger(__name__)

BLUEPRINT = "mlflow_scaling"
STATIC_PREFIX_ENV = server_app.STATIC_PREFIX_ENV  # mlflow.server.handlers.STATIC_PREFIX_ENV_VAR

PAGE_CSP = (
    "default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'self'"
)
REPORT_CSP = (
    "sandbox; default-src 'none'; script-src 'none'; img-src data:; style-src 'unsafe-inline'"
)
"""The HTML report has no script and may run none; sandboxed, it cannot reach MLflow's API."""

SourceFactory = Callable[[], TrackingSource]
AccessFactory = Callable[[], AccessCheck]


class AnyTextConverter(PathConverter):
    """Like ``path`` but also accepts a leading slash (family names are free text)."""

    regex = ".+"
    part_isolating = False  # Werkzeug would infer True: the regex has no "/"


def static_prefix() -> str:
    return os.environ.get(STATIC_PREFIX_ENV, "").rstrip("/")


class BadArgument(ValueError):
    """A query arg that cannot be read; the message names it."""


BAD_PAGE_TOKEN = (
    "The query argument page_token is not a page of this index (garbled, or cut short when "
    "copied). Start again from the first page."
)

STORE_FAILED = (
    "The MLflow store failed to answer ({}), so this page cannot be shown now; nothing is "
    "known to be missing. Try again later; the server log has the details."
)

WHOLE_NUMBER = re.compile(r"[+-]?[0-9]+")


def whole_number_arg(
    args: Mapping[str, str], name: str, default: int, lo: int, hi: int | None = None
) -> int:
    """The query arg ``name`` as a whole number clamped to ``lo..hi``; ``default`` when absent
    or empty; :class:`BadArgument` when it is not a whole number."""
    raw = args.get(name, "").strip()
    if not raw:
        return default
    if not WHOLE_NUMBER.fullmatch(raw):
        bounds = f"from {lo} to {hi}" if hi is not None else f"of at least {lo}"
        raise BadArgument(
            f"The query argument {name} must be a whole number {bounds}, not {raw!r}."
        )
    value = max(int(raw), lo)
    return value if hi is None else min(value, hi)


def text_arg(args: Mapping[str, str], name: str) -> str | None:
    """The query arg ``name`` as given, or None when absent or blank."""
    value = args.get(name, "")
    return value if value.strip() else None


def index_query(args: Mapping[str, str]) -> IndexQuery:
    """The index page's query args (``docs/reference.md`` has the contract)."""
    return IndexQuery(
        per_page=whole_number_arg(args, "per_page", data.PAGE_SIZE, 1, data.MAX_PAGE_SIZE),
        page_token=text_arg(args, "page_token"),
        start=whole_number_arg(args, "start", 1, 1),
        experiment=text_arg(args, "experiment"),
        name_contains=text_arg(args, "q"),
    )


_store_source: TrackingSource | None = None


def server_source() -> TrackingSource:
    """The server's own store (one per worker process, created on first use)."""
    global _store_source
    if _store_source is None:
        _store_source = data.StoreSource()
    return _store_source


def _html(body: str, status: int = 200) -> Response:
    resp = Response(body, status=status, mimetype="text/html")
    resp.headers["Content-Security-Policy"] = PAGE_CSP
    resp.headers["Cache-Control"] = "no-store"
    resp.headers["Referrer-Policy"] = "same-origin"
    return resp


def _not_found(what: str, links: Links) -> Response:
    return _html(render_message("Not found", what, links), 404)


def _bad_request(what: str, links: Links) -> Response:
    return _html(render_message("Bad request", what, links), 400)


def _guarded(view: Callable[..., Response], links: Links) -> Callable[..., Response]:
    """``view`` with a failing store as a 503 page and any other error as a 500 page."""

    def wrapper(*args: Any, **kwargs: Any) -> Response:
        try:
            return view(*args, **kwargs)
        except HTTPException:
            raise
        except data.StoreFailed as exc:  # never "not found": the store did not answer
            log.exception("scaling page %s: the MLflow store failed", request.path)
            return _html(render_message("Store unavailable", STORE_FAILED.format(exc), links),
                         503)  # fmt: skip
        except Exception as exc:  # the page says what failed; the log has the traceback
            log.exception("scaling page %s failed", request.path)
            first = (str(exc).strip().splitlines() or [""])[0][:500]
            return _html(render_message("Error", f"{type(exc).__name__}: {first}", links), 500)

    wrapper.__name__ = view.__name__
    return wrapper


def _index_page(source: SourceFactory, access: AccessFactory, links: Links) -> Response:
    try:
        query = index_query(request.args)
        page = data.family_page(source(), query, access())
    except BadArgument as exc:
        return _bad_request(str(exc), links)
    except data.UnknownExperiment as exc:
        return _not_found(f"No experiment {exc.args[0]!r} (or you may not read it).", links)
    except data.BadPageToken:
        return _bad_request(BAD_PAGE_TOKEN, links)
    return _html(render_index(page, query, links))


def _family_page(
    source: SourceFactory, access: AccessFactory, links: Links, experiment: str, family: str
) -> Response:
    src, can_read = source(), access()
    exp = data.find_experiment(src, experiment)
    if exp is None or not can_read(exp.experiment_id):
        return _not_found(f"No experiment {experiment!r} (or you may not read it).", links)
    detail = data.family_detail(src, exp, family)
    if detail is None:
        return _not_found(f"Experiment {exp.name!r} has no runs of family {family!r}.", links)
    return _html(render_family(detail, links))


def _comparison_page(
    source: SourceFactory, access: AccessFactory, links: Links, experiment: str, baseline: str,
    candidate: str,
) -> Response:  # fmt: skip
    src, can_read = source(), access()
    exp = data.find_experiment(src, experiment)
    if exp is None or not can_read(exp.experiment_id):
        return _not_found(f"No experiment {experiment!r} (or you may not read it).", links)
    detail = comparison_detail(src, exp, baseline, candidate)
    if detail is None:
        return _not_found(f"Experiment {exp.name!r} has no comparison of {candidate!r} with "
                          f"{baseline!r}.", links)  # fmt: skip
    return _html(render_comparison(detail, links))


def _artifact(
    source: SourceFactory, access: AccessFactory, links: Links, run_id: str, path: str
) -> Response:
    """A fit (or comparison) run's served file; the HTML report sandboxed."""
    if not data.is_served_artifact(path):
        return _not_found(f"Only {', '.join(data.SERVED_ARTIFACTS)} are served here.", links)
    src = source()
    try:
        run = src.get_run(run_id)
    except data.Absent:
        return _not_found(f"No run {run_id!r}.", links)
    if (
        run.info.lifecycle_stage != "active"
        or run.data.tags.get(schema.TAG_ROLE) not in (schema.ROLE_FIT, schema.ROLE_COMPARE)
        or not access()(run.info.experiment_id)
    ):
        return _not_found(f"No fit run {run_id!r} (or you may not read it).", links)
    content = data.read_fit_artifact(src, run, path)
    if content is None:
        return _not_found(f"The fit run has no {path}.", links)
    mimetype = mimetypes.guess_type(path)[0] or "application/octet-stream"
    resp = Response(content, mimetype=mimetype)
    resp.headers["Cache-Control"] = "no-store"
    if mimetype == "text/html":
        resp.headers["Content-Security-Policy"] = REPORT_CSP
    return resp


def make_blueprint(
    source: SourceFactory = server_source, access: AccessFactory = lambda: allow_all
) -> Blueprint:
    """The scaling routes; ``source`` gives the tracking reader, ``access`` the read check."""
    bp = Blueprint(BLUEPRINT, __name__)
    links = Links(static_prefix())

    @bp.route("/", methods=["GET"])
    def index() -> Response:
        return _guarded(_index_page, links)(source, access, links)

    @bp.route("/family/<experiment>/<anytext:family>", methods=["GET"], merge_slashes=False)
    def family(experiment: str, family: str) -> Response:
        return _guarded(_family_page, links)(source, access, links, experiment, family)

    @bp.route("/family/<experiment>", methods=["GET"])
    def family_by_query(experiment: str) -> Response:
        name = request.args.get("name")
        if not name:
            return _not_found("Name the family: /scaling/family/<experiment>/<family>.", links)
        return _guarded(_family_page, links)(source, access, links, experiment, name)

    @bp.route("/compare/<experiment>/<baseline>/<anytext:candidate>", methods=["GET"],
              merge_slashes=False)  # fmt: skip
    def compare(experiment: str, baseline: str, candidate: str) -> Response:
        return _guarded(_comparison_page, links)(source, access, links, experiment, baseline,
                                                 candidate)  # fmt: skip

    @bp.route("/compare/<experiment>", methods=["GET"])
    def compare_by_query(experiment: str) -> Response:
        baseline, candidate = request.args.get("baseline"), request.args.get("candidate")
        if not (baseline and candidate):
            return _not_found("Name both families: /scaling/compare/<experiment>/<baseline>/"
                              "<candidate>.", links)  # fmt: skip
        return _guarded(_comparison_page, links)(source, access, links, experiment, baseline,
                                                 candidate)  # fmt: skip

    @bp.route("/artifact/<run_id>/<path:path>", methods=["GET"])
    def artifact(run_id: str, path: str) -> Response:
        return _guarded(_artifact, links)(source, access, links, run_id, path)

    return bp


def register_routes(
    app: Flask,
    source: SourceFactory = server_source,
    access: AccessFactory = lambda: allow_all,
) -> Flask:
    """Add the scaling routes to ``app`` (MLflow's Flask app) once; returns ``app``."""
    if BLUEPRINT in app.blueprints:
        return app
    app.url_map.converters.setdefault("anytext", AnyTextConverter)
    app.register_blueprint(make_blueprint(source, access), url_prefix=f"{static_prefix()}/scaling")
    return app


def wrap_for_server(app: Flask) -> Any:
    """What ``mlflow server`` expects: the FastAPI wrapper under uvicorn, else the Flask app."""
    if server_app.sgi_name() == "uvicorn":
        from mlflow.server.fastapi_app import create_fastapi_app

        return create_fastapi_app(app)
    return app
