"""Every MLflow name of the data contract, in one place (see docs/architecture.md).

The counting integrations (``mlflow_scaling.integrations``, the Lightning callback) import this
module and nothing else from ``mlflow_scaling`` outside ``integrations``; keep it
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
METRIC_BATCH_TOKENS = "scaling.batch_tokens"
"""Global batch in tokens per optimizer step: the non-padding tokens of one optimizer step, all
gradient-accumulation micro-batches of all ranks (counted tokens x accumulation x world size),
averaged over the run so far (``scaling.tokens`` / optimizer steps)."""
METRIC_LR_PEAK = "scaling.lr_peak"
"""The largest learning rate of the run so far: max over optimizer steps and parameter groups
of the optimizer's ``lr``."""
METRIC_UNIQUE_TOKENS = "scaling.unique_tokens"
"""U: the distinct training tokens the run draws from (its corpus, counted like
``scaling.tokens``); repeated epochs see them again. The data-constrained law
(docs/data-constrained.md) uses min(U, D): a run shorter than one epoch saw D fresh tokens."""
METRIC_EPOCHS = "scaling.epochs"
"""``scaling.tokens`` / ``scaling.unique_tokens``: passes over the unique tokens so far."""
PARAM_UNIQUE_TOKENS_SOURCE = "scaling.unique_tokens_source"
"""Where ``scaling.unique_tokens`` came from: ``argument`` (``unique_tokens=``) or
``dataset:<len>x<seq_len>`` (a dataset of fixed-length token sequences)."""
PARAM_LR_SCHEDULE = "scaling.lr_schedule"
"""The learning-rate scheduler(s) Lightning drives, ``<class> per <step|epoch>`` (``none``
without one); a ``SequentialLR`` joins its parts with ``+`` (``lightning_callbacks.schedule``)."""
PARAM_LR_WARMUP_STEPS = "scaling.lr_warmup_steps"
"""Warmup steps where the schedule states them (a leading rising ``LinearLR``, ``OneCycleLR``)."""
TAG_LR_KEY = "scaling.lr_key"
"""Set by people on runs without ``scaling.lr_peak``: the param or metric holding the peak
learning rate (e.g. ``lr``)."""
TAG_BATCH_KEY = "scaling.batch_key"
"""Set by people on runs without ``scaling.batch_tokens``: the param or metric holding the
global batch (e.g. ``batch_size``)."""
TAG_BATCH_UNIT = "scaling.batch_unit"
"""The unit of ``scaling.batch_key``: ``tokens`` (default) or ``sequences:<seq_len>`` (the batch
in tokens is then the value x seq_len)."""

# Downstream tasks (on member runs, or on any run of the family) ----------------------------
TAG_TASKS = "scaling.tasks"
"""Comma-separated task names, e.g. ``hellaswag,arc_easy``."""
TAG_GATING_TASKS = "scaling.gating_tasks"
"""Comma-separated tasks whose prediction gates the scaling check."""
TASK_TAG_PREFIX = "scaling.task."
TASK_FIELDS = ("metric", "loss_metric", "chance", "n_examples")
"""Per task T, tag ``scaling.task.T.<field>``: ``metric`` the accuracy metric (default: T
itself), ``loss_metric`` the optional task-loss metric (e.g. bits per byte of the correct
answer; without one the training loss is the step-1 variable), ``chance`` the accuracy of a
guess (required, e.g. 0.25), ``n_examples`` the evaluation examples (for the cold-start test)."""
TASK_NAME_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-"


def task_tag(task: str, field: str) -> str:
    """Tag key of a task's declaration field, for example ``task_tag("arc_easy", "chance")``."""
    if field not in TASK_FIELDS:
        raise ValueError(f"unknown task field {field!r}; expected one of {TASK_FIELDS}")
    return f"{TASK_TAG_PREFIX}{task}.{field}"


def task_tags_of(tags: dict[str, str]) -> dict[str, str]:
    """The downstream-task declarations among a run's tags."""
    return {
        k: v
        for k, v in tags.items()
        if k in (TAG_TASKS, TAG_GATING_TASKS) or k.startswith(TASK_TAG_PREFIX)
    }


