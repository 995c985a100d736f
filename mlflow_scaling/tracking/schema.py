"""Every MLflow name of the data contract, in one place (see docs/architecture.md).

The Lightning callback imports this module and nothing else from ``mlflow_scaling``; keep it
free of imports beyond the standard library.
"""

from __future__ import annotations

PREFIX = "scaling."

# Member runs -------------------------------------------------------------------------------
TAG_FAMILY = "scaling.family"
TAG_LOSS_METRIC = "scaling.loss_metric"
DEFAULT_LOSS_METRIC = "val_loss"

METRIC_PARAMS = "scaling.params"
METRIC_PARAMS_TOTAL = "scaling.params_total"
METRIC_PARAMS_NON_EMBEDDING = "scaling.params_non_embedding"
METRIC_TOKENS = "scaling.tokens"
METRIC_FLOPS = "scaling.flops"

METRIC_MFU = "scaling.throughput.mfu"
"""Model FLOPs utilisation the callback measured; ``plan`` takes its default MFU from it."""

PARAM_FLOPS_METHOD = "scaling.flops_method"
PARAM_PARAMS_CONVENTION = "scaling.params_convention"

# Fit runs ----------------------------------------------------------------------------------
TAG_ROLE = "scaling.role"
ROLE_FIT = "fit"
TAG_PHASE = "scaling.phase"
TAG_CHECK = "scaling.check"
TAG_INPUT_DIGEST = "scaling.input_digest"
TAG_SETTINGS_DIGEST = "scaling.settings_digest"
"""Digest of the fit settings (bootstrap count, budgets, check target); written with the input
digest, last."""
TAG_REFIT_NUMBER = "scaling.refit_number"
"""How many refits wrote this fit run; the step of its metrics."""
TAG_TARGET_PARAMS = "scaling.target_params"
"""Optional, set by people on a fit run: the model size the scaling check predicts for."""
TAG_PLAN_GPU = "scaling.plan_gpu"
"""Optional, set by people on a fit run: the GPU (``mlflow-scaling plan --gpu``) each refit
plans the family's target for, written to ``scaling/plan.json``."""
TAG_FIT_ERROR = "scaling.fit_error"
"""Set when the last refit of the family failed; the message names the cause."""

PHASE_COLD_START = "cold_start"
PHASE_SCALING = "scaling"
PHASE_PLATEAU = "plateau"
PHASE_INSUFFICIENT_DATA = "insufficient_data"
PHASES = (PHASE_COLD_START, PHASE_SCALING, PHASE_PLATEAU, PHASE_INSUFFICIENT_DATA)

CHECK_PASS = "pass"
CHECK_FAIL = "fail"

FIT_METRIC_PREFIX = "scaling.fit."
FIT_METRIC_NAMES = ("E", "A", "B", "alpha", "beta", "a", "b")
METRIC_FIT_POINTS = "scaling.fit_points"
"""Member runs used by the refit (step = refit number)."""
METRIC_FIT_EXCLUDED = "scaling.fit_excluded"
"""Member runs left out by the refit, each with its reason in ``scaling/fit.json``."""


SPAN_METRIC_PREFIX = "scaling.span."
SPAN_AXES = ("N", "D", "C")


def span_metric(axis: str, end: str) -> str:
    """Metric key of the smallest (``end="min"``) or largest (``"max"``) N, D or C over the
    members the refit used, for example ``scaling.span.N_min``; the index page reads these
    from the fit run instead of reading every member run."""
    if axis not in SPAN_AXES or end not in ("min", "max"):
        raise ValueError(f"unknown span metric {axis!r}, {end!r}; axes {SPAN_AXES}, ends min/max")
    return f"{SPAN_METRIC_PREFIX}{axis}_{end}"


def fit_metric(name: str) -> str:
    """MLflow metric key of a fitted quantity, for example ``fit_metric("alpha")``."""
    if name not in FIT_METRIC_NAMES:
        raise ValueError(f"unknown fit metric {name!r}; expected one of {FIT_METRIC_NAMES}")
    return FIT_METRIC_PREFIX + name


ARTIFACT_DIR = "scaling"
ARTIFACT_FIT_JSON = "scaling/fit.json"
ARTIFACT_FIT_PNG = "scaling/fit.png"
ARTIFACT_REPORT_HTML = "scaling/report.html"
ARTIFACT_PREDICTIONS_CSV = "scaling/predictions.csv"
ARTIFACT_PLAN_JSON = "scaling/plan.json"
"""The cluster plan for the family's target (``mlflow-scaling plan``), when one is asked for."""
ARTIFACT_CURVES_JSON = "scaling/curves.json"
"""Training curves of the members (Approach 1), kept to skip re-reading unchanged runs."""

# Environment ---------------------------------------------------------------------------------
ENV_FAMILY = "MLFLOW_SCALING_FAMILY"
"""Names the family of every run started in this environment (the run-context plugin)."""
ENV_LOSS_METRIC = "MLFLOW_SCALING_LOSS_METRIC"
"""Optional: the loss metric tag the plugin sets with the family."""


def family_filter(family: str) -> str:
    """A ``search_runs`` filter string selecting one family (dotted keys need backticks).

    MLflow's filter parser has no escape for a quote inside a string value: a name with ``'``
    is quoted with ``"``. A name holding both quote characters cannot be written exactly, so it
    becomes a ``LIKE`` pattern with ``_`` for each ``'`` (and may match a few other names):
    callers then compare the tag exactly.
    """
    key = f"tags.`{TAG_FAMILY}`"
    if "'" not in family:
        return f"{key} = '{family}'"
    if '"' not in family:
        return f'{key} = "{family}"'
    return f"{key} LIKE '{family.replace(chr(39), '_')}'"
