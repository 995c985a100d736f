"""A member run's numbers, checked: the value rule, and the learning rate and batch it used.

:func:`check_value` is the rule every number a member run contributes must pass (present,
finite, not the store's float limit, positive); it names the value when one fails.

:func:`run_hparams` reads the peak learning rate η and the global batch B in tokens that the
hyperparameter laws need (docs/hparams.md), in this order:

* the metrics ``scaling.lr_peak`` and ``scaling.batch_tokens`` (what the callback logs);
* else the param or metric named by the run's tag ``scaling.lr_key`` / ``scaling.batch_key``
  (a metric of that name first, then a param), the batch read in the unit of the tag
  ``scaling.batch_unit``: ``tokens`` (the default) or ``sequences:<seq_len>`` (the value times
  seq_len).

A run with neither has no value there (it is simply not part of a sweep). A tag that names
nothing on the run, a value that is not a positive finite number, and a unit that is neither
form are *problems*: the refit excludes the run and gives each problem as its reason, naming
the tag, the key and the value.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping
from dataclasses import dataclass

from . import schema

FLOAT_LIMIT = sys.float_info.max
"""MLflow's SQL stores keep ``inf`` as the largest double (1.797e308) and ``-inf`` as its
negative: a value at that limit was infinite when logged."""
UNIT_TOKENS = "tokens"
UNIT_SEQUENCES = "sequences:"


def check_value(name: str, value: float | None, missing: str) -> str | None:
    """None when ``value`` is a usable positive number, else what is wrong with it
    (``missing`` when it is None)."""
    if value is None:
        return missing
    if not math.isfinite(value):
        return f"{name} is {value} (must be finite)"
    if abs(value) >= FLOAT_LIMIT:
        sign = "-" if value < 0 else ""
        return (
            f"{name} is {value:.4g}, the float limit: {sign}inf as the store keeps it "
            "(must be finite)"
        )
    if value <= 0:
        return f"{name} = {value:g} (must be positive)"
    return None


@dataclass(frozen=True)
class RunHparams:
    """The run's peak learning rate and global batch in tokens (None: not logged), and the
    problems that make the run unusable (empty when there are none)."""

    lr: float | None
    batch: float | None
    problems: tuple[str, ...] = ()


def _named(
    metric: str, key_tag: str, metrics: Mapping[str, float], params: Mapping[str, str],
    tags: Mapping[str, str],
) -> tuple[float | None, str | None, str]:  # fmt: skip
    """(value, problem, where it came from) of one hyperparameter: its metric, else the
    param or metric its tag names; (None, None, '') when the run has neither."""
    if metric in metrics:
        value = metrics[metric]
        return value, check_value(f"metric {metric}", value, ""), f"metric {metric}"
    key = tags.get(key_tag, "").strip()
    if not key:
        return None, None, ""
    where = f"tag {key_tag} = {key!r}"
    if key in metrics:
        value = metrics[key]
        return value, check_value(f"{where}: metric {key!r}", value, ""), where
    if key not in params:
        return None, f"{where}, but the run has no param or metric {key!r}", where
    text = params[key]
    try:
        value = float(text)
    except ValueError:
        return None, f"{where}: param {key!r} = {text!r} is not a number", where
    return value, check_value(f"{where}: param {key!r}", value, ""), where


def _seq_len(tags: Mapping[str, str]) -> tuple[int | None, str | None]:
    """The batch unit's sequence length (1 for tokens), or the problem with the tag."""
    unit = tags.get(schema.TAG_BATCH_UNIT, "").strip() or UNIT_TOKENS
    if unit == UNIT_TOKENS:
        return 1, None
    if unit.startswith(UNIT_SEQUENCES):
        text = unit[len(UNIT_SEQUENCES) :].strip()
        if text.isdigit() and int(text) > 0:
            return int(text), None
    return None, (
        f"tag {schema.TAG_BATCH_UNIT} = {unit!r}: expected {UNIT_TOKENS!r} or "
        f"'{UNIT_SEQUENCES}<seq_len>' with a positive whole seq_len"
    )


def run_hparams(
    metrics: Mapping[str, float], params: Mapping[str, str], tags: Mapping[str, str]
) -> RunHparams:
    """The run's η and B in tokens (module docstring), with any problems named."""
    lr, lr_problem, _ = _named(schema.METRIC_LR_PEAK, schema.TAG_LR_KEY, metrics, params, tags)
    batch, batch_problem, where = _named(
        schema.METRIC_BATCH_TOKENS, schema.TAG_BATCH_KEY, metrics, params, tags
    )
    problems = [p for p in (lr_problem, batch_problem) if p]
    if batch is not None and batch_problem is None and where.startswith("tag"):
        seq_len, unit_problem = _seq_len(tags)
        if unit_problem:
            problems.append(unit_problem)
        else:
            batch = batch * (seq_len or 1)
    if problems:
        return RunHparams(None, None, tuple(problems))
    return RunHparams(lr, batch)
