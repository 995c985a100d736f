"""examples/hparam_sweep.py's pieces on a tiny grid: the callback logs η and B, the runs export,
the refit writes the hparams section and its heat maps, and the held-out check judges. The
full sweep (72 runs, minutes) is the example's own run, not a test."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pandas as pd
import pytest

from benchmarks.hparam_simulation import simulate_grid

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples"))

import hparam_sweep  # noqa: E402
from hparam_sweep import Point  # noqa: E402

SIZE = (1, 16)
N_LOGGED = 3312
"""The callback's non-embedding count of the (1, 16) model: 12·d² plus its biases and norms."""
TOKENS = (2048, 4096)
LRS = (8e-3, 1.6e-2)
BATCHES = (1, 2)


@pytest.fixture(scope="module")
def tiny_sweep(tmp_path_factory):
    """2 cells (one size, 2 token budgets) of 2 x 2 (η, B) runs of 8 to 64 steps, trained,
    refitted and exported, in a temporary sqlite store."""
    folder = tmp_path_factory.mktemp("hparam_sweep")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    points = [Point(SIZE, d, lr, b) for d in TOKENS for lr in LRS for b in BATCHES]
    lines: list[str] = []
    hparam_sweep.train_grid(uri, "tiny", points, workers=1, echo=lines.append)
    section = hparam_sweep.refit(uri, "tiny", echo=lines.append)
    frame = hparam_sweep.export_csv(uri, "tiny", folder / "sweep.csv")
    return {"uri": uri, "folder": folder, "points": points, "lines": lines,
            "section": section, "frame": frame}  # fmt: skip


def test_the_callback_logs_each_runs_learning_rate_and_batch(tiny_sweep) -> None:
    frame = tiny_sweep["frame"].sort_values(["D", "lr", "batch_tokens"]).reset_index(drop=True)
    expected = pd.DataFrame(
        [(N_LOGGED, d, lr, 64.0 * b) for d in TOKENS for lr in LRS for b in BATCHES],
        columns=["N", "D", "lr", "batch_tokens"],
    ).astype(float)
    pd.testing.assert_frame_equal(frame[["N", "D", "lr", "batch_tokens"]], expected)
    assert (frame["loss"] > 0).all()
    # a second pass reuses every run instead of training it again
    again: list[str] = []
    hparam_sweep.train_grid(tiny_sweep["uri"], "tiny", tiny_sweep["points"], workers=1,
                            echo=again.append)  # fmt: skip
    assert again == [
        "hparam-sweep: 8 runs in 2 cells (size x tokens), 8 reused; 0 to train, 1 at once"
    ]


def test_the_refit_writes_the_section_and_names_the_too_small_cells(tiny_sweep) -> None:
    section = tiny_sweep["section"]  # refit() raised had hparams.png not been published
    cells = section["cells"]
    assert [c["runs"] for c in cells] == [4, 4]
    at = [N_LOGGED, TOKENS[0], N_LOGGED, TOKENS[1]]
    assert [v for c in cells for v in (c["N"], c["D"])] == pytest.approx(at, rel=1e-12)
    assert [(c["lr_status"], c["batch_status"]) for c in section["cells"]] == [
        ("too_few", "too_few")] * 2  # fmt: skip
    assert section["axes"] == ["lr", "batch"]
    assert len(section["runs"]) == 8 and sum(r["in_law"] for r in section["runs"]) == 2
    assert section["predictions"] == []
    assert section["target"]["N"] == pytest.approx(10 * N_LOGGED)
    assert "  cells (lr/batch): too_few/too_few, too_few/too_few" in tiny_sweep["lines"]


def test_the_check_says_when_there_is_no_law_to_predict_with(tiny_sweep, capsys) -> None:
    assert hparam_sweep.held_out_check(tiny_sweep["folder"] / "sweep.csv") is False
    assert "no law to predict the largest cell with" in capsys.readouterr().out


def test_the_check_on_a_noise_free_sweep_lands_inside(tmp_path, capsys) -> None:
    """Simulated cells whose optima follow Step Law's form exactly: the largest cell's η and B
    are predicted inside its band, and the band's share of the grid is printed."""
    sim = simulate_grid(0, noise=0.0)
    path = tmp_path / "sim.csv"
    pd.DataFrame({"N": sim["N"], "D": sim["D"], "lr": sim["lr"], "batch_tokens": sim["batch"],
                  "loss": sim["loss"]}).to_csv(path, index=False)  # fmt: skip
    assert hparam_sweep.held_out_check(path) is True
    judged = [ln for ln in capsys.readouterr().out.splitlines() if ": predicted " in ln]
    assert [ln.split(":")[0] for ln in judged] == ["  lr", "  batch"]
    assert all("INSIDE" in ln and "of the grid's range" in ln for ln in judged)


def test_share_of_grid() -> None:
    assert hparam_sweep.share_of_grid((1.0, 4.0), (1.0, 2.0, 4.0, 8.0)) == pytest.approx(2 / 3)
    assert hparam_sweep.share_of_grid((0.5, 16.0), (1.0, 8.0)) == 1.0  # clipped to the grid
    assert hparam_sweep.share_of_grid((10.0, 20.0), (1.0, 8.0)) == 0.0  # outside it


def test_grids_follow_the_rules_in_n_d_and_b() -> None:
    points = hparam_sweep.plan()
    assert len(points) == 84
    batches = {d: sorted({p.batch for p in points if p.tokens == d}) for d in (2**18, 2**19)}
    assert batches == {2**18: [1, 2, 4], 2**19: [1, 2, 4, 8]}
    largest = [p for p in points if p.size == (2, 48) and p.tokens == 2**19 and p.batch == 8]
    centre = 8e-3 * math.sqrt(12 * 32**2 / (12 * 2 * 48**2)) * math.sqrt(8 / 2)
    assert sorted(p.lr for p in largest) == pytest.approx(
        [centre * 2**k for k in (-0.5, 0.0, 0.5, 1.0)])  # fmt: skip


def test_a_second_seed_trains_its_own_runs_of_the_same_grid(tiny_sweep) -> None:
    """--seed: the same settings, other initial weights and windows, under their own keys."""
    assert [(p.size, p.tokens, p.lr, p.batch) for p in hparam_sweep.plan(seed=1)] == [
        (p.size, p.tokens, p.lr, p.batch) for p in hparam_sweep.plan()]  # fmt: skip
    point = Point(SIZE, TOKENS[0], LRS[0], BATCHES[0], seed=1)
    assert point.key == Point(SIZE, TOKENS[0], LRS[0], BATCHES[0]).key + "-s1"
    hparam_sweep.train_grid(tiny_sweep["uri"], "tiny-seed-1", [point], workers=1,
                            echo=lambda _: None)  # fmt: skip
    other = hparam_sweep.export_csv(tiny_sweep["uri"], "tiny-seed-1",
                                    tiny_sweep["folder"] / "seed1.csv")  # fmt: skip
    frame = tiny_sweep["frame"]
    same = frame[(frame["D"] == TOKENS[0]) & (frame["lr"] == LRS[0])
                 & (frame["batch_tokens"] == 64.0 * BATCHES[0])]  # fmt: skip
    assert len(other) == 1 and len(same) == 1
    assert other["loss"].iloc[0] != same["loss"].iloc[0]
