"""Training FLOPs, GPU-hours, wall-clock days and cost.

    C = f(N)·D                      f: FLOPs per token, forward plus backward
    GPU-hours = C / (peak · MFU) / 3600
    days = GPU-hours / K / 24       on K GPUs
    cost = GPU-hours · price per GPU-hour

f is the family's compute axis where there is one (the same axis as its fits), else
6·N + 12·n_layer·d_model·seq_len when a shape is given (PaLM App. B: attention included, no
halving for the causal mask), else 6·N (Kaplan et al. 2020).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .memory import Shape

SECONDS_PER_HOUR = 3600.0
HOURS_PER_DAY = 24.0


@dataclass(frozen=True)
class FlopsPerToken:
    """FLOPs per training token and how they were counted."""

    value: float
    method: str


def flops_per_token(n_params: float, shape: Shape | None = None) -> FlopsPerToken:
    """6·N, or 6·N + 12·L·d·s with a shape (module docstring)."""
    if shape is None:
        return FlopsPerToken(6.0 * n_params, "6ND")
    attention = 12.0 * shape.n_layer * shape.d_model * shape.seq_len
    return FlopsPerToken(
        6.0 * n_params + attention,
        f"6N + 12·n_layer·d_model·seq_len per token (12·{shape.n_layer}·{shape.d_model}·"
        f"{shape.seq_len} = {attention:.4g})",
    )


def gpu_hours(flops: float, peak_flops: float, mfu: float) -> float:
    """GPU-hours to do ``flops`` at ``mfu`` of ``peak_flops`` per GPU."""
    if not (0 < mfu <= 1):
        raise ValueError(f"MFU must lie in (0, 1], got {mfu!r}")
    return flops / (peak_flops * mfu) / SECONDS_PER_HOUR


def wall_days(hours: float, gpus: int) -> float:
    return hours / gpus / HOURS_PER_DAY


def cost(hours: float, price_per_gpu_hour: float | None) -> float | None:
    return None if price_per_gpu_hour is None else hours * price_per_gpu_hour


def ceil_div(a: float, b: float) -> int:
    return int(math.ceil(a / b - 1e-12))
