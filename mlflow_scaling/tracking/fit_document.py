"""``scaling/fit.json``: the typed document one refit writes and its readers load.

The refit job builds it (:func:`..jobs.refit.build_fit_document`) from the family's runs and
the analysis (:func:`..jobs.analysis.analyze_family`), validates it here, and writes
:meth:`FitDocument.to_dict`; readers load it with :func:`load_fit_document`, so a key renamed on
one side fails where the document is made or read, naming the key, not at a distance. The
JSON Schema in ``docs/fit.schema.json`` is generated from these types (:func:`json_schema`;
``python -m mlflow_scaling.tracking.fit_document > docs/fit.schema.json``;
``tests/test_fit_document.py`` checks the committed file is the generated one).

Top-level keys are all typed; the science's sections (``approach1..3``, ``phases``,
``check``, ``budgets``, ``tasks``, ``plan``, ``hparams``, ``data_constrained``) keep the keys
their producers document (their ``to_dict``), with the keys every reader relies on typed here.
``version`` changes when a key is renamed or removed (adding a key keeps it).
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

FIT_DOC_SCHEMA = "mlflow-scaling/fit"
FIT_DOC_VERSION = 1


class _Closed(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Open(BaseModel):
    """A section whose typed keys are the ones readers use; its producer may add more."""

    model_config = ConfigDict(extra="allow")


class Member(_Closed):
    """A member run the law was fitted on."""

    run_id: str
    run_name: str
    N: float
    D: float
    C: float | None
    C_source: str = Field(description="'scaling.flops' when logged, else how C was derived")
    loss: float
    loss_metric: str
    unique_tokens: float | None = Field(
        default=None, description="U, the run's scaling.unique_tokens (absent when not logged)"
    )


class Excluded(_Closed):
    """A member run left out of the fit, with its reason."""

    run_id: str
    run_name: str
    status: str
    reason: str


class Settings(_Open):
    """What the refit ran with (its digest decides whether a family is refitted)."""

    n_boot: int | None = None
    level: float | None = None
    seed: int | None = None
    huber_delta: float | str | None = None
    min_points: int | None = None
    budgets: list[float] | None = None
    target_params: float | None = None
    max_halfwidth: float | None = None
    curves: bool | None = None
    plan_gpu: str | None = None
    analysis_version: int | None = None


class ComputeAxisDoc(_Open):
    kind: str
    formula: str | None = None


class Applicability(_Open):
    """Approach 1 or 2: its results, or why it does not apply."""

    applicable: bool
    reason: str | None = None


class Phases(_Open):
    phase: str
    reason: str | None = None
    segments: list[dict[str, Any]]


class Check(_Open):
    verdict: str
    criteria: list[dict[str, Any]]


class HparamsDoc(_Open):
    """The learning-rate and batch laws of a family whose runs sweep them (docs/hparams.md);
    absent without a sweep. ``error`` instead of the fit when the sweep cannot be fitted."""

    by: str = "ND"
    law_runs: str = Field(description="which runs the Chinchilla law is fitted on")
    target: dict[str, Any] = Field(description="N, D and source of the predictions")
    swept_runs: int
    notes: list[str]
    error: str | None = None
    axes: list[str] | None = None
    cells: list[dict[str, Any]] | None = None
    laws: dict[str, dict[str, Any] | None] | None = None
    law_choice: dict[str, str] | None = None
    predictions: list[dict[str, Any]] | None = None
    runs: list[dict[str, Any]] | None = Field(
        None, description="the sweep's runs: cell (index into cells), in_law (used by the law)"
    )


class DataConstrainedDoc(_Open):
    """Repeated data (docs/data-constrained.md): the data-constrained law of the runs that
    logged their unique tokens (the fit's ``to_dict``), the target's epochs at the family's U,
    the runs without U and ``phase`` (whether the frontier's plateau is ``data_limited``, with
    the rule's numbers); ``error`` instead when the law could not be fitted."""

    identified: bool | None = None
    params: dict[str, float] | None = None
    intervals: dict[str, list[float]] | None = None
    epochs_worth_tenth: float | None = None
    fresh_law: dict[str, float] | None = None
    unique_tokens: float | None = None
    target: dict[str, Any] | None = None
    runs_without_unique_tokens: list[dict[str, str]]
    phase: dict[str, Any] | None = None
    error: str | None = None


class FitDocument(_Closed):
    """The whole of ``scaling/fit.json``."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    doc_schema: Literal["mlflow-scaling/fit"] = Field(alias="schema")
    version: Literal[1]
    family: str
    experiment_id: str
    experiment_name: str
    fit_run_id: str
    refit_number: int
    fitted_at: str
    input_digest: str
    settings_digest: str
    settings: Settings
    loss_metric: str
    n_members: int
    n_excluded: int
    member_run_ids: list[str]
    members: list[Member]
    excluded: list[Excluded]
    status: Literal["fitted", "insufficient_data"]
    reason: str | None
    phase: str
    check_verdict: str
    compute_axis: ComputeAxisDoc
    approach3: dict[str, Any] | None = Field(
        description="the parametric law (Approach 3): params, ci, allocation, uncertainty, "
        "budgets; null when there is too little data"
    )
    approach2: Applicability
    approach1: Applicability
    phases: Phases
    check: Check
    budgets: list[dict[str, Any]]
    tasks: dict[str, Any]
    unavailable: list[str] | None = None
    plan: dict[str, Any] | None = None
    hparams: HparamsDoc | None = None
    data_constrained: DataConstrainedDoc | None = None
    non_finite: list[dict[str, str]] | None = Field(
        default=None,
        description="the fields written as null because they held NaN or an infinity: "
        "field, value, reason (mlflow_scaling.strict_json); absent when there were none",
    )

    def to_dict(self) -> dict[str, Any]:
        """The JSON object written to ``fit.json`` (keys absent from the input stay absent)."""
        return self.model_dump(mode="json", by_alias=True, exclude_unset=True)


class FitDocumentError(ValueError):
    """A ``fit.json`` that is not this version's document; the message names the keys."""


def load_fit_document(doc: Any, where: str = "fit.json") -> FitDocument:
    """The typed document of ``doc`` (a parsed ``fit.json``), or :class:`FitDocumentError`
    naming ``where`` and every key that is missing, renamed or of the wrong type."""
    if isinstance(doc, dict) and doc.get("version") not in (None, FIT_DOC_VERSION):
        raise FitDocumentError(
            f"{where}: version {doc.get('version')!r}, this mlflow-scaling reads version "
            f"{FIT_DOC_VERSION} (refit the family with this version)"
        )
    try:
        return FitDocument.model_validate(doc)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'document'}: {e['msg']}" for e in exc.errors()
        )
        raise FitDocumentError(f"{where}: not a fit document ({problems})") from None


def json_schema() -> dict[str, Any]:
    """The JSON Schema of ``fit.json`` (``docs/fit.schema.json``), generated from the types."""
    out = FitDocument.model_json_schema(by_alias=True)
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **out}


if __name__ == "__main__":
    print(json.dumps(json_schema(), indent=2))
