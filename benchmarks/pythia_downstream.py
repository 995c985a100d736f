"""The real section of bench_downstream.py: the Pythia ladder, two largest sizes from the rest.

``../shared/data/dev_sweeps/pythia_evals.csv`` (see its README): seven sizes × 27 checkpoints
of one 300B-token cosine schedule, nine tasks. LAMBADA's perplexity is the file's one task loss,
so step 1 uses its log (nats per token on LAMBADA's last words) as the loss for every task, at
the same model and step. The five smaller sizes' final points fit step 1 (one D each: against
C on the frontier); step 2 is fitted on their final points (floor at chance) or on their
checkpoints after the first ``skip`` of the 143k steps (free floor and height). The two largest
sizes' final accuracies are predicted from N and D alone (the whole chain). Tasks at chance at
every size (MMLU, LogiQA, WSC) are called cold start and reported apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from mlflow_scaling.laws.downstream import fit_task

try:  # absent before checkpoints existed: the "before" run of the benchmark
    from mlflow_scaling.laws.downstream import Checkpoints, later_checkpoints
except ImportError:  # pragma: no cover
    Checkpoints = later_checkpoints = None

PYTHIA = Path(__file__).resolve().parents[2] / "shared" / "data" / "dev_sweeps" / "pythia_evals.csv"
HELD_OUT = ("6.9b", "12b")
COLD_START_TASKS = ("mmlu_avg", "logiqa", "wsc")
# Chance level and evaluation examples of each task (lm-evaluation-harness test/val splits).
TASKS = {
    "arc_challenge": (0.25, 1172), "arc_easy": (0.25, 2376), "lambada_openai": (0.0, 5153),
    "piqa": (0.5, 1838), "sciq": (0.25, 1000), "winogrande": (0.5, 1267),
    "mmlu_avg": (0.25, 14042), "logiqa": (0.25, 651), "wsc": (0.5, 104),
}  # fmt: skip
TASK_LOSS = "lambada_openai"


@dataclass
class Outcome:
    predicted: list[float]
    lo: list[float | None]
    hi: list[float | None]
    one_step: list[float]
    phase: str
    shares: list[float | None]


def load(path: Path = PYTHIA) -> pd.DataFrame:
    frame = pd.read_csv(path)
    loss = frame.loc[frame.task == TASK_LOSS, ["model", "step", "ppl"]]
    frame = frame.merge(loss.rename(columns={"ppl": "lambada_ppl"}), on=["model", "step"])
    frame["loss"] = np.log(frame["lambada_ppl"])
    frame[["N", "D"]] = frame[["N", "D"]].astype(float)
    return frame[frame.step > 0]


def run_task(frame: pd.DataFrame, task: str, *, checkpoints: bool, skip: float, n_boot: int,
             seed: int = 0) -> Outcome:  # fmt: skip
    """Fit on the smaller sizes; predict the held-out sizes' final accuracy."""
    chance, examples = TASKS[task]
    rows = frame[frame.task == task]
    last = rows.step.max()
    train = rows[~rows.model.isin(HELD_OUT)]
    final = train[train.step == last].sort_values("N")
    targets = rows[(rows.step == last) & rows.model.isin(HELD_OUT)].sort_values("N")
    ck = None
    if checkpoints:
        keep = later_checkpoints(train.model.to_numpy(), train.step.to_numpy(), skip)
        t = train[keep]
        ck = Checkpoints.of(t.model.to_numpy(), t.loss, t.acc, np.full(len(t), examples))
    kw = {"checkpoints": ck} if ck is not None else {}
    fit = fit_task(task, final.N, final.D, 6 * final.N * final.D, final.acc, final.loss, chance,
                   n_examples=np.full(len(final), examples), groups=final.model.to_numpy(),
                   targets=[(a, b) for a, b in zip(targets.N, targets.D, strict=True)],
                   n_boot=n_boot, seed=seed, backtest=False, loss_source="log LAMBADA ppl",
                   **kw)  # fmt: skip
    p = fit.predictions
    return Outcome([r["metric"] for r in p], [r["lo"] for r in p], [r["hi"] for r in p],
                   [r["one_step"] for r in p], fit.phase.phase,
                   [r.get("share_step1") for r in p])  # fmt: skip


