"""Phase detection: cold start, scaling, plateau and too little data."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from reference_data import bnsl_csv, chinchilla_csv

from benchmarks.synthetic_phases import PHASE_KINDS, sample_phase_family
from mlflow_scaling.laws.bnsl import BrokenPowerLaw
from mlflow_scaling.laws.phases import (
    CANDIDATES,
    detect_phases,
    drop_per_decade,
    slope_for_drop,
)
from mlflow_scaling.laws.power_law import SaturatingPowerLaw


def _columns(path, *names):
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    return [np.array([float(r[name]) for r in rows]) for name in names]


def _noisy(clean, noise, seed):
    return clean * np.exp(noise * np.random.default_rng(seed).standard_normal(clean.size))


# --- synthetic families of every kind --------------------------------------------------


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("noise", [0.01, 0.03])
@pytest.mark.parametrize("kind", PHASE_KINDS)
def test_generated_family_phase(kind, noise, seed):
    """8-12 points over 2-3 decades: pure power laws, plateaus far above the floor, cold
    starts, and families all at the uniform-guess loss."""
    rng = np.random.default_rng([1000 + seed, PHASE_KINDS.index(kind)])
    fam = sample_phase_family(
        kind, rng, n_points=8 + seed % 5, noise=noise, span_decades=2.0 + 0.5 * (seed % 3)
    )
    report = detect_phases(fam.x, fam.loss)
    assert report.phase == fam.expected_phase, report.reason


@pytest.mark.parametrize("kind", ["scaling", "cold_start", "uniform_guess"])
def test_six_points_suffice_for_trends_and_take_offs(kind):
    rng = np.random.default_rng([7, PHASE_KINDS.index(kind)])
    fam = sample_phase_family(kind, rng, n_points=6, noise=0.01)
    assert detect_phases(fam.x, fam.loss).phase == fam.expected_phase


# --- real data -------------------------------------------------------------------------


def test_4_digit_addition_is_a_cold_start():
    x, y = _columns(bnsl_csv(), "train_dataset_size", "test_cross_entropy")
    for n in (14, 17):  # the paper's fit points, and all of them
        report = detect_phases(x[:n], y[:n])
        assert report.phase == "cold_start", report.reason
        assert [s.phase for s in report.segments] == ["cold_start", "scaling"]
        assert 448 < report.breaks[0] < 672
        assert report.model.startswith("broken_power_law")
        assert report.segments[1].drop_per_decade > 0.9


def test_chinchilla_compute_frontier_is_scaling():
    c, loss = _columns(chinchilla_csv(), "Training FLOP", "loss")  # every run its own C
    for reduce in ("envelope", "pareto"):
        report = detect_phases(c, loss, reduce=reduce)
        assert report.phase == "scaling", report.reason
        assert report.n_input == c.size and len(report.used) < c.size
    pareto = detect_phases(c, loss, reduce="pareto")
    frontier = loss[list(pareto.used)]
    assert np.all(np.diff(frontier[np.argsort(c[list(pareto.used)])]) < 0)


def test_a_stalled_compute_frontier_shows_in_the_envelope():
    law = BrokenPowerLaw(a=0.0, b=40.0, c0=0.3, c=(-0.3,), d=(1e19,), f=(0.2,))
    c = np.logspace(17, 21, 12)
    loss = _noisy(law.predict(c), 0.01, 5)
    envelope = detect_phases(c, loss, reduce="envelope")
    assert envelope.phase == "plateau", envelope.reason
    assert envelope.n_points == 12
    # The Pareto frontier drops the runs that did not improve: its tail is gone.
    assert detect_phases(c, loss, reduce="pareto").n_points < 12


# --- the rules -------------------------------------------------------------------------


def test_uniform_guess_family_and_chance_loss():
    x = np.logspace(6, 9, 8)
    chance = float(np.log(50257))
    at_chance = _noisy(np.full(8, chance), 0.02, 0)
    assert detect_phases(x, at_chance).phase == "cold_start"
    assert detect_phases(x, at_chance, chance_loss=chance).phase == "cold_start"

    learned_but_flat = _noisy(np.full(8, 0.4 * chance), 0.02, 1)
    assert detect_phases(x, learned_but_flat).phase == "cold_start"  # no chance: cold start
    report = detect_phases(x, learned_but_flat, chance_loss=chance)
    assert report.phase == "plateau" and "uniform-guess" in report.reason


def test_a_frontier_still_near_the_uniform_guess_is_a_cold_start():
    x = np.logspace(6, 9, 8)
    chance = float(np.log(256))
    falling = SaturatingPowerLaw(E=0.0, A=chance * 1.2 * 1e6**0.03, alpha=0.03).predict(x)
    assert detect_phases(x, falling).phase == "scaling"
    report = detect_phases(x, falling, chance_loss=chance)
    assert report.phase == "cold_start" and "uniform-guess" in report.reason


def test_a_family_that_has_long_left_its_cold_start_is_scaling():
    # Flat for a decade, then a clean power law over two more decades.
    law = BrokenPowerLaw(a=0.0, b=6.0, c0=0.0, c=(0.3,), d=(1e7,), f=(0.1,))
    x = np.logspace(6, 9, 13)
    y = _noisy(law.predict(x), 0.01, 3)
    report = detect_phases(x, y)
    assert report.phase == "scaling", report.reason
    assert [s.phase for s in report.segments] == ["cold_start", "scaling"]
    assert detect_phases(x, y, min_scaling_decades=3.0).phase == "cold_start"


def test_reaching_the_irreducible_floor_is_a_plateau():
    """The rule is the slope, not the distance to a fitted floor (see the module notes)."""
    law = SaturatingPowerLaw(E=2.0, A=2e3, alpha=0.8)
    x = np.logspace(4, 7, 10)
    report = detect_phases(x, _noisy(law.predict(x), 0.005, 4))
    assert report.phase == "plateau", report.reason
    assert report.segments[0].phase == "scaling"


def test_flat_threshold_is_a_setting():
    x = np.logspace(6, 9, 8)
    slow = SaturatingPowerLaw(E=0.0, A=10.0, alpha=-slope_for_drop(0.035)).predict(x)
    assert detect_phases(x, slow).phase == "scaling"  # falls 3.5 % per decade > 2 %
    assert detect_phases(x, slow, flat_drop_per_decade=0.05).phase == "cold_start"
    assert drop_per_decade(slope_for_drop(0.035)) == pytest.approx(0.035)


def test_insufficient_data():
    assert detect_phases([1e6, 1e6, 1e8], [3.0, 2.9, 2.0]).phase == "insufficient_data"
    short = detect_phases([1e6, 1.5e6, 2e6, 2.5e6], [3.0, 2.9, 2.8, 2.7])
    assert short.phase == "insufficient_data" and "0.40 decade" in short.reason
    assert short.to_dict()["segments"] == []


def test_three_points_compare_a_constant_and_a_power_law():
    report = detect_phases([1e6, 1e7, 1e8], [4.0, 3.0, 2.25])
    assert report.phase == "scaling" and report.model == "power_law"
    assert report.criterion == "aic"


def test_several_runs_per_x_reduce_to_the_best_by_default():
    x = np.repeat(np.logspace(6, 9, 7), 3)
    best = SaturatingPowerLaw(E=0.0, A=30.0, alpha=0.15).predict(x)
    loss = best * np.tile([1.0, 1.08, 1.2], 7)  # seeds: one good, two worse
    report = detect_phases(x, loss)
    assert report.n_input == 21 and report.n_points == 7
    assert report.used == tuple(range(0, 21, 3))
    assert report.law.alpha == pytest.approx(0.15, rel=1e-6)
    median = detect_phases(x, loss, reduce="median")
    assert median.n_points == 7 and len(median.used) == 21
    assert median.law.predict(np.array([1e7]))[0] > report.law.predict(np.array([1e7]))[0]
    everything = detect_phases(x, loss, reduce="none")
    assert everything.n_points == 21 and everything.phase == "scaling"


def test_report_is_json_ready_and_segments_tile_the_range():
    law = BrokenPowerLaw(a=0.0, b=9.0, c0=0.0, c=(1.0,), d=(3e8,), f=(0.2,))
    x = np.logspace(6, 9, 10)
    report = detect_phases(x, law.predict(x))
    doc = json.loads(json.dumps(report.to_dict()))
    assert doc["phase"] == report.phase == "cold_start"
    assert set(doc["scores"]) <= set(CANDIDATES) and doc["model"] in doc["scores"]
    assert {"phase", "x_min", "x_max", "slope", "drop_per_decade"} <= set(doc["segments"][0])
    assert doc["law"] == report.law.to_dict()
    seg = report.segments
    assert seg[0].x_min == pytest.approx(1e6) and seg[-1].x_max == pytest.approx(1e9)
    for left, right, brk in zip(seg[:-1], seg[1:], report.breaks, strict=True):
        assert left.x_max == right.x_min == brk
    with pytest.raises(AttributeError):
        report.phase = "scaling"  # type: ignore[misc]


def test_models_can_be_restricted():
    x = np.logspace(6, 9, 8)
    y = SaturatingPowerLaw(E=1.0, A=50.0, alpha=0.3).predict(x)
    report = detect_phases(x, y, models=["saturating_power_law"])
    assert report.model == "saturating_power_law" and list(report.scores) == [report.model]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"loss": [3.0, -1.0, 2.0]}, "index 1 has loss=-1.0"),
        ({"x": [1.0, 10.0]}, "x has 2 values but loss has 3"),
        ({"reduce": "mean"}, "reduce must be"),
        ({"models": ["spline"]}, "unknown models"),
        ({"flat_drop_per_decade": 0.0}, "flat_drop_per_decade"),
        ({"chance_loss": -1.0}, "chance_loss"),
    ],
)
def test_bad_input_is_named(kwargs, message):
    args = {"x": [1e6, 1e7, 1e8], "loss": [3.0, 2.5, 2.0], **kwargs}
    with pytest.raises(ValueError, match=message):
        detect_phases(args.pop("x"), args.pop("loss"), **args)
