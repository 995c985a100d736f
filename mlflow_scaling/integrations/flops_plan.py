"""Choosing, on the first batch, how FLOPs per token are counted, and cross-checking it once.

In order: a number the user gave; the analytic transformer formula when the model's shape and
the sequence length are known; a meta-device measurement per batch shape; 6·N as a last resort
(with a warning). An analytic or user count is compared once, on rank zero, with a meta-device
measurement; a difference beyond the tolerance warns.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from .counting import Count, ParamCounts, TokenCounts, sequence_length
from .errors import ScalingLawWarning
from .flops import (
    ANALYTIC_FORMULA,
    FlopsPerToken,
    analytic_flops_per_token,
    format_flops,
    infer_transformer_shape,
    measure_training_flops,
    relative_difference,
)
from .settings import CountingSettings


@dataclass(frozen=True)
class FlopsPlan:
    """How FLOPs are counted, the first batch's FLOPs per token, and its measurement if made."""

    per_token: FlopsPerToken
    first: float
    measured: float | None


class _Measurer:
    """One meta-device measurement of the first batch, remembering why it failed."""

    def __init__(self, model: nn.Module, batch: Any, counts: TokenCounts, settings: Any) -> None:
        self.model, self.batch, self.counts = model, batch, counts
        self.forward_fn = settings.flops_forward_fn
        self.error: str | None = None

    def __call__(self, params: ParamCounts) -> float | None:
        if params.sharding is not None:
            # The sharded model's forward runs the strategy's collectives (all-gathers);
            # on the meta device, and on one rank, that would fail or hang.
            self.error = f"not attempted: the parameters are sharded ({params.sharding})"
            return None
        try:
            flops = measure_training_flops(self.model, self.batch, self.forward_fn)
        except Exception as err:  # the model may not run on the meta device
            self.error = f"{type(err).__name__}: {err}"
            return None
        return flops / max(host_int(self.counts.total), 1)


def plan_flops(
    settings: CountingSettings,
    model: nn.Module,
    batch: Any,
    counts: TokenCounts,
    params: ParamCounts,
    rank_zero: bool,
    owner: str,
) -> FlopsPlan:
    """Decide how FLOPs per token are obtained (module docstring); ``owner`` names the counter
    the user configured (``ScalingLawCallback``, ...) in messages."""
    measure = _Measurer(model, batch, counts, settings)
    cross_check = settings.cross_check and params.sharding is None
    checked = ""
    if settings.cross_check:
        checked = (
            "; cross-checked on the meta device"
            if cross_check
            else f"; not cross-checked: the parameters are sharded ({params.sharding})"
        )
    shape = settings.transformer_shape or infer_transformer_shape(model)
    seq_len = sequence_length(batch) or settings.seq_len
    measured: float | None = None
    if settings.flops_per_token is not None:
        main = float(settings.flops_per_token)
        plan = FlopsPerToken(
            "user", f"user: flops_per_token={main:g} given to {owner}" + checked, constant=main
        )
    elif shape is not None and seq_len is not None:
        plan = FlopsPerToken(
            "analytic",
            f"analytic: {ANALYTIC_FORMULA} per token, forward+backward, attention not "
            f"halved for causal masks; n_layer={shape.n_layer}, n_head={shape.n_head}, "
            f"head_dim={shape.head_dim} (from {shape.source})" + checked,
            params=params,
            shape=shape,
            default_seq_len=settings.seq_len,
        )
        main = analytic_flops_per_token(params, shape, seq_len)
    else:
        plan, main = _measured_or_approximate(model, batch, params, measure, rank_zero, owner)
        measured = main if plan.kind == "measured" else None
    if rank_zero and cross_check and plan.kind in ("analytic", "user"):
        measured = measure(params)
        _warn_on_disagreement(plan.kind, main, measured, measure.error, model, settings)
    return FlopsPlan(plan, main, measured)


def _measured_or_approximate(
    model: nn.Module,
    batch: Any,
    params: ParamCounts,
    measure: _Measurer,
    rank_zero: bool,
    owner: str,
) -> tuple[FlopsPerToken, float]:
    measured = measure(params)
    if measured is not None:
        plan = FlopsPerToken(
            "measured",
            "measured: torch FlopCounterMode on the meta device, one forward+backward "
            "per batch shape, divided by the batch's positions (padding included), "
            "times its non-padding tokens (scaling.flops) or all its positions "
            "(scaling.flops_hardware)",
            model=model,
            forward_fn=measure.forward_fn,
        )
        plan.seed(batch, measured)
        return plan, measured
    approx = 6.0 * (params.non_embedding + params.tied_head)
    plan = FlopsPerToken(
        "approximate",
        "approximate: 6*(N_non_embedding + tied_head) per token; no attention term "
        f"(not a recognised transformer; meta-device count failed: {measure.error})",
        constant=approx,
    )
    if rank_zero:
        warnings.warn(
            f"could not measure the FLOPs of {type(model).__name__} on the meta device "
            f"({measure.error}); scaling.flops uses 6*N = {format_flops(approx)} per token. "
            f"Pass flops_per_token=... or flops_forward_fn=... to {owner}",
            ScalingLawWarning,
            stacklevel=4,
        )
    return plan, approx


def _warn_on_disagreement(
    kind: str,
    main: float,
    measured: float | None,
    error: str | None,
    model: nn.Module,
    settings: CountingSettings,
) -> None:
    if measured is None:
        warnings.warn(
            f"the meta-device FLOP count of {type(model).__name__} failed ({error}); keeping "
            f"the {kind} count {format_flops(main)} FLOPs/token unchecked",
            ScalingLawWarning,
            stacklevel=4,
        )
        return
    diff = relative_difference(main, measured)
    if diff > settings.flops_tolerance:
        warnings.warn(
            f"{kind} FLOPs per token {format_flops(main)} and the meta-device measured "
            f"{format_flops(measured)} differ by {diff:.1%} (tolerance "
            f"{settings.flops_tolerance:.1%}); logging the {kind} count. Pass "
            "flops_per_token=... or transformer_shape=... if the model was misread",
            ScalingLawWarning,
            stacklevel=4,
        )


def host_int(count: Count) -> int:
    return int(count.item()) if isinstance(count, torch.Tensor) else int(count)