def measured(frame: pd.DataFrame, task: str) -> np.ndarray:
    rows = frame[(frame.task == task) & frame.model.isin(HELD_OUT)]
    return rows[rows.step == rows.step.max()].sort_values("N").acc.to_numpy()


def scores(out: Outcome, truth: np.ndarray) -> tuple[float, float, float]:
    """(mean relative error, intervals covering / targets, one-step mean relative error)."""
    pred, one = np.array(out.predicted), np.array(out.one_step)
    cover = [lo is not None and lo <= t <= hi for lo, hi, t in zip(out.lo, out.hi, truth,
                                                                   strict=True)]  # fmt: skip
    return (float(np.mean(np.abs(pred - truth) / truth)), float(np.mean(cover)),
            float(np.mean(np.abs(one - truth) / truth)))  # fmt: skip


def report(n_boot: int, skip: float, skips: tuple[float, ...] = ()) -> None:
    if not PYTHIA.exists():
        print(f"real section skipped: {PYTHIA} is absent (the dev sweeps sit beside the "
              "checkout in ../shared, not in a user's clone)")  # fmt: skip
        return
    frame = load()
    scaling = [t for t in TASKS if t not in COLD_START_TASKS]
    print(f"\nPythia: {', '.join(HELD_OUT)} final accuracy from the five smaller sizes, whole "
          f"chain (step 1: log LAMBADA ppl against C), {n_boot} replicates; relative error, "
          "intervals covering of 2")  # fmt: skip
    head = f"{'task':<15} {'final pts':>16} {'checkpoints':>16} {'one-step':>9}"
    head += f" {'step-1 share':>12}"
    print(head)
    sums = {"final": [], "ck": [], "one": [], "cov_f": [], "cov_c": []}
    with_ck = later_checkpoints is not None
    for task in scaling:
        truth = measured(frame, task)
        ef, cf, eo = scores(run_task(frame, task, checkpoints=False, skip=skip, n_boot=n_boot),
                            truth)  # fmt: skip
        sums["final"].append(ef), sums["cov_f"].append(cf), sums["one"].append(eo)
        ck_text, share = "-", "-"
        if with_ck:
            out = run_task(frame, task, checkpoints=True, skip=skip, n_boot=n_boot)
            ec, cc, _ = scores(out, truth)
            sums["ck"].append(ec), sums["cov_c"].append(cc)
            ck_text = f"{100 * ec:5.1f} % {2 * cc:.0f}/2"
            share = "/".join(f"{s:.2f}" for s in out.shares if s is not None) or "-"
        print(f"{task:<15} {100 * ef:8.1f} % {2 * cf:.0f}/2 {ck_text:>16} {100 * eo:7.1f} % "
              f"{share:>12}")  # fmt: skip
    line = f"{'mean (6 tasks)':<15} {100 * np.mean(sums['final']):8.1f} % " \
           f"{np.mean(sums['cov_f']):4.0%}"  # fmt: skip
    if with_ck:
        line += f" {100 * np.mean(sums['ck']):8.1f} % {np.mean(sums['cov_c']):4.0%}"
    print(line + f" {100 * np.mean(sums['one']):7.1f} %")
    for task in COLD_START_TASKS:
        out = run_task(frame, task, checkpoints=with_ck, skip=skip, n_boot=0)
        rows = frame[(frame.task == task) & ~frame.model.isin(HELD_OUT)]
        top = rows[rows.step == rows.step.max()].sort_values("N").iloc[-1]
        print(f"cold start? {task:<10} phase {out.phase} (largest trained {top.model}: "
              f"{top.acc:.3f}, chance {TASKS[task][0]:g}); held-out measured "
              + ", ".join(f"{a:.3f}" for a in measured(frame, task)) + ", predicted "
              + ", ".join(f"{a:.3f}" for a in out.predicted))  # fmt: skip
    if with_ck and skips:
        print("\nskipped early fraction of checkpoints (mean relative error over the 6 tasks, "
              "checkpoints, no bootstrap):")  # fmt: skip
        for x in skips:
            errs = [scores(run_task(frame, t, checkpoints=True, skip=x, n_boot=0),
                           measured(frame, t))[0] for t in scaling]  # fmt: skip
            print(f"  skip {x:4.0%} of the steps: {100 * np.mean(errs):5.1f} %")