def task_fit_metric(task: str, name: str) -> str:
    """Fit-run metric key of a task result, e.g. ``scaling.fit.task.arc_easy.accuracy``."""
    return f"{FIT_METRIC_PREFIX}task.{task}.{name}"


def task_phase_tag(task: str) -> str:
    """Fit-run tag holding a task's downstream phase, e.g. ``scaling.fit.task.arc_easy.phase``."""
    return f"{FIT_METRIC_PREFIX}task.{task}.phase"


TASK_FIT_METRICS = ("accuracy", "lo", "hi", "ceiling", "floor", "k", "L0", "backtest_error")
"""Per task on the fit run: predicted accuracy at the target with its interval, the sigmoid,
and the absolute error predicting the largest size from the smaller ones."""

PARAM_FLOPS_METHOD = "scaling.flops_method"
PARAM_PARAMS_CONVENTION = "scaling.params_convention"

# Member runs: what the Lightning callback logs beyond N, D and C ------------------------------
# Diagnostics for people looking at a run; the refit reads none of them.
METRIC_TOKENS_TOTAL = "scaling.tokens_total"
"""Cumulative input positions over all ranks, padding included."""
METRIC_TOKENS_LOSS = "scaling.tokens_loss"
"""Cumulative loss-bearing positions (labels other than the ignore index)."""
METRIC_FLOPS_HARDWARE = "scaling.flops_hardware"
"""Cumulative FLOPs spent: FLOPs per token x every processed position, padding included
(``scaling.flops``, the law's C, counts the non-padding tokens only). No activation
recomputation is counted."""
METRIC_FLOPS_PER_TOKEN = "scaling.flops_per_token"
"""Training FLOPs per token of the first batch, by ``scaling.flops_method``."""
METRIC_FLOPS_PER_TOKEN_MEASURED = "scaling.flops_per_token_measured"
"""The meta-device measurement the analytic count was checked against."""
METRIC_TOKENS_PER_SECOND = "scaling.throughput.tokens_per_s"
"""Non-padding tokens per second over the last logging interval, all ranks, validation out."""
METRIC_FLOPS_PER_SECOND = "scaling.throughput.flops_per_s"
"""Hardware FLOPs (``scaling.flops_hardware``) per second over the last logging interval."""
METRIC_MFU = "scaling.throughput.mfu"
"""FLOPs utilisation: ``scaling.throughput.flops_per_s`` over (peak FLOPs/s of one device x
world size); logged only when the peak is known. ``plan`` takes its default MFU from it."""

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
TAG_MAX_HALFWIDTH = "scaling.max_halfwidth"
"""Optional, set by people on a fit run: the check's precision bound, (hi − lo)/2 over the
predicted loss at the target (default 0.05)."""
TAG_PLAN_GPU = "scaling.plan_gpu"
"""Optional, set by people on a fit run: the GPU (``mlflow-scaling plan --gpu``) each refit
plans the family's target for, written to ``scaling/plan.json``."""
TAG_FIT_ERROR = "scaling.fit_error"
"""Set when the last refit of the family failed; the message names the cause. A fit run with a
non-empty error is never skipped by the next pass."""
TAG_PUBLISHED_PATH = "scaling.published_path"
"""Mirror: the artifact folder of the published fit (``scaling/fits/<n>-<token>``)."""
PARAM_REFIT_CLAIM_PREFIX = "scaling.refit_claim."
"""Param ``scaling.refit_claim.<n>`` = ``<token>@<ms>``, a writer's token and claim time: refit
number n is taken (params cannot change, so exactly one writer holds each number)."""
PARAM_PUBLISHED_PREFIX = "scaling.published."
"""Param ``scaling.published.<n>`` = JSON record of refit n (artifact folder, digests, phase,
check, read time, metrics). The published fit of a fit run is the record with the latest read
time, then the highest n (``tracking/fit_run.py``, invariant 1); the tags
``scaling.phase``, ``scaling.check``, ``scaling.refit_number``, the digests and
``scaling.published_path`` mirror it."""

