"""Synthetic one-axis loss curves with a known phase, for the phase tests and benchmarks.

Four kinds, each drawn so that its phase holds with a margin under the default thresholds of
:func:`mlflow_scaling.laws.phases.detect_phases` (loss falls >= 2 % per decade means not flat):

- ``"scaling"``: ``L = E + A x**-alpha`` still falling >= 6 % per decade at the largest x.
- ``"plateau"``: a broken power law whose reducible part stops falling after a break:
  ``L = E + b x**-c0 (1 + (x/d)**(1/f))**(c0 f)``; it levels off at ``E + b d**-c0``, far
  above the irreducible ``E``, and the last >= 0.7 decade of data falls < 0.5 % per decade.
- ``"cold_start"``: flat (loss falls < 1 % per decade) near the loss of a uniform guess, then
  falling over the last 0.4-0.8 decade (a steepening break):
  ``L = b (1 + (x/d)**(1/f))**(-c1 f)``.
- ``"uniform_guess"``: every run at the loss of a uniform guess, ``log(vocab)``; its phase is
  ``cold_start``.

Noise is multiplicative and log-normal: ``L * exp(noise * N(0, 1))``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["PHASE_KINDS", "EXPECTED_PHASE", "PhaseFamily", "sample_phase_family"]

PHASE_KINDS = ("scaling", "plateau", "cold_start", "uniform_guess")
EXPECTED_PHASE = {
    "scaling": "scaling",
    "plateau": "plateau",
    "cold_start": "cold_start",
    "uniform_guess": "cold_start",
}
_LN10 = np.log(10.0)


@dataclass(frozen=True)
class PhaseFamily:
    """One synthetic family: points ``(x, loss)``, its kind and the uniform-guess loss."""

    kind: str
    x: np.ndarray
    loss: np.ndarray
    clean_loss: np.ndarray
    chance_loss: float

    @property
    def expected_phase(self) -> str:
        return EXPECTED_PHASE[self.kind]


def _axis(rng: np.random.Generator, n_points: int, span_decades: float) -> np.ndarray:
    start = rng.uniform(5.0, 8.0)  # log10 of the smallest x, e.g. 1e5..1e8 parameters
    grid = np.linspace(0.0, span_decades, n_points)
    jitter = rng.uniform(-0.15, 0.15, n_points) * span_decades / max(n_points - 1, 1)
    jitter[[0, -1]] = 0.0
    return 10.0 ** (start + grid + jitter)


def _slope(x: np.ndarray, loss_fn) -> np.ndarray:
    h = 1e-4
    return (np.log(loss_fn(x * np.exp(h))) - np.log(loss_fn(x * np.exp(-h)))) / (2 * h)


def _drop_per_decade(slope: np.ndarray) -> np.ndarray:
    return 1.0 - 10.0**slope


def sample_phase_family(
    kind: str,
    rng: np.random.Generator,
    *,
    n_points: int = 8,
    noise: float = 0.01,
    span_decades: float = 2.5,
) -> PhaseFamily:
    """Draw one family of ``kind`` (one of :data:`PHASE_KINDS`) with ``n_points`` runs."""
    if kind not in PHASE_KINDS:
        raise ValueError(f"kind must be one of {PHASE_KINDS}, got {kind!r}")
    if n_points < 3:
        raise ValueError(f"n_points must be >= 3, got {n_points}")
    vocab = int(rng.choice([256, 1024, 32000, 50257]))
    chance = float(np.log(vocab))
    x = _axis(rng, n_points, span_decades)
    lx0, lx1 = np.log(x[0]), np.log(x[-1])

    for _ in range(1000):
        if kind == "scaling":
            alpha = rng.uniform(0.08, 0.5)
            loss_end = rng.uniform(0.3, 0.8) * chance
            share_end = rng.uniform(0.3, 1.0)  # reducible share of the loss at the frontier
            E = loss_end * (1.0 - share_end)
            A = loss_end * share_end * x[-1] ** alpha

            def fn(z, E=E, A=A, alpha=alpha):
                return E + A * z**-alpha

            ok = _drop_per_decade(_slope(x[-1:], fn))[0] >= 0.06 and fn(x[0]) < chance
        elif kind == "plateau":
            c0 = rng.uniform(0.15, 0.6)
            f = rng.uniform(0.05, 0.6)
            level = rng.uniform(0.3, 0.7) * chance  # where the curve levels off
            E = level * rng.uniform(0.0, 0.5)  # irreducible term, far below the level
            # Break at 35-65 % of the range.
            log_d = lx0 + rng.uniform(0.35, 0.65) * (lx1 - lx0)
            b = (level - E) * np.exp(c0 * log_d)

            def fn(z, E=E, b=b, c0=c0, log_d=log_d, f=f):
                t = (np.log(z) - log_d) / f
                return E + b * np.exp(-c0 * np.log(z) + c0 * f * np.logaddexp(0.0, t))

            tail = x[np.log(x) >= lx1 - 0.7 * _LN10]
            ok = (
                _drop_per_decade(_slope(tail, fn)).max() < 0.005
                and _drop_per_decade(_slope(x[:1], fn))[0] > 0.15
                and fn(x[0]) < chance
            )
        elif kind == "cold_start":
            c1 = rng.uniform(0.3, 2.0)
            f = rng.uniform(0.05, 0.5)
            start_level = rng.uniform(0.85, 1.0) * chance
            # The fall after the break covers the last 0.4-0.8 decade of the range.
            log_d = lx1 - rng.uniform(0.4, 0.8) * _LN10

            def fn(z, b=start_level, c1=c1, log_d=log_d, f=f):
                t = (np.log(z) - log_d) / f
                return b * np.exp(-c1 * f * np.logaddexp(0.0, t))

            flat = x[np.log(x) <= log_d - 2 * f]
            ok = (
                flat.size >= 2
                and _drop_per_decade(_slope(flat, fn)).max() < 0.01
                and _drop_per_decade(_slope(x[-1:], fn))[0] > 0.3
            )
        else:  # uniform_guess

            def fn(z, chance=chance):
                return np.full_like(z, chance, dtype=float)

            ok = True
        if ok:
            break
    else:  # pragma: no cover - the ranges above make this practically unreachable
        raise RuntimeError(f"could not draw a {kind} family with these settings")

    clean = fn(x)
    loss = clean * np.exp(noise * rng.standard_normal(n_points))
    return PhaseFamily(kind=kind, x=x, loss=loss, clean_loss=clean, chance_loss=chance)
