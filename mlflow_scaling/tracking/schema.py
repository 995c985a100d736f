"""Every MLflow name of the data contract, in one place (see DESIGN.md and the README).

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

PARAM_FLOPS_METHOD = "scaling.flops_method"
PARAM_PARAMS_CONVENTION = "scaling.params_convention"

# Fit runs ----------------------------------------------------------------------------------
TAG_ROLE = "scaling.role"
ROLE_FIT = "fit"
TAG_PHASE = "scaling.phase"
TAG_CHECK = "scaling.check"
TAG_INPUT_DIGEST = "scaling.input_digest"

PHASE_COLD_START = "cold_start"
PHASE_SCALING = "scaling"
PHASE_PLATEAU = "plateau"
PHASE_INSUFFICIENT_DATA = "insufficient_data"
PHASES = (PHASE_COLD_START, PHASE_SCALING, PHASE_PLATEAU, PHASE_INSUFFICIENT_DATA)

CHECK_PASS = "pass"
CHECK_FAIL = "fail"

FIT_METRIC_PREFIX = "scaling.fit."
FIT_METRIC_NAMES = ("E", "A", "B", "alpha", "beta", "a", "b")


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

# Environment ---------------------------------------------------------------------------------
ENV_FAMILY = "MLFLOW_SCALING_FAMILY"


def family_filter(family: str) -> str:
    """A ``search_runs`` filter string selecting one family (dotted keys need backticks)."""
    escaped = family.replace("'", "\\'")
    return f"tags.`{TAG_FAMILY}` = '{escaped}'"
