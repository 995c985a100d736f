"""What :func:`.phases.detect_phases` reports: the phases, the segments along x with their
slopes (a log-log slope s is a drop of 1 − 10^s per decade), the chosen law, and the
frontier's loss and slope. The detection itself is in :mod:`.phases`."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike

from .bnsl import BrokenPowerLaw
from .power_law import SaturatingPowerLaw

PHASES = (
    "cold_start",
    "scaling",
    "plateau",
    "inverse_scaling",
    "insufficient_data",
    "data_limited",
)
"""``data_limited`` is never detected from one axis: the refit names a plateau so where the
data-constrained law explains it (:mod:`.data_limited`)."""
INVERSE_SCALING = "inverse_scaling"


def drop_per_decade(slope: ArrayLike) -> np.ndarray:
    """Fraction by which the loss falls per decade of x for a log-log slope ``s``."""
    return 1.0 - 10.0 ** np.asarray(slope, dtype=float)


def slope_for_drop(drop: float) -> float:
    """Log-log slope (negative) at which the loss falls by ``drop`` per decade."""
    if not 0.0 < drop < 1.0:
        raise ValueError(f"a drop per decade must lie in (0, 1), got {drop!r}")
    return float(np.log10(1.0 - drop))


@dataclass(frozen=True)
class ConstantLaw:
    """``L(x) = level``: no dependence on x."""

    level: float

    def predict(self, x: ArrayLike) -> np.ndarray:
        return np.full_like(np.asarray(x, dtype=float), self.level)

    def local_slope(self, x: ArrayLike) -> np.ndarray:
        return np.zeros_like(np.asarray(x, dtype=float))

    def to_dict(self) -> dict[str, float]:
        return {"level": float(self.level)}


PhaseLaw = ConstantLaw | SaturatingPowerLaw | BrokenPowerLaw


@dataclass(frozen=True)
class Segment:
    """A stretch of the x range in one phase; ``slope`` is its mean ``d log L / d log x``."""

    phase: str
    x_min: float
    x_max: float
    slope: float

    @property
    def decades(self) -> float:
        return float(np.log10(self.x_max / self.x_min))

    @property
    def drop_per_decade(self) -> float:
        return float(drop_per_decade(self.slope))

    def to_dict(self) -> dict[str, object]:
        return {
            "phase": self.phase,
            "x_min": float(self.x_min),
            "x_max": float(self.x_max),
            "slope": float(self.slope),
            "drop_per_decade": self.drop_per_decade,
        }


@dataclass(frozen=True)
class PhaseReport:
    """What :func:`detect_phases` found. ``phase`` is the phase at the frontier (largest x).

    ``breaks`` are the x where the phase changes (boundaries between ``segments``).
    ``model`` names the chosen law and ``scores`` holds the information criterion of every
    candidate fitted (lower is better; ``criterion`` says which: ``"aicc"``, or ``"aic"`` on
    3 points). ``frontier_*`` describe the chosen law at the largest x. ``used`` are the
    indices of the input points that entered the fit; ``reduce`` dropped the others. ``law``
    is fitted in units of ``units["x"]`` and ``units["loss"]`` (1 unless the data sit near
    the float limits); segments, breaks and the frontier are in the caller's units.
    """

    phase: str
    segments: tuple[Segment, ...]
    breaks: tuple[float, ...]
    model: str | None
    law: PhaseLaw | None
    scores: dict[str, float]
    n_input: int
    n_points: int
    used: tuple[int, ...]
    x_min: float
    x_max: float
    frontier_loss: float | None
    frontier_slope: float | None
    reason: str
    settings: dict[str, object] = field(default_factory=dict)
    criterion: str = "aicc"
    units: dict[str, float] = field(default_factory=lambda: {"x": 1.0, "loss": 1.0})

    @property
    def span_decades(self) -> float:
        return float(np.log10(self.x_max / self.x_min)) if self.x_min > 0 else 0.0

    def to_dict(self) -> dict[str, object]:
        """JSON-ready dictionary (plain floats, lists and strings)."""
        frontier_drop = (
            None if self.frontier_slope is None else float(drop_per_decade(self.frontier_slope))
        )
        return {
            "phase": self.phase,
            "reason": self.reason,
            "segments": [s.to_dict() for s in self.segments],
            "breaks": [float(b) for b in self.breaks],
            "model": self.model,
            "law": None if self.law is None else self.law.to_dict(),
            "law_units": dict(self.units),
            "criterion": self.criterion,
            "scores": {k: _json_float(v) for k, v in self.scores.items()},
            "n_input": int(self.n_input),
            "n_points": int(self.n_points),
            "used": list(self.used),
            "x_min": float(self.x_min),
            "x_max": float(self.x_max),
            "span_decades": self.span_decades,
            "frontier_loss": None if self.frontier_loss is None else float(self.frontier_loss),
            "frontier_slope": None if self.frontier_slope is None else float(self.frontier_slope),
            "frontier_drop_per_decade": frontier_drop,
            "settings": dict(self.settings),
        }


def _json_float(v: float) -> float | None:
    return float(v) if np.isfinite(v) else None


def reporter(xs, used, n_input: int, x_min: float, x_max: float, settings: dict):
    """``report(phase, reason, **fields)``: a :class:`PhaseReport` of these points."""

    def report(phase: str, reason: str, **kw) -> PhaseReport:
        base = dict(
            segments=(),
            breaks=(),
            model=None,
            law=None,
            scores={},
            frontier_loss=None,
            frontier_slope=None,
        )
        base.update(kw)
        return PhaseReport(
            phase=phase,
            n_input=n_input,
            n_points=int(xs.size),
            used=tuple(int(i) for i in np.sort(used)),
            x_min=x_min,
            x_max=x_max,
            reason=reason,
            settings=settings,
            **base,
        )

    return report


def phase_and_reason(
    segments: tuple[Segment, ...], *, all_flat: bool, below_chance: bool,
    chance_loss: float | None, chance_tolerance: float, frontier_loss: float, loss_unit: float,
    min_scaling_decades: float,
) -> tuple[str, str]:  # fmt: skip
    """The phase at the frontier and the reason, from the last segment (module docstring)."""
    last = segments[-1]
    drop_txt = f"{100 * last.drop_per_decade:.1f} % per decade"
    if last.phase == INVERSE_SCALING:
        phase = INVERSE_SCALING
        reason = (
            f"loss rises {-100 * last.drop_per_decade:.1f} % per decade over the last "
            f"{last.decades:.2f} decade: inverse scaling"
        )
    elif chance_loss is not None and not below_chance:
        phase = "cold_start"
        reason = (
            f"frontier loss {frontier_loss * loss_unit:.4g} is within "
            f"{100 * chance_tolerance:.0f} % of the uniform-guess loss "
            f"{chance_loss * loss_unit:.4g}"
        )
    elif all_flat:
        phase = last.phase
        reason = f"loss is flat over the whole range ({drop_txt})" + (
            ", below the uniform-guess loss" if phase == "plateau" else ""
        )
    elif (
        last.phase == "scaling"
        and any(s.phase == "cold_start" for s in segments[:-1])
        and last.decades < min_scaling_decades
    ):
        phase = "cold_start"
        reason = (
            f"flat at small x, falling ({drop_txt}) only over the last {last.decades:.2f} "
            f"decade (< {min_scaling_decades}): still taking off"
        )
    else:
        phase = last.phase
        if phase == "plateau":
            reason = f"loss falls {drop_txt} over the last {last.decades:.2f} decade after falling"
        else:
            reason = f"loss falls {drop_txt} over the last {last.decades:.2f} decade"
    return phase, reason
