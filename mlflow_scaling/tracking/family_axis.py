"""A family's compute axis C = f(N)·D, learned from its member runs (the refit job and the
comparison both place budgets on it)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..laws.compute_axis import ComputeAxis
from .reading import C_FROM_METRIC, MemberPoint


def family_axis(points: Sequence[MemberPoint]) -> ComputeAxis:
    """The family's compute axis: learned from the members that logged FLOPs, else 6ND."""
    measured = [p for p in points if p.c_source == C_FROM_METRIC]
    if not measured:
        return ComputeAxis.six_nd()
    return ComputeAxis.from_runs(
        [p.n for p in measured], [p.c for p in measured], [p.d for p in measured]
    )


def member_flops(points: Sequence[MemberPoint], axis: ComputeAxis) -> np.ndarray:
    """Each member's compute: its logged FLOPs, else its place on the family's axis (one axis
    everywhere, so members with and without logged FLOPs are comparable)."""
    return np.array(
        [p.c if p.c_source == C_FROM_METRIC else float(axis.flops(p.n, p.d)) for p in points],
        dtype=float,
    )
