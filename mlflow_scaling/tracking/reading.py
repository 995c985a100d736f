"""Reading scaling families from MLflow, cheaply.

* Runs come from paged ``search_runs`` calls with a filter on ``scaling.family``; one search
  returns every family of the experiments at once, members and fit runs together.
* A member's point uses the latest values that ``search_runs`` already returns: N =
  ``scaling.params``, D = ``scaling.tokens``, C = ``scaling.flops`` (6·N·D when absent), loss
  = the metric named by the run's ``scaling.loss_metric`` tag (default ``val_loss``), and U =
  ``scaling.unique_tokens`` when logged (the data-constrained law's).
* A run that cannot be a point (failed, killed, not finished, a value missing, non-finite or
  not positive, N or D under 1: the input contract of :mod:`mlflow_scaling.inputs`; a learning
  rate or batch that is malformed, :mod:`.run_values`) is listed as excluded with its reason,
  never dropped silently. A fit run
  (``scaling.role = fit``) is never a member.
* Full metric histories (training curves, for Approach 1) are fetched only for runs whose
  curves are not already known for the same end time and final loss (:class:`CurveCache`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ..compat import metric_steps
from ..inputs import PARAMS, TOKENS, Quantity
from ..laws.allocation import FLOPS_PER_PARAM_TOKEN
from ..tabular import InputError
from . import schema
from .run_values import check_value, run_hparams

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities import Run

PAGE_SIZE = 1000
"""Runs per ``search_runs`` request (MLflow's own default; the server allows up to 50,000)."""
ALL_FAMILIES_FILTER = f"tags.`{schema.TAG_FAMILY}` LIKE '%'"
FIT_RUNS_FILTER = f"tags.`{schema.TAG_ROLE}` = '{schema.ROLE_FIT}'"
FamilyKey = tuple[str, str]
"""(experiment id, family name): a family is one name within one experiment."""
STATUS_FINISHED = "FINISHED"
C_FROM_METRIC = schema.METRIC_FLOPS
C_FROM_6ND = "6ND"


@dataclass(frozen=True)
class ExperimentRef:
    """An experiment by id and name."""

    experiment_id: str
    name: str


@dataclass(frozen=True)
class MemberPoint:
    """One usable member run: its (N, D, C, loss) and what is needed to re-read its curve."""

    run_id: str
    run_name: str
    n: float
    d: float
    c: float
    c_source: str
    loss: float
    loss_metric: str
    loss_step: int
    end_time: int | None
    task_tags: dict[str, str] = field(default_factory=dict, compare=False)
    """The run's downstream-task declarations (``scaling.tasks``, ``scaling.task.*``, ...)."""
    metrics: dict[str, float] = field(default_factory=dict, compare=False)
    """Every latest metric of the run (task accuracies and losses are read from here)."""
    lr: float | None = None
    batch: float | None = None
    """Peak learning rate and global batch in tokens (:mod:`.run_values`), when logged."""
    unique_tokens: float | None = None
    """U, the final ``scaling.unique_tokens``; None when the run did not log it."""

    def to_dict(self) -> dict[str, Any]:
        out = {"run_id": self.run_id, "run_name": self.run_name, "N": self.n, "D": self.d,
               "C": self.c, "C_source": self.c_source, "loss": self.loss,
               "loss_metric": self.loss_metric}  # fmt: skip
        if self.unique_tokens is not None:  # absent unless logged: fit.json as before
            out["unique_tokens"] = self.unique_tokens
        return out


@dataclass(frozen=True)
class ExcludedRun:
    """A member run left out of the fit, and why."""

    run_id: str
    run_name: str
    status: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        return {"run_id": self.run_id, "run_name": self.run_name, "status": self.status,
                "reason": self.reason}  # fmt: skip


@dataclass
class Family:
    """The runs of one family in one experiment.

    ``fit_runs`` are the family's fit runs, oldest first; normally there is exactly one, and
    :mod:`fit_run` removes any duplicates a race left behind.
    """

    experiment: ExperimentRef
    name: str
    members: list[MemberPoint] = field(default_factory=list)
    excluded: list[ExcludedRun] = field(default_factory=list)
    fit_runs: list[Run] = field(default_factory=list)
    read_ms: int = 0
    """When the search that read these runs started (this machine's clock, ms): the read
    time a fit of them publishes (:mod:`.fit_run`, invariant 1)."""

    @property
    def fit_run(self) -> Run | None:
        return self.fit_runs[0] if self.fit_runs else None

    @property
    def n_runs(self) -> int:
        return len(self.members) + len(self.excluded)


# --- searching -----------------------------------------------------------------------------


def all_pages(fetch: Callable[[str | None], Any]) -> Iterator[Any]:
    """Every item of a paged MLflow search: ``fetch(page_token)`` returns one page (a
    ``PagedList`` with ``.token``); the pages are followed until one has no token."""
    token = None
    while True:
        page = fetch(token)
        yield from page
        token = page.token
        if not token:
            return


def search_all_runs(
    client: MlflowClient,
    experiment_ids: Sequence[str],
    filter_string: str = "",
    page_size: int = PAGE_SIZE,
    deleted: bool = False,
) -> list[Run]:
    """Every active run (``deleted``: every deleted one) matching ``filter_string``, following
    ``page_token`` to the end.

    ``client`` is an :class:`mlflow.MlflowClient` or anything with its ``search_runs`` (the
    scaling pages pass the server's own store).
    """
    from mlflow.entities import ViewType

    if not experiment_ids:
        return []
    return list(
        all_pages(
            lambda token: client.search_runs(
                list(experiment_ids),
                filter_string=filter_string,
                run_view_type=ViewType.DELETED_ONLY if deleted else ViewType.ACTIVE_ONLY,
                max_results=page_size,
                page_token=token,
            )
        )
    )


def all_experiments(client: MlflowClient) -> list[ExperimentRef]:
    """Every active experiment, sorted by name."""
    from mlflow.entities import ViewType

    found = all_pages(
        lambda token: client.search_experiments(
            view_type=ViewType.ACTIVE_ONLY, max_results=1000, page_token=token
        )
    )
    return sorted((ExperimentRef(e.experiment_id, e.name) for e in found), key=lambda e: e.name)


def resolve_experiments(
    client: MlflowClient, names: Sequence[str] | None = None
) -> list[ExperimentRef]:
    """The named experiments (an unknown name is an :class:`InputError`), or all active ones."""
    if names:
        out = []
        for name in dict.fromkeys(names):
            exp = client.get_experiment_by_name(name)
            if exp is None or exp.lifecycle_stage != "active":
                raise InputError(f"no experiment named {name!r} at {client.tracking_uri}")
            out.append(ExperimentRef(exp.experiment_id, exp.name))
        return out
    return all_experiments(client)


def is_fit_run(run: Run) -> bool:
    return run.data.tags.get(schema.TAG_ROLE) == schema.ROLE_FIT


def family_of(run: Run) -> str | None:
    """The run's family name, exactly as tagged (spaces kept); None when absent or blank.

    Names are compared exactly everywhere (the refit's ``--family``, the pages, the members
    link), so ``" spaced "`` and ``"spaced"`` are two families.
    """
    value = run.data.tags.get(schema.TAG_FAMILY, "")
    return value if value.strip() else None


def read_families(
    client: MlflowClient,
    experiments: Sequence[ExperimentRef],
    families: Sequence[str] | None = None,
    page_size: int = PAGE_SIZE,
) -> list[Family]:
    """Families of ``experiments`` (all, or those named), with members, exclusions, fit runs.

    A named family without any run is returned empty, so callers can say so.
    """
    by_id = {e.experiment_id: e for e in experiments}
    ids = list(by_id)
    read_ms = int(time.time() * 1000)  # before the search: every run it sees ended earlier
    if families:
        runs: list[Run] = []
        for name in dict.fromkeys(families):
            runs.extend(search_all_runs(client, ids, schema.family_filter(name), page_size))
    else:
        runs = search_all_runs(client, ids, ALL_FAMILIES_FILTER, page_size)
    grouped: dict[tuple[str, str], Family] = {}
    if families:
        for exp in experiments:
            for name in dict.fromkeys(families):
                grouped[(exp.experiment_id, name)] = Family(exp, name, read_ms=read_ms)
    wanted = set(families or ())
    seen: set[str] = set()
    for run in runs:
        name = family_of(run)
        if name is None or (wanted and name not in wanted) or run.info.run_id in seen:
            continue  # (a LIKE filter may match other names; see schema.family_filter)
        seen.add(run.info.run_id)
        key = (run.info.experiment_id, name)
        fam = grouped.get(key)
        if fam is None:
            fam = grouped[key] = Family(by_id[run.info.experiment_id], name, read_ms=read_ms)
        if is_fit_run(run):
            fam.fit_runs.append(run)
        else:
            point = member_point(run)
            (fam.members if isinstance(point, MemberPoint) else fam.excluded).append(point)
    out = []
    for fam in grouped.values():
        fam.members.sort(key=lambda p: p.run_id)
        fam.excluded.sort(key=lambda e: e.run_id)
        fam.fit_runs.sort(key=fit_run_order)
        out.append(fam)
    return sorted(out, key=lambda f: (f.experiment.name, f.experiment.experiment_id, f.name))


def fit_run_order(run: Run) -> tuple[int, int, str]:
    """The order that decides which of several fit runs is the family's: the highest
    generation (``scaling.fit_generation``, see ``retention.py``), then the oldest, then the
    run id."""
    return (-fit_generation(run), int(run.info.start_time or 0), run.info.run_id)


def fit_generation(run: Run) -> int:
    text = run.data.tags.get(schema.TAG_FIT_GENERATION, "0")
    return int(text) if text.isdigit() else 0


# --- one run -> one point -------------------------------------------------------------------


def _latest_steps(run: Run) -> dict[str, int]:
    # ``search_runs`` returns each metric's latest value with its step; the step is only on the
    # Metric objects (a private attribute: see compat.metric_steps), not in ``metrics``.
    return {m.key: int(m.step or 0) for m in metric_steps.latest(run) or []}


def _out_of_range(name: str, value: float, quantity: Quantity) -> str | None:
    problem = quantity.problem(value)
    return None if problem is None else f"{name}: {problem}"


def member_point(run: Run) -> MemberPoint | ExcludedRun:
    """The run's point, or why it cannot be one."""
    info, data = run.info, run.data
    name = info.run_name or ""
    status = info.status
    if status != STATUS_FINISHED:
        reason = {
            "FAILED": "run failed (status FAILED)",
            "KILLED": "run was killed (status KILLED)",
        }.get(status, f"run not finished (status {status})")
        return ExcludedRun(info.run_id, name, status, reason)
    metrics = data.metrics
    loss_metric = data.tags.get(schema.TAG_LOSS_METRIC, "").strip() or schema.DEFAULT_LOSS_METRIC
    source = (
        f"named by tag {schema.TAG_LOSS_METRIC}"
        if data.tags.get(schema.TAG_LOSS_METRIC, "").strip()
        else "the default"
    )
    n = metrics.get(schema.METRIC_PARAMS)
    d = metrics.get(schema.METRIC_TOKENS)
    c = metrics.get(schema.METRIC_FLOPS)
    loss = metrics.get(loss_metric)
    reasons = [
        check_value(schema.METRIC_PARAMS, n, f"no metric {schema.METRIC_PARAMS}"),
        check_value(schema.METRIC_TOKENS, d, f"no metric {schema.METRIC_TOKENS}"),
        check_value(loss_metric, loss, f"no loss metric {loss_metric!r} ({source})"),
    ]
    u = metrics.get(schema.METRIC_UNIQUE_TOKENS)
    for key, value in ((schema.METRIC_FLOPS, c), (schema.METRIC_UNIQUE_TOKENS, u)):
        if value is not None:  # optional, but when logged it must be a positive number
            reasons.append(check_value(key, value, ""))
    if not any(reasons[:2]):  # N and D are numbers: are they physical (the input contract)?
        assert n is not None and d is not None
        reasons += [_out_of_range(schema.METRIC_PARAMS, n, PARAMS),
                    _out_of_range(schema.METRIC_TOKENS, d, TOKENS)]  # fmt: skip
    hparams = run_hparams(metrics, data.params, data.tags)
    problems = [r for r in reasons if r] + list(hparams.problems)
    if problems:
        return ExcludedRun(info.run_id, name, status, "; ".join(problems))
    assert n is not None and d is not None and loss is not None
    c_source = C_FROM_METRIC
    if c is None:
        c, c_source = FLOPS_PER_PARAM_TOKEN * n * d, C_FROM_6ND
    return MemberPoint(
        run_id=info.run_id,
        run_name=name,
        n=float(n),
        d=float(d),
        c=float(c),
        c_source=c_source,
        loss=float(loss),
        loss_metric=loss_metric,
        loss_step=_latest_steps(run).get(loss_metric, 0),
        end_time=info.end_time,
        task_tags=schema.task_tags_of(data.tags),
        metrics=dict(metrics),
        lr=hparams.lr,
        batch=hparams.batch,
        unique_tokens=None if u is None else float(u),
    )


# --- training curves (Approach 1) ------------------------------------------------------------


@dataclass(frozen=True)
class Curve:
    """A run's loss against cumulative training FLOPs, sorted by FLOPs."""

    flops: np.ndarray
    loss: np.ndarray


def _curve_key(p: MemberPoint) -> list:
    return [p.end_time, p.loss_metric, p.loss_step, p.loss]


class CurveCache:
    """Curves already read, keyed by run id and valid while the run's end time, loss metric,
    final step and final loss are unchanged. Serialises to the fit run's ``curves.json``."""

    VERSION = 1

    def __init__(self) -> None:
        self._entries: dict[str, dict[str, Any]] = {}

    def get(self, p: MemberPoint) -> Curve | None:
        entry = self._entries.get(p.run_id)
        if entry is None or entry["key"] != _curve_key(p):
            return None
        return Curve(np.asarray(entry["flops"], float), np.asarray(entry["loss"], float))

    def put(self, p: MemberPoint, curve: Curve) -> None:
        self._entries[p.run_id] = {
            "key": _curve_key(p),
            "flops": curve.flops.tolist(),
            "loss": curve.loss.tolist(),
        }

    def update_from_doc(self, doc: dict) -> None:
        """Take entries from a ``curves.json`` document (ignored when of another version)."""
        if isinstance(doc, dict) and doc.get("version") == self.VERSION:
            for run_id, entry in (doc.get("runs") or {}).items():
                if isinstance(entry, dict) and {"key", "flops", "loss"} <= set(entry):
                    self._entries.setdefault(run_id, entry)

    def to_doc(self, run_ids: Iterable[str]) -> dict:
        """The entries of ``run_ids`` as a ``curves.json`` document."""
        runs = {r: self._entries[r] for r in run_ids if r in self._entries}
        return {"version": self.VERSION, "runs": runs}

    def __contains__(self, run_id: str) -> bool:
        return run_id in self._entries


def _history(client: MlflowClient, run_id: str, key: str) -> tuple[np.ndarray, np.ndarray]:
    hist = client.get_metric_history(run_id, key)
    steps = np.array([m.step for m in hist], dtype=float)
    values = np.array([m.value for m in hist], dtype=float)
    return steps, values


def _downsample(flops: np.ndarray, loss: np.ndarray, max_points: int) -> Curve:
    if flops.size > max_points:
        targets = np.geomspace(flops[0], flops[-1], max_points)
        idx = np.unique(
            np.concatenate(
                [np.searchsorted(flops, targets).clip(0, flops.size - 1), [flops.size - 1]]
            )
        )
        flops, loss = flops[idx], loss[idx]
    return Curve(flops, loss)


def read_curve(client: MlflowClient, p: MemberPoint, max_points: int = 256) -> Curve:
    """The run's loss history against its FLOPs history (or 6·N·tokens), joined by step.

    Points without a positive, finite FLOP count and loss are left out; the curve may be
    empty (then the run has no curve to use).
    """
    loss_steps, loss_values = _history(client, p.run_id, p.loss_metric)
    if p.c_source == C_FROM_METRIC:
        c_steps, c_values = _history(client, p.run_id, schema.METRIC_FLOPS)
    else:
        c_steps, tokens = _history(client, p.run_id, schema.METRIC_TOKENS)
        c_values = FLOPS_PER_PARAM_TOKEN * p.n * tokens
    empty = Curve(np.zeros(0), np.zeros(0))
    if loss_steps.size == 0 or c_steps.size == 0:
        return empty
    order = np.argsort(c_steps, kind="stable")
    c_steps, c_values = c_steps[order], c_values[order]
    inside = (loss_steps >= c_steps[0]) & (loss_steps <= c_steps[-1])
    flops = np.interp(loss_steps[inside], c_steps, c_values)
    loss = loss_values[inside]
    ok = np.isfinite(flops) & (flops > 0) & np.isfinite(loss) & (loss > 0)
    flops, loss = flops[ok], loss[ok]
    order = np.argsort(flops, kind="stable")
    return _downsample(flops[order], loss[order], max_points)


def may_have_curve(p: MemberPoint) -> bool:
    """A run whose final loss was logged at step 0 has one point, not a curve."""
    return p.loss_step > 0


def read_curves(
    client: MlflowClient,
    members: Sequence[MemberPoint],
    cache: CurveCache,
    max_workers: int = 8,
) -> tuple[dict[str, Curve], int]:
    """Curves of the members that may have one: from ``cache``, else fetched (in parallel).

    Returns (curves by run id, number of runs whose history was fetched).
    """
    curves: dict[str, Curve] = {}
    todo = []
    for p in members:
        if not may_have_curve(p):
            continue
        cached = cache.get(p)
        if cached is not None:
            curves[p.run_id] = cached
        else:
            todo.append(p)
    if todo:
        with ThreadPoolExecutor(min(max_workers, len(todo))) as pool:
            fetched = list(pool.map(lambda p: read_curve(client, p), todo))
        for p, curve in zip(todo, fetched, strict=True):
            cache.put(p, curve)
            curves[p.run_id] = curve
    return {k: v for k, v in curves.items() if v.flops.size >= 2}, len(todo)