TAG_FIT_GENERATION = "scaling.fit_generation"
"""A fit run rolled over (``tracking/retention.py``) carries its predecessor's generation + 1
(absent: 0); of several active fit runs of a family, the highest generation counts."""

TAG_DELETED_DIGEST = "scaling.deleted_digest"
"""Digest of the ids of the family's deleted member runs when a pass last read it in full
(absent or empty: none); the quick check compares it with the deleted runs it sees now."""

# Experiments -------------------------------------------------------------------------------
TAG_REFIT_WATERMARK = "scaling.refit_checked"
"""Experiment tag ``{"read_ms": T, "full_ms": F}``: when the last completed refit pass over
every family started reading, and when the last full check did (``...checked.<i>of<n>`` for a
shard's pass). The quick check reads only runs that started or ended after T."""
TAG_TOUCHED_PREFIX = "scaling.touched."
"""Experiment tag ``scaling.touched.<hash of the family name>`` = ``{"family": F, "ms": T}``:
our commands (``families --assign``) changed the tags of F's runs at T, so the quick check of
a pass whose watermark is older reads F in full."""

PHASE_COLD_START = "cold_start"
PHASE_SCALING = "scaling"
PHASE_PLATEAU = "plateau"
PHASE_INVERSE_SCALING = "inverse_scaling"
PHASE_INSUFFICIENT_DATA = "insufficient_data"
PHASE_DATA_LIMITED = "data_limited"
"""A plateau that repeated data explains (the data-constrained law; families logging U only)."""
PHASES = (
    PHASE_COLD_START,
    PHASE_SCALING,
    PHASE_PLATEAU,
    PHASE_INVERSE_SCALING,
    PHASE_INSUFFICIENT_DATA,
    PHASE_DATA_LIMITED,
)

CHECK_PASS = "pass"
CHECK_FAIL = "fail"

FIT_METRIC_PREFIX = "scaling.fit."
FIT_METRIC_NAMES = ("E", "A", "B", "alpha", "beta", "a", "b")
METRIC_FIT_LR = "scaling.fit.hparams.lr"
"""The peak learning rate predicted at the check's target (families that sweep it)."""
METRIC_FIT_BATCH = "scaling.fit.hparams.batch_tokens"
"""The global batch in tokens predicted at the check's target (families that sweep it)."""
METRIC_FIT_R_STAR_D = "scaling.fit.repeats.r_star_d"
METRIC_FIT_R_STAR_N = "scaling.fit.repeats.r_star_n"
METRIC_FIT_EPOCHS_WORTH = "scaling.fit.repeats.epochs_worth_tenth"
"""The data-constrained law's R*_D, R*_N and 10 %-epoch count (families that repeat data)."""
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
ARTIFACT_FITS_DIR = "scaling/fits"
"""Each refit writes its files under its own folder ``scaling/fits/<n>-<token>/``; the names
below are the files' logical names, found in the published folder with
:func:`mlflow_scaling.tracking.published.published_artifact_path`."""
ARTIFACT_FIT_JSON = "scaling/fit.json"
ARTIFACT_FIT_PNG = "scaling/fit.png"
ARTIFACT_REPORT_HTML = "scaling/report.html"
ARTIFACT_PREDICTIONS_CSV = "scaling/predictions.csv"
ARTIFACT_TASKS_PNG = "scaling/tasks.png"
"""Accuracy against compute per task with the fitted chain; task loss → accuracy."""
ARTIFACT_HPARAMS_PNG = "scaling/hparams.png"
"""A family's learning-rate/batch sweep: per-cell loss maps and η_opt, B_opt against compute."""
ARTIFACT_DATA_CONSTRAINED_PNG = "scaling/data_constrained.png"
"""Loss against epochs at fixed unique tokens per size, with the data-constrained and the
fresh-data laws (families whose runs repeat their data)."""
ARTIFACT_PLAN_JSON = "scaling/plan.json"
"""The cluster plan for the family's target (``mlflow-scaling plan``), when one is asked for."""
ARTIFACT_CURVES_JSON = "scaling/curves.json"
"""Training curves of the members (Approach 1), kept to skip re-reading unchanged runs."""

