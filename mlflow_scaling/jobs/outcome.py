"""What a refit pass did with one family (:class:`FamilyOutcome`) and the status names it uses
besides the analysis's own (``fitted``, ``insufficient_data``)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from ..tracking.connection import TrackingUnavailable, check_reachable

if TYPE_CHECKING:
    from mlflow import MlflowClient

STATUS_SKIPPED = "skipped"
STATUS_SUPERSEDED = "superseded"
"""Another pass published a fit of runs it read later; this pass's fit is not the fit."""
STATUS_ERROR = "error"


@dataclass(frozen=True)
class FamilyOutcome:
    """What a pass did with one family.

    ``status``: ``fitted``, ``insufficient_data`` (a fit run saying why was written),
    ``skipped`` (nothing changed since the last fit), ``superseded`` (a pass that read the runs
    later published first: ``message`` says which refit stays the fit) or ``error``
    (``message`` says why; ``error_recorded`` whether the fit run's error tag read back).
    """

    experiment_id: str
    experiment: str
    family: str
    status: str
    fit_run_id: str | None = None
    refit_number: int | None = None
    phase: str | None = None
    check: str | None = None
    n_members: int = 0
    n_excluded: int = 0
    curves_fetched: int = 0
    seconds: float = 0.0
    message: str = ""
    error_recorded: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def stop_if_unreachable(client: MlflowClient, exc: BaseException) -> None:
    """Re-raise a lost tracking server as :class:`TrackingUnavailable`: the pass stops."""
    if isinstance(exc, TrackingUnavailable):
        raise exc
    check_reachable(client.tracking_uri)
