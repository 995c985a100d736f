"""The learning-rate schedule's name and warmup steps, as Lightning exposes them.

Read from ``trainer.lr_scheduler_configs`` at the start of training and logged as params
``scaling.lr_schedule`` and ``scaling.lr_warmup_steps`` (docs/reference.md). The name is the
scheduler's class (``none`` without one; a ``SequentialLR`` joins its parts with ``+``). Warmup
is known where the schedule states it: a leading ``LinearLR`` that rises (its ``total_iters``,
or ``SequentialLR``'s first milestone when it is the first part) and ``OneCycleLR``
(``pct_start`` of ``total_steps``). Elsewhere warmup is not logged, rather than guessed.
"""

from __future__ import annotations

from typing import Any

from mlflow_scaling.tracking import schema


def _name(scheduler: Any) -> str:
    parts = getattr(scheduler, "_schedulers", None)
    if type(scheduler).__name__ == "SequentialLR" and parts:
        return "+".join(type(p).__name__ for p in parts)
    return type(scheduler).__name__


def _rises(scheduler: Any) -> bool:
    return type(scheduler).__name__ == "LinearLR" and scheduler.start_factor < scheduler.end_factor


def _warmup_steps(scheduler: Any) -> int | None:
    kind = type(scheduler).__name__
    if kind == "SequentialLR" and scheduler._schedulers and _rises(scheduler._schedulers[0]):
        return int(scheduler._milestones[0]) if scheduler._milestones else None
    if _rises(scheduler):
        return int(scheduler.total_iters)
    if kind == "OneCycleLR":
        return int(round(scheduler._schedule_phases[0]["end_step"])) + 1
    return None


def schedule_params(trainer: Any) -> dict[str, str]:
    """``scaling.lr_schedule`` (and ``scaling.lr_warmup_steps`` where stated) of a Trainer."""
    configs = list(getattr(trainer, "lr_scheduler_configs", None) or [])
    if not configs:
        return {schema.PARAM_LR_SCHEDULE: "none"}
    names = [f"{_name(c.scheduler)} per {c.interval}" for c in configs]
    params = {schema.PARAM_LR_SCHEDULE: ", ".join(names)}
    warmup = _warmup_steps(configs[0].scheduler)
    if warmup is not None:
        params[schema.PARAM_LR_WARMUP_STEPS] = str(warmup)
    return params
