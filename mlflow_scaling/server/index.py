"""The index of fitted families, one page at a time: one ``search_runs`` over the fit runs of
the experiments a person may read, in a total order, with MLflow's page token."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..tracking import schema
from ..tracking.reading import (
    FIT_RUNS_FILTER,
    ExperimentRef,
    FamilyKey,
    family_of,
    fit_run_order,
    search_all_runs,
)
from .sources import (
    AccessCheck,
    TrackingSource,
    allow_all,
)

if TYPE_CHECKING:
    from mlflow.entities import Run

from .summaries import FamilySummary, readable_experiments, summarize_fit_run

PAGE_SIZE = 100
"""Families on one index page unless ``?per_page=`` says otherwise."""
MAX_PAGE_SIZE = 500

INDEX_ORDER = (
    f"tags.`{schema.TAG_FAMILY}` ASC",
    "attributes.start_time ASC",
    "attributes.run_id ASC",
)
"""The index's order across experiments, the same on every page: family name (as the database
collates it), then the fit run's start time, then its run id, so the order is total and a page
token continues exactly where the last page ended. (``search_runs`` cannot order by
experiment.)"""

LIKE_SPECIALS = "%_\\'\""
"""Characters a ``LIKE`` pattern in an MLflow filter cannot hold literally."""


class UnknownExperiment(LookupError):
    """``?experiment=`` names no experiment the person may read."""


class BadPageToken(ValueError):
    """The store cannot continue from this page token (garbled, or cut short when copied)."""


@dataclass(frozen=True)
class IndexQuery:
    """What one index page asks for: the query args of ``/scaling/``."""

    per_page: int = PAGE_SIZE
    page_token: str | None = None
    """The store's opaque token of this page (None: the first page)."""
    start: int = 1
    """Number of the page's first family, counted from the first page (for the heading)."""
    experiment: str | None = None
    """Only this experiment (its id, else its name)."""
    name_contains: str | None = None
    """Only families whose name contains this text, ignoring case."""

    @property
    def filtered(self) -> bool:
        return bool(self.experiment or self.name_contains)


@dataclass
class FamilyPage:
    """One page of the index."""

    families: list[FamilySummary]
    next_token: str | None
    """The store's token of the next page; None on the last page."""
    readable: list[ExperimentRef]
    """Every experiment the person may read (the filter form offers them)."""
    experiment: ExperimentRef | None = None
    """The experiment the page is restricted to, if any."""

    @property
    def searched(self) -> int:
        """How many experiments the page's search covered."""
        return 1 if self.experiment is not None else len(self.readable)


def pick_experiment(experiments: Sequence[ExperimentRef], key: str) -> ExperimentRef | None:
    """The experiment of ``experiments`` whose id is ``key``, else the one named ``key``."""
    by_id = next((e for e in experiments if e.experiment_id == key), None)
    return by_id or next((e for e in experiments if e.name == key), None)


def name_contains_filter(text: str) -> str:
    """A ``search_runs`` filter for family names containing ``text``, ignoring case.

    MLflow hands a ``LIKE`` pattern to the database as it is (SQLite knows no escape character
    there) and its filter parser has no escape for quotes, so each ``%``, ``_``, backslash and
    quote of ``text`` becomes ``_`` (any one character): the pattern may match a few more names,
    and :func:`name_contains` keeps the exact ones.
    """
    pattern = "".join("_" if ch in LIKE_SPECIALS else ch for ch in text)
    return f"tags.`{schema.TAG_FAMILY}` ILIKE '%{pattern}%'"


def name_contains(name: str, text: str) -> bool:
    return text.lower() in name.lower()


def index_filter(query: IndexQuery) -> str:
    """The fit runs an index page searches: all of them, or those whose name may match."""
    if not query.name_contains:
        return FIT_RUNS_FILTER
    return f"{FIT_RUNS_FILTER} and {name_contains_filter(query.name_contains)}"


