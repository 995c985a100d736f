"""One compute axis per family: training FLOPs C = f(N)·D with f learned from the runs.

C = 6·N·D counts the weight matmuls only. A transformer also spends 12·n_layer·d_model·seq
FLOPs per token on attention (PaLM App. B, no causal halving), which for small and medium
models is a large share: with seq 1024 and d_model 64, f(N) ≈ 3.7 × 6N. Converting between
(N, D) and C with 6ND while the runs logged their real FLOPs puts the allocation, the budget
ladder and the fitted curves on a different axis from the points (Porian et al. 2024).

A :class:`ComputeAxis` is f(N), the FLOPs per training token of a model with N parameters:

* ``measured``: learned from member runs as f_i = C_i / D_i against N_i. Within the trained
  sizes f is a monotone cubic (PCHIP) interpolant of log f against log N, exact at each size.
  Beyond them it follows f(N) = k·N + c·N^γ (0 ≤ γ < 1, k, c ≥ 0), the shape of
  6N + attention (attention grows as n_layer·d_model, slower than N), fitted to every size
  and matched to the interpolant at the edge so f is continuous. With fewer than three sizes
  f/N is held at its nearest measured value.
* ``6ND``: f(N) = 6N, where no run logged its FLOPs (the axis says so).

Everything that converts between (N, D) and C — allocation, the check's target tokens, the
budget ladder, Approach 2's budgets, the figure — goes through the same axis.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike
from scipy.interpolate import PchipInterpolator

from .scatter import size_labels

KIND_MEASURED = "measured"
KIND_6ND = "6ND"
SIX = 6.0
_GAMMAS = np.linspace(0.0, 0.95, 96)


@dataclass(frozen=True)
class ComputeAxis:
    """FLOPs per token f(N); C = f(N)·D. Build with :meth:`from_runs` or :meth:`six_nd`."""

    kind: str
    sizes: np.ndarray = field(default_factory=lambda: np.zeros(0))
    per_token: np.ndarray = field(default_factory=lambda: np.zeros(0))
    tail: tuple[float, float, float] | None = None  # (k, c, gamma) of k·N + c·N^γ

    # --- construction -------------------------------------------------------------------
    @classmethod
    def six_nd(cls) -> ComputeAxis:
        return cls(kind=KIND_6ND)

    @classmethod
    def from_runs(cls, n: ArrayLike, flops: ArrayLike, tokens: ArrayLike) -> ComputeAxis:
        """Learn f from runs: f_i = flops_i / tokens_i, grouped by size (median per size).

        Runs whose FLOPs or tokens are missing or not positive and finite are ignored; with
        none left the axis is 6ND.
        """
        n, c, d = (np.asarray(v, dtype=float).ravel() for v in (n, flops, tokens))
        if not (n.size == c.size == d.size):
            raise ValueError(f"N, FLOPs and tokens differ in length ({n.size}, {c.size}, {d.size})")
        ok = np.isfinite(n) & np.isfinite(c) & np.isfinite(d) & (n > 0) & (c > 0) & (d > 0)
        if not ok.any():
            return cls.six_nd()
        n, f = n[ok], c[ok] / d[ok]
        order = np.argsort(n)
        n, f = n[order], f[order]
        breaks = np.flatnonzero(np.diff(size_labels(n))) + 1
        groups = np.split(np.arange(n.size), breaks)
        sizes = np.array([np.exp(np.log(n[g]).mean()) for g in groups])
        per_token = np.array([np.median(f[g]) for g in groups])
        tail = _fit_tail(sizes, per_token) if sizes.size >= 3 else None
        return cls(kind=KIND_MEASURED, sizes=sizes, per_token=per_token, tail=tail)

    # --- evaluation ---------------------------------------------------------------------
    def flops_per_token(self, n: ArrayLike) -> np.ndarray:
        """f(N): FLOPs per training token for models of size ``n``."""
        n = np.asarray(n, dtype=float)
        if self.kind == KIND_6ND:
            return SIX * n
        return np.exp(self._log_f(np.log(n)))

    def log_slope(self, n: ArrayLike) -> np.ndarray:
        """d log f / d log N at ``n`` (1 for 6ND)."""
        n = np.asarray(n, dtype=float)
        if self.kind == KIND_6ND:
            return np.ones_like(n)
        x = np.log(n)
        h = 1e-4
        return (self._log_f(x + h) - self._log_f(x - h)) / (2 * h)

    def flops(self, n: ArrayLike, d: ArrayLike) -> np.ndarray:
        """C = f(N)·D."""
        return self.flops_per_token(n) * np.asarray(d, dtype=float)

    def tokens(self, n: ArrayLike, flops: ArrayLike) -> np.ndarray:
        """D = C / f(N): the tokens a model of size N sees with budget C."""
        return np.asarray(flops, dtype=float) / self.flops_per_token(n)

    def ratio_to_6nd(self, n: ArrayLike) -> np.ndarray:
        """f(N) / 6N: how far this axis is from 6ND at size N."""
        return self.flops_per_token(n) / (SIX * np.asarray(n, dtype=float))

    def to_dict(self) -> dict:
        out: dict = {"kind": self.kind}
        if self.kind == KIND_6ND:
            out["formula"] = "C = 6*N*D"
            return out
        out["formula"] = "C = f(N)*D; f learned from the runs' FLOPs per token"
        out["sizes"] = [float(v) for v in self.sizes]
        out["flops_per_token"] = [float(v) for v in self.per_token]
        out["ratio_to_6nd"] = [float(v) for v in self.per_token / (SIX * self.sizes)]
        if self.tail is not None:
            k, c, g = self.tail
            out["extrapolation"] = {"form": "k*N + c*N^gamma", "k": k, "c": c, "gamma": g}
        else:
            out["extrapolation"] = {"form": "f/N held at the nearest measured size"}
        return out

    @classmethod
    def from_dict(cls, doc: dict | None) -> ComputeAxis:
        """Inverse of :meth:`to_dict` (a missing document is 6ND)."""
        if not doc or doc.get("kind") != KIND_MEASURED:
            return cls.six_nd()
        tail = doc.get("extrapolation", {})
        return cls(
            kind=KIND_MEASURED,
            sizes=np.asarray(doc["sizes"], dtype=float),
            per_token=np.asarray(doc["flops_per_token"], dtype=float),
            tail=(tail["k"], tail["c"], tail["gamma"]) if "gamma" in tail else None,
        )

    # --- internals ----------------------------------------------------------------------
    def _log_f(self, x: np.ndarray) -> np.ndarray:
        """log f at x = log N: interpolant inside the sizes, the tail form outside."""
        xs, ys = np.log(self.sizes), np.log(self.per_token)
        x = np.asarray(x, dtype=float)
        if xs.size == 1:
            return ys[0] + (x - xs[0])  # f/N constant
        inside = PchipInterpolator(xs, ys, extrapolate=False)
        out = np.asarray(inside(np.clip(x, xs[0], xs[-1])), dtype=float)
        for edge, mask in ((0, x < xs[0]), (-1, x > xs[-1])):
            if np.any(mask):
                out = np.where(mask, ys[edge] + self._tail_shift(x, xs[edge]), out)
        return out

    def _tail_shift(self, x: np.ndarray, x_edge: float) -> np.ndarray:
        """log f(x) − log f(x_edge) by the tail form (f/N constant without one)."""
        if self.tail is None:
            return x - x_edge
        k, c, g = self.tail
        return _log_tail(x, k, c, g) - _log_tail(np.asarray(x_edge), k, c, g)


def _log_tail(x: np.ndarray, k: float, c: float, g: float) -> np.ndarray:
    return np.logaddexp(np.log(max(k, 1e-300)) + x, np.log(max(c, 1e-300)) + g * x)


def _fit_tail(sizes: np.ndarray, per_token: np.ndarray) -> tuple[float, float, float] | None:
    """k·N + c·N^γ by non-negative least squares in relative error, for each γ on a grid."""
    scale = sizes.max()
    u = sizes / scale
    best = None
    for g in _GAMMAS:
        basis = np.stack([u, u**g], axis=1) / per_token[:, None]
        coef, *_ = np.linalg.lstsq(basis, np.ones_like(u), rcond=None)
        if np.any(coef < 0):  # fall back to the better single term
            coef = np.clip(coef, 0, None)
            singles = []
            for j in range(2):
                col = basis[:, j]
                cj = max(float(col @ np.ones_like(u) / (col @ col)), 0.0)
                singles.append((np.sum((1 - cj * col) ** 2), j, cj))
            _, j, cj = min(singles)
            coef = np.zeros(2)
            coef[j] = cj
        err = float(np.sum((1 - basis @ coef) ** 2))
        if best is None or err < best[0]:
            best = (err, coef, g)
    if best is None or not np.any(best[1] > 0):
        return None
    _, (k_u, c_u), g = best
    # back to N units: k·N = k_u·(N/scale), c·N^γ = c_u·(N/scale)^γ
    return float(k_u / scale), float(c_u / scale**g), float(g)
