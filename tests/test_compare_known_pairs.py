"""`compare` on pairs whose answer is known by construction (issue: decision numbers that hold).

Each family is 20 runs: 5 sizes from 1e7 to 4e8 parameters × 5, 10, 20 and 40 tokens per
parameter, losses from L = 1.8 + 400/N^0.34 + 2000/D^0.37 with 0.5 % lognormal noise (seeded).

* a candidate worth a constant 1.5× compute (A and B × 1.5^(−αβ/(α+β))): ``better`` over the
  trained range, one multiplier near 1.5, the same slope;
* the same law: ``no_difference``;
* a candidate better below 1e18 FLOPs and worse above (exponents × 0.85, frontiers meeting at
  1e18, inside the trained range): ``crosses``, near 1e18.

And the support rules: a family with two sizes, ranges that do not overlap, budgets far past.
"""

import numpy as np
import pytest

from benchmarks.compare_simulation import constant_multiplier_law, crossing_law
from mlflow_scaling.laws.chinchilla import ChinchillaLaw
from mlflow_scaling.laws.compare import FamilyRuns, compare_families
from mlflow_scaling.laws.shift_test import SAME_SLOPE, SHALLOWER
from mlflow_scaling.laws.verdicts import BETTER, CROSSES, NO_DIFFERENCE, WITHHELD

LAW = ChinchillaLaw(E=1.8, A=400.0, B=2000.0, alpha=0.34, beta=0.37)
SIZES = np.geomspace(1e7, 4e8, 5)
TOKENS_PER_PARAM = (5, 10, 20, 40)
NOISE = 0.005
N_BOOT = 60


def family(name: str, law: ChinchillaLaw, seed: int, sizes=SIZES) -> FamilyRuns:
    rng = np.random.default_rng(seed)
    n = np.repeat(sizes, len(TOKENS_PER_PARAM))
    d = n * np.tile(TOKENS_PER_PARAM, sizes.size)
    return FamilyRuns(name, n, d, law.predict(n, d) * np.exp(rng.normal(0, NOISE, n.size)))


def compare(candidate_law: ChinchillaLaw, **kwargs):
    return compare_families(family("base", LAW, 0), family("cand", candidate_law, 1),
                            n_boot=N_BOOT, check=False, **kwargs)  # fmt: skip


def test_a_constant_one_and_a_half_times_compute_is_better_by_a_shift():
    r = compare(constant_multiplier_law(LAW, 1.5))
    assert r.verdict == BETTER and r.to_dict()["verdict_scope"] == "trained"
    shift = r.shift_multiplier
    assert abs(shift["value"] / 1.5 - 1) <= 0.10
    assert shift["lo"] <= 1.5 <= shift["hi"]
    assert r.slope_test["decision"] == SAME_SLOPE
    trained = [row for row in r.budgets if row["scope"] == "trained"]
    assert len(trained) >= 5
    for row in trained:
        assert abs(row["multiplier"] / 1.5 - 1) <= 0.10
    assert all(row["sign"] == 1 for row in r.measured["rows"])
    # Past the data each family's law may miss a size it has not seen by its size offset
    # (laws/extrapolation.py), and with 2 held-out sizes behind it (t = 4.3) half a decade out
    # that already spans a multiplier of 1: the laws cannot say the shift lasts.
    assert r.verdict_extrapolated == NO_DIFFERENCE and r.extrapolated_to is None


def test_the_same_law_shows_no_difference():
    r = compare(LAW)
    assert r.verdict == NO_DIFFERENCE
    assert all(row["sign"] == 0 for row in r.measured["rows"])
    assert r.slope_test["decision"] == SAME_SLOPE
    assert r.shift_multiplier["lo"] <= 1.0 <= r.shift_multiplier["hi"]
    assert r.verdict_extrapolated == NO_DIFFERENCE and r.extrapolated_to is None


def test_frontiers_that_cross_inside_the_grid():
    r = compare(crossing_law(LAW, 0.85, 1e18))
    assert r.verdict == CROSSES
    assert 1e18 / 3 <= r.crossover_flops <= 1e18 * 3
    assert r.slope_test["decision"] == SHALLOWER and r.slope_test["p_value"] < 1e-6
    assert [f["law_fit"]["status"] for f in (r.baseline, r.candidate)] == ["ok", "ok"]


def test_a_family_with_two_sizes_carries_no_verdict():
    two = family("c1", LAW, 2, sizes=np.array([1e7, 3e8]))
    r = compare_families(family("base", LAW, 0), two, n_boot=N_BOOT, check=False)
    reason = ("family 'c1' has 2 distinct model sizes; a comparison verdict needs 4 (the check's "
              "distinct_sizes)")  # fmt: skip
    assert (r.verdict, r.note) == (WITHHELD, reason)
    assert (r.verdict_extrapolated, r.extrapolated_note) == (WITHHELD, reason)
    assert r.crossover_flops is None and r.extrapolated_to is None


def test_compute_ranges_that_do_not_overlap_are_withheld():
    small = family("small", LAW, 0, sizes=np.geomspace(1e6, 1.6e7, 5))
    large = family("large", LAW, 1, sizes=np.geomspace(1e10, 1.6e11, 5))
    r = compare_families(small, large, n_boot=N_BOOT, check=False)
    assert r.verdict == WITHHELD
    assert r.note.startswith("the compute ranges do not overlap (baseline 3e+13..")
    assert r.measured["rows"] == []


def test_budgets_far_past_the_data_are_refused():
    with pytest.raises(ValueError, match=r"budget 1e\+300 FLOPs lies .* decades past the larger "
                       r"family's largest run; compare reads at most 2 decades past"):  # fmt: skip
        compare(LAW, budgets=[1e299, 1e300])