def family_page(
    source: TrackingSource, query: IndexQuery, can_read: AccessCheck = allow_all
) -> FamilyPage:
    """One page of the index: at most ``query.per_page`` fit runs in :data:`INDEX_ORDER`,
    grouped into families, from the experiments the person may read.

    Reads only that page of fit runs (one search), never the member runs: each fit run carries
    the numbers of its row; a family appears after its first refit. A page after the first also
    looks up its first family's fit runs, so a family whose duplicate fit runs (two refits
    racing) straddle a page boundary is listed once, on the page of its oldest fit run.
    Raises :class:`UnknownExperiment` or :class:`BadPageToken`.
    """
    readable = readable_experiments(source, can_read)
    page = FamilyPage(families=[], next_token=None, readable=readable)
    if query.experiment is not None:
        page.experiment = pick_experiment(readable, query.experiment)
        if page.experiment is None:
            raise UnknownExperiment(query.experiment)
    searched = {e.experiment_id: e for e in ([page.experiment] if page.experiment else readable)}
    if not searched:
        return page
    runs = _search_index_page(source, list(searched), query)
    groups = _group_fit_runs(runs, searched, query.name_contains)
    if query.page_token and groups:
        _drop_family_begun_earlier(source, list(searched), groups)
    page.families = [
        summarize_fit_run(searched[exp_id], name, sorted(fits, key=fit_run_order))
        for (exp_id, name), fits in groups.items()
    ]
    page.next_token = _token_text(runs.token)
    return page


def _token_text(token: str | bytes | None) -> str | None:
    # The SQL store's own tokens are bytes (base64); over REST they arrive as text.
    if isinstance(token, bytes):
        token = token.decode("ascii", errors="replace")
    return token or None


def _search_index_page(source: TrackingSource, experiment_ids: list[str], query: IndexQuery) -> Any:
    search = functools.partial(
        source.search_runs,
        experiment_ids,
        filter_string=index_filter(query),
        max_results=query.per_page,
        order_by=list(INDEX_ORDER),
    )
    try:
        return search(page_token=query.page_token)
    except Exception as exc:
        if not query.page_token:
            raise
        search(page_token=None, max_results=1)  # raises when the search fails token or not
        raise BadPageToken(query.page_token) from exc


def _group_fit_runs(
    runs: Iterable[Run], experiments: Mapping[str, ExperimentRef], text: str | None
) -> dict[FamilyKey, list[Run]]:
    """The page's fit runs by family, in the order of each family's first run on the page."""
    groups: dict[FamilyKey, list[Run]] = {}
    for run in runs:
        name = family_of(run)
        if name is None or run.info.experiment_id not in experiments:
            continue
        if text and not name_contains(name, text):
            continue
        groups.setdefault((run.info.experiment_id, name), []).append(run)
    return groups


def _drop_family_begun_earlier(
    source: TrackingSource, experiment_ids: list[str], groups: dict[FamilyKey, list[Run]]
) -> None:
    """Drop the families whose oldest fit run (the family's) lies on an earlier page.

    The order is by name first, so only the page's first name can have begun on an earlier
    page; its fit runs here are then duplicates that page has already grouped.
    """
    first_name = next(iter(groups))[1]
    filter_string = f"{FIT_RUNS_FILTER} and {schema.family_filter(first_name)}"
    oldest: dict[str, Run] = {}
    for run in search_all_runs(source, experiment_ids, filter_string):  # type: ignore[arg-type]
        exp_id = run.info.experiment_id
        if family_of(run) == first_name and (
            exp_id not in oldest or fit_run_order(run) < fit_run_order(oldest[exp_id])
        ):
            oldest[exp_id] = run
    for exp_id, name in [key for key in groups if key[1] == first_name]:
        on_this_page = {r.info.run_id for r in groups[(exp_id, name)]}
        if exp_id in oldest and oldest[exp_id].info.run_id not in on_this_page:
            del groups[(exp_id, name)]
