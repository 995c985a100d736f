"""Simulated pairs of families with a known comparison, for the benchmark and the tests.

Each family is an isoFLOP design: ``BUDGETS`` compute budgets, ``SIZES_PER_BUDGET`` model sizes
around the true compute-optimal size at each, losses from the true law times lognormal noise
(``NOISE`` in log loss). Three scenarios:

* ``constant``: the candidate's A and B are the baseline's times m^(−αβ/(α+β)), so it reaches
  at every budget C the baseline's loss at m·C (m = ``MULTIPLIER``);
* ``same``: both families are drawn from the same law;
* ``crosses``: the candidate has smaller exponents (×``EXPONENT_FACTOR``) and smaller A, B, set
  so that the frontiers meet at ``CROSSOVER`` FLOPs: better below, worse above.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mlflow_scaling.laws.allocation import compute_optimal
from mlflow_scaling.laws.chinchilla import ChinchillaLaw
from mlflow_scaling.laws.compare import FamilyRuns, find_crossover

BASE_LAW = ChinchillaLaw(E=1.82, A=482.0, B=2085.0, alpha=0.35, beta=0.37)
BUDGETS = 10.0 ** np.arange(16.0, 19.01, 0.5)
SIZES_PER_BUDGET = 5
SIZE_SPREAD_DECADES = 0.6
NOISE = 0.01
MULTIPLIER = 1.5
EXPONENT_FACTOR = 0.85
CROSSOVER = 1e18
SCENARIOS = ("constant", "same", "crosses")


def constant_multiplier_law(law: ChinchillaLaw, multiplier: float) -> ChinchillaLaw:
    """The law that reaches at every budget C the loss ``law`` reaches at ``multiplier``·C."""
    s = multiplier ** (-law.alpha * law.beta / (law.alpha + law.beta))
    return ChinchillaLaw(E=law.E, A=law.A * s, B=law.B * s, alpha=law.alpha, beta=law.beta)


def crossing_law(law: ChinchillaLaw, factor: float, crossover: float) -> ChinchillaLaw:
    """Exponents × ``factor``, A and B scaled so both frontiers meet at ``crossover`` FLOPs."""
    steeper = ChinchillaLaw(E=law.E, A=law.A, B=law.B, alpha=law.alpha * factor,
                            beta=law.beta * factor)  # fmt: skip
    want = compute_optimal(law, crossover).loss[0] - law.E
    have = compute_optimal(steeper, crossover).loss[0] - law.E
    k = want / have  # the reducible loss at the optimum is proportional to a common scale of A, B
    return ChinchillaLaw(E=law.E, A=steeper.A * k, B=steeper.B * k, alpha=steeper.alpha,
                         beta=steeper.beta)  # fmt: skip


def sample_runs(name: str, law: ChinchillaLaw, rng: np.random.Generator) -> FamilyRuns:
    """An isoFLOP grid of runs from ``law`` with lognormal noise."""
    n_opt = compute_optimal(law, BUDGETS).n_opt
    offsets = np.linspace(-SIZE_SPREAD_DECADES, SIZE_SPREAD_DECADES, SIZES_PER_BUDGET)
    n = (n_opt[:, None] * 10.0 ** offsets[None, :]).ravel()
    c = np.repeat(BUDGETS, SIZES_PER_BUDGET)
    d = c / (6.0 * n)
    loss = law.predict(n, d) * np.exp(rng.normal(0.0, NOISE, n.size))
    return FamilyRuns(name=name, n=n, d=d, loss=loss)


@dataclass(frozen=True)
class SimulatedPair:
    scenario: str
    baseline: FamilyRuns
    candidate: FamilyRuns
    baseline_law: ChinchillaLaw
    candidate_law: ChinchillaLaw
    true_crossover: float | None


def simulate_pair(scenario: str, seed: int) -> SimulatedPair:
    """One pair of families for ``scenario`` (see the module docstring), seeded."""
    if scenario == "constant":
        cand = constant_multiplier_law(BASE_LAW, MULTIPLIER)
    elif scenario == "same":
        cand = BASE_LAW
    elif scenario == "crosses":
        cand = crossing_law(BASE_LAW, EXPONENT_FACTOR, CROSSOVER)
    else:
        raise ValueError(f"unknown scenario {scenario!r}; expected one of {SCENARIOS}")
    rng = np.random.default_rng(seed)
    base_runs = sample_runs("baseline", BASE_LAW, rng)
    cand_runs = sample_runs("candidate", cand, rng)
    truth = None
    if scenario == "crosses":
        truth = find_crossover(BASE_LAW, cand, BUDGETS[0] / 100, BUDGETS[-1] * 1e3)
    return SimulatedPair(scenario, base_runs, cand_runs, BASE_LAW, cand, truth)