# Comparison runs (``mlflow-scaling compare``; in the candidate's experiment) -----------------
ROLE_COMPARE = "compare"
TAG_COMPARE_BASELINE = "scaling.compare.baseline"
TAG_COMPARE_CANDIDATE = "scaling.compare.candidate"
TAG_COMPARE_BASELINE_EXPERIMENT = "scaling.compare.baseline_experiment"
"""Id of the baseline family's experiment (the candidate's is the run's own)."""
TAG_COMPARE_VERDICT = "scaling.compare.verdict"
"""Over the trained range, from the measured frontiers: better, worse, crosses, no_difference or
withheld."""
TAG_COMPARE_VERDICT_EXTRAPOLATED = "scaling.compare.verdict_extrapolated"
"""Past the trained range, from the laws: the same words; withheld where a law misfits."""
TAG_COMPARE_SLOPE = "scaling.compare.slope"
"""The slope test's decision: same_slope, steeper or shallower."""
METRIC_COMPARE_SHIFT = "scaling.compare.shift_multiplier"
"""The one compute multiplier of the shift fit (with ``_lo`` and ``_hi``)."""
TAG_COMPARE_TO = "scaling.compare_to"
"""Set by people on a family's fit run: the baseline family (same experiment) that the refit
job keeps this family compared with."""
METRIC_COMPARE_MULTIPLIER = "scaling.compare.multiplier"
"""The compute multiplier at the largest budget; per budget: ``compare_budget_metric``."""
METRIC_COMPARE_CROSSOVER = "scaling.compare.crossover_flops"
ARTIFACT_COMPARE_JSON = "scaling/compare.json"
ARTIFACT_COMPARE_PNG = "scaling/compare.png"


def compare_budget_metric(flops: float, which: str = "multiplier") -> str:
    """Metric key of the multiplier (or its ``lo``/``hi`` bound) at one budget, e.g.
    ``scaling.compare.multiplier.C3.2e17``."""
    if which not in ("multiplier", "lo", "hi"):
        raise ValueError(f"which must be multiplier, lo or hi, got {which!r}")
    mantissa, exponent = f"{flops:.1e}".split("e")
    label = f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"
    suffix = "" if which == "multiplier" else f"_{which}"
    return f"{METRIC_COMPARE_MULTIPLIER}{suffix}.C{label}"


# Environment ---------------------------------------------------------------------------------
ENV_FAMILY = "MLFLOW_SCALING_FAMILY"
"""Names the family of every run started in this environment (the run-context plugin)."""
ENV_LOSS_METRIC = "MLFLOW_SCALING_LOSS_METRIC"
"""Optional: the loss metric tag the plugin sets with the family."""


def family_filter(family: str) -> str:
    """A ``search_runs`` filter string selecting one family (dotted keys need backticks).

    MLflow's filter parser has no escape for a quote inside a string value: a name with ``'``
    is quoted with ``"``. A name holding both quote characters, or a backslash, cannot be
    written exactly, so it becomes a ``LIKE`` pattern with ``_`` for each ``'`` and ``\\`` (and
    may match a few other names): callers then compare the tag exactly. Names are exact: no
    trimming of spaces anywhere.
    """
    return tag_filter(TAG_FAMILY, family)


def tag_filter(tag: str, value: str) -> str:
    """``tags.`tag` = value`` for ``search_runs``, quoted as :func:`family_filter` explains."""
    key = f"tags.`{tag}`"
    if "\\" not in value:
        if "'" not in value:
            return f"{key} = '{value}'"
        if '"' not in value:
            return f'{key} = "{value}"'
    # MLflow's parser reads a backslash before a quote as an escape (a value ending in "\\"
    # swallows its closing quote); a LIKE pattern with "_" in place of each backslash and
    # quote avoids both.
    return f"{key} LIKE '{value.replace(chr(92), '_').replace(chr(39), '_')}'"
