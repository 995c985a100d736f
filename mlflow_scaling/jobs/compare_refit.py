"""The refit job's comparisons: keep the comparisons people declared on families up to date.

A family declares its baseline with the tag ``scaling.compare_to = F1`` on its fit run (F1 in
the same experiment). After fitting, each refit pass compares every declaring family with its
baseline, by the same rule as fits: the comparison run is skipped while its input digest (both
families' member runs) and settings digest equal its tags, and redone otherwise (or with
``--force``). Each comparison is one outcome of the pass, named ``F2 vs F1``, with the status
``compared``, ``skipped`` or ``error``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING

from ..laws.compare import MIN_BOOT, compare_families
from ..tabular import InputError
from ..tracking import schema
from ..tracking.compare_run import (
    comparison_digest,
    comparison_settings,
    family_runs,
    find_compare_runs,
)
from ..tracking.digest import settings_digest
from ..tracking.fit_run import sync_mirrors
from ..tracking.published import published_fit
from ..tracking.reading import Family, read_families
from .compare_publish import write_comparison
from .outcome import STATUS_ERROR, STATUS_SKIPPED, FamilyOutcome, stop_if_unreachable

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from .analysis import RefitSettings

STATUS_COMPARED = "compared"


def pass_comparison_settings(settings: RefitSettings) -> dict:
    """The settings a comparison made by this pass records (and whose digest it carries)."""
    n_boot = max(settings.n_boot, MIN_BOOT)
    return comparison_settings(n_boot, settings.level, settings.seed, settings.budgets)


def comparison_settings_digest(settings: RefitSettings) -> str:
    """The settings digest a comparison made by this pass carries."""
    return settings_digest(pass_comparison_settings(settings))


def declared_comparisons(client: MlflowClient, found: Sequence[Family]) -> Iterator[tuple]:
    """(candidate, baseline name, baseline family or None) for each ``scaling.compare_to``."""
    by_key = {(f.experiment.experiment_id, f.name): f for f in found}
    for cand in found:
        run = cand.fit_run
        name = run.data.tags.get(schema.TAG_COMPARE_TO, "").strip() if run else ""
        if not name:
            continue
        base = by_key.get((cand.experiment.experiment_id, name))
        if base is None:  # the pass was restricted to some families: read the baseline
            base = next((f for f in read_families(client, [cand.experiment], [name])
                         if f.name == name), None)  # fmt: skip
        yield cand, name, base


def compare_declared(
    client: MlflowClient,
    cand: Family,
    base_name: str,
    base: Family | None,
    settings: RefitSettings,
    force: bool,
) -> FamilyOutcome:
    """Bring one declared comparison up to date (or skip it); the outcome says which."""

    outcome = {
        "experiment_id": cand.experiment.experiment_id,
        "experiment": cand.experiment.name,
        "family": f"{cand.name} vs {base_name}",
        "n_members": len(cand.members),
        "n_excluded": len(cand.excluded),
    }
    start = time.monotonic()
    if base is None or not base.members:
        raise InputError(
            f"{schema.TAG_COMPARE_TO} = {base_name!r} on family {cand.name!r}: no usable runs "
            f"of that family in experiment {cand.experiment.name!r}"
        )
    doc_settings = pass_comparison_settings(settings)
    n_boot = doc_settings["n_boot"]
    digest = comparison_digest(base, cand)
    runs = find_compare_runs(client, cand.experiment.experiment_id,
                             base.experiment.experiment_id, base.name, cand.name)  # fmt: skip
    published = published_fit(runs[0]) if runs else None
    if published is not None and not force:
        if published.input_digest == digest and published.settings_digest == settings_digest(
            doc_settings
        ):
            sync_mirrors(client, runs[0].info.run_id, runs[0])
            return FamilyOutcome(**outcome, status=STATUS_SKIPPED, fit_run_id=runs[0].info.run_id,
                                 refit_number=published.number,
                                 check=published.tags.get(schema.TAG_COMPARE_VERDICT),
                                 seconds=time.monotonic() - start,
                                 message="unchanged since the last comparison")  # fmt: skip
    comparison = compare_families(family_runs(base), family_runs(cand), n_boot=n_boot,
                                  level=settings.level, seed=settings.seed,
                                  budgets=settings.budgets or None)  # fmt: skip
    doc = write_comparison(client, comparison, base, cand, settings=doc_settings, known=runs)
    return FamilyOutcome(
        **outcome,
        status=STATUS_COMPARED,
        fit_run_id=doc["compare_run_id"],
        refit_number=doc["refit_number"],
        phase=doc["candidate"]["phase"],
        check=comparison.verdict,
        seconds=time.monotonic() - start,
        message=f"verdict {comparison.verdict}: {comparison.note}",
    )


def refresh_comparisons(
    client: MlflowClient,
    found: Sequence[Family],
    settings: RefitSettings,
    *,
    force: bool,
    emit: Callable[[FamilyOutcome], None],
    should_stop: Callable[[], bool],
) -> None:
    """Every declared comparison among ``found``, one outcome each (errors included)."""

    for cand, base_name, base in declared_comparisons(client, found):
        if should_stop():
            return
        start = time.monotonic()
        try:
            emit(compare_declared(client, cand, base_name, base, settings, force))
        except Exception as exc:
            stop_if_unreachable(client, exc)  # a lost server stops the pass (exit 2)
            detail = (str(exc).strip().splitlines() or [""])[0]
            emit(FamilyOutcome(
                experiment_id=cand.experiment.experiment_id, experiment=cand.experiment.name,
                family=f"{cand.name} vs {base_name}", status=STATUS_ERROR,
                seconds=time.monotonic() - start, message=f"{type(exc).__name__}: {detail}",
            ))  # fmt: skip
