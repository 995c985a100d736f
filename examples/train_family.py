"""Train a scaling family of byte-level GPTs on the Python standard library, tracked in MLflow.

The runs form an isoFLOP grid: for each compute budget C, a band of model sizes, each trained
for D = C / f(N) tokens, where f(N) is the callback's own count of training FLOPs per token
(6·N plus the tied head plus attention). Every size within a budget spends the same FLOPs, so
the family supports all three of Chinchilla's approaches: the isoFLOP profiles (Approach 2),
the parametric fit (Approach 3), and, since every run logs its validation loss at several
points, the envelope of training curves (Approach 1). Each run has its own learning-rate
schedule (warm-up, then cosine decay ending at its own last step), so each run's final
validation loss is a fair point for the law. The ``ScalingLawCallback`` logs N, D and C with
every run; ``MLFlowLogger`` logs the losses; ``NextLineEval`` scores a downstream task (pick
the true next line of held-out source among four) at every validation, the run's 8 curve points.

    python examples/train_family.py --tracking-uri sqlite:///mlflow.db [--quick] [--verbose]

Finished runs of the same family and shape are found again and reused, not retrained. The
output is one progress bar for the family (or one line per run where the output is not a
terminal); ``--verbose`` brings back Lightning's own banner, summaries and progress bars.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import math
import os
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelSummary, TQDMProgressBar
from lightning.pytorch.loggers import MLFlowLogger
from torch.utils.data import DataLoader, Dataset

sys.path.insert(0, str(Path(__file__).resolve().parent))

from nextline_task import NextLineEval, build_examples, task_tags  # noqa: E402
from stdlib_corpus import load_corpus  # noqa: E402
from tiny_gpt import ByteWindows, GPTConfig, TinyGPT  # noqa: E402

from lightning_callbacks import ScalingLawCallback  # noqa: E402
from mlflow_scaling.integrations.counting import count_parameters  # noqa: E402
from mlflow_scaling.integrations.flops import analytic_flops_per_token, infer_transformer_shape  # noqa: E402

TAG_SHAPE = "demo.shape"
TAG_BUDGET = "demo.budget"
SEQ_LEN = 64
BATCH = 16
TOKENS_PER_STEP = BATCH * SEQ_LEN
VALIDATION_WINDOWS = 1024
EVALS_PER_RUN = 8
"""Validation points per run (evenly spaced, the last at the final step): the run's curve."""


@dataclass(frozen=True)
class Size:
    """A model shape of the family."""

    n_layer: int
    d_model: int

    def config(self, lr_scale: float = 1.0) -> GPTConfig:
        return GPTConfig(
            n_layer=self.n_layer,
            n_head=max(1, self.d_model // 32),
            d_model=self.d_model,
            seq_len=SEQ_LEN,
            lr=lr_scale * min(3e-3, 3e-3 * math.sqrt(64 / self.d_model)),
        )

    @cached_property
    def flops_per_token(self) -> int:
        """Training FLOPs per token as ``ScalingLawCallback`` counts them (its analytic formula)."""
        model = TinyGPT(self.config())
        shape = infer_transformer_shape(model)
        assert shape is not None
        return analytic_flops_per_token(count_parameters(model), shape, SEQ_LEN)


@dataclass(frozen=True)
class Shape:
    """One member of the family: a model size trained on one compute budget."""

    size: Size
    budget: float

    @property
    def steps(self) -> int:
        """Optimizer steps that spend ``budget`` FLOPs (a multiple of the evaluations)."""
        steps = self.budget / (self.size.flops_per_token * TOKENS_PER_STEP)
        return max(EVALS_PER_RUN, EVALS_PER_RUN * round(steps / EVALS_PER_RUN))

    @property
    def key(self) -> str:
        return f"L{self.size.n_layer}-d{self.size.d_model}-s{self.steps}"

    @property
    def tokens(self) -> int:
        return self.steps * TOKENS_PER_STEP

    def config(self, lr_scale: float = 1.0) -> GPTConfig:
        return self.size.config(lr_scale)


# Budget (FLOPs) -> the sizes trained on it. Each band brackets the compute-optimal size of its
# budget, which grows with the budget (pilot runs: best near 3k non-embedding parameters at
# 6e10 FLOPs, 10k at 2e11, 25k at 1e12). Non-embedding parameters: L1-d16 3.3k, L1-d24 7.3k,
# L1-d32 12.8k, L2-d32 25.5k, L2-d48 56.6k, L2-d64 100k.
FULL_GRID = {
    2e11: ((1, 16), (1, 24), (1, 32), (2, 32)),
    6e11: ((1, 24), (1, 32), (2, 32), (2, 48)),
    2e12: ((1, 32), (2, 32), (2, 48), (2, 64)),
}
QUICK_GRID = {
    8e10: ((1, 16), (1, 24), (1, 32)),
    1.6e11: ((1, 16), (1, 24), (1, 32), (2, 32)),
    3.2e11: ((1, 24), (1, 32), (2, 32), (2, 48)),
}


def plan(quick: bool) -> list[Shape]:
    grid = QUICK_GRID if quick else FULL_GRID
    return [Shape(Size(*size), budget) for budget, sizes in grid.items() for size in sizes]


class ScheduledGPT(TinyGPT):
    """TinyGPT with a warm-up and a cosine decay that ends at the run's own last step."""

    def __init__(self, config: GPTConfig, total_steps: int) -> None:
        super().__init__(config)
        self.total_steps = total_steps

    def configure_optimizers(self):
        optimizer = super().configure_optimizers()
        warmup = max(1, self.total_steps // 10)

        def factor(step: int) -> float:
            if step < warmup:
                return (step + 1) / warmup
            progress = min(1.0, (step - warmup) / max(1, self.total_steps - warmup))
            return 0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * progress))

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }


class RandomWindows(Dataset):
    """``count`` windows drawn at fixed random offsets of the training bytes."""

    def __init__(self, data: torch.Tensor, count: int, seed: int) -> None:
        g = torch.Generator().manual_seed(seed)
        self.data = data
        self.starts = torch.randint(0, data.numel() - SEQ_LEN - 1, (count,), generator=g)

    def __len__(self) -> int:
        return self.starts.numel()

    def __getitem__(self, i: int):
        s = int(self.starts[i])
        chunk = self.data[s : s + SEQ_LEN + 1]
        return chunk[:-1], chunk[1:]


def ensure_experiment(tracking_uri: str, experiment: str) -> None:
    """Create the experiment up front (else MLFlowLogger warns that it creates it)."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri)
    if client.get_experiment_by_name(experiment) is None:
        client.create_experiment(experiment)


def finished_shapes(tracking_uri: str, experiment: str, family: str) -> dict[str, str]:
    """Shape key -> run id of this family's finished runs (to reuse them)."""
    from mlflow import MlflowClient

    from mlflow_scaling.tracking import schema

    client = MlflowClient(tracking_uri)
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        return {}
    runs = client.search_runs(
        [exp.experiment_id],
        filter_string=f"{schema.family_filter(family)} and attributes.status = 'FINISHED'",
        max_results=1000,
    )
    return {r.data.tags[TAG_SHAPE]: r.info.run_id for r in runs if TAG_SHAPE in r.data.tags}


@contextlib.contextmanager
def lightning_quiet(quiet: bool) -> Iterator[None]:
    """Silence Lightning's banner, tips and device lines (its INFO log) and its advice
    warnings while training; warnings about real problems still show."""
    if not quiet:
        yield
        return
    loggers = [logging.getLogger(name) for name in ("lightning.pytorch", "lightning.fabric")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    # MLflow prints "View run ... at URL" when a run against a server ends
    url_env = "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"
    url_setting = os.environ.get(url_env)
    os.environ[url_env] = "true"
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*does not have many workers.*")
            # torch deprecates a class Lightning's pytree helper still uses: not the user's to fix
            warnings.filterwarnings("ignore", message=".*LeafSpec.*", category=FutureWarning)
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)
        if url_setting is None:
            os.environ.pop(url_env, None)
        else:
            os.environ[url_env] = url_setting


class RunProgress(L.Callback):
    """Shows the current run's step on the family's progress bar."""

    def __init__(self, bar, label: str, every: int = 25) -> None:
        self.bar, self.label, self.every = bar, label, every

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        step = trainer.global_step
        if step % self.every == 0 or step == trainer.max_steps:
            self.bar.set_postfix_str(f"{self.label} step {step}/{trainer.max_steps}")


@dataclass(frozen=True)
class RunResult:
    run_id: str
    val_loss: float | None
    task_accuracy: float | None
    seconds: float


def train_one(
    shape: Shape,
    corpus_train: torch.Tensor,
    validation: ByteWindows,
    task: list,
    *,
    tracking_uri: str,
    experiment: str,
    family: str,
    seed: int,
    verbose: bool = False,
    bar=None,
    lr_scale: float = 1.0,
) -> RunResult:
    """Train one member and return its MLflow run id and final numbers."""
    started = time.perf_counter()
    L.seed_everything(seed, verbose=False)
    model = ScheduledGPT(shape.config(lr_scale), total_steps=shape.steps)
    train = DataLoader(RandomWindows(corpus_train, shape.steps * BATCH, seed), batch_size=BATCH)
    val = DataLoader(validation, batch_size=64)
    logger = MLFlowLogger(
        experiment_name=experiment,
        tracking_uri=tracking_uri,
        run_name=f"{family}-{shape.key}",
        tags={TAG_SHAPE: shape.key, TAG_BUDGET: f"{shape.budget:g}", **task_tags(len(task))},
    )
    evaluation = NextLineEval(task)
    callbacks = [ScalingLawCallback(family=family, log_every_n_steps=50), evaluation]
    if bar is not None:
        callbacks.append(RunProgress(bar, shape.key))
    if verbose:  # Lightning's plain bar and summary, whether or not `rich` is installed
        callbacks += [TQDMProgressBar(), ModelSummary()]
    with lightning_quiet(not verbose):
        trainer = L.Trainer(
            accelerator="cpu",
            devices=1,
            max_steps=shape.steps,
            max_epochs=1,
            val_check_interval=shape.steps // EVALS_PER_RUN,
            logger=logger,
            callbacks=callbacks,
            enable_checkpointing=False,
            enable_progress_bar=verbose,
            enable_model_summary=verbose,
            log_every_n_steps=20,
            num_sanity_val_steps=0,
        )
        trainer.fit(model, train, val)
    val_loss = trainer.callback_metrics.get("val_loss")
    return RunResult(
        run_id=logger.run_id,
        val_loss=None if val_loss is None else float(val_loss),
        task_accuracy=None if evaluation.result is None else evaluation.result.accuracy,
        seconds=time.perf_counter() - started,
    )


def train_family(
    *,
    tracking_uri: str,
    experiment: str = "scaling-demo",
    family: str = "stdlib-gpt",
    quick: bool = False,
    seed: int = 0,
    progress: bool = True,
    verbose: bool = False,
    echo: Callable[[str], None] = print,
    lr_scale: float = 1.0,
    budgets: tuple[float, ...] | None = None,
) -> dict[str, str]:
    """Train (or reuse) every member of the family; shape key -> run id.

    ``budgets`` keeps only the grid's budgets listed (default: all of them).

    With ``progress`` and a terminal, one bar shows the runs done and the current run's step;
    otherwise each finished run prints one line. ``verbose`` lets Lightning speak.
    ``lr_scale`` multiplies every member's learning rate (a second family for a comparison).
    """
    from tqdm import tqdm

    torch.set_num_threads(1)  # tiny matrices: one thread per process is fastest on 2 cores
    corpus = load_corpus()
    data = torch.frombuffer(bytearray(corpus.train), dtype=torch.uint8).long()
    validation = ByteWindows(corpus.validation[: VALIDATION_WINDOWS * SEQ_LEN + 1], SEQ_LEN)
    task = build_examples(corpus.validation, SEQ_LEN, seed=seed)
    shapes = [s for s in plan(quick) if budgets is None or s.budget in budgets]
    budgets = sorted({s.budget for s in shapes})
    per_budget = sorted({sum(s.budget == b for s in shapes) for b in budgets})
    echo(
        f"{family}: {len(shapes)} runs, an isoFLOP grid: {len(budgets)} compute budgets "
        f"({', '.join(f'{b:.2g}' for b in budgets)} FLOPs) × "
        f"{'-'.join(map(str, per_budget))} model sizes each"
    )
    ensure_experiment(tracking_uri, experiment)
    done = finished_shapes(tracking_uri, experiment, family)
    reused = [s.key for s in shapes if s.key in done]
    if reused:
        echo(f"{family}: reusing {len(reused)} finished runs")
    runs = {k: done[k] for k in reused}
    show_bar = progress and not verbose and sys.stderr.isatty()
    bar = tqdm(
        total=len(shapes), initial=len(reused), desc=family, unit="run", disable=not show_bar,
        leave=False,
    )  # fmt: skip
    started = time.perf_counter()
    todo = [s for s in shapes if s.key not in runs]
    for i, shape in enumerate(todo, start=len(reused) + 1):
        result = train_one(
            shape, data, validation, task, tracking_uri=tracking_uri, experiment=experiment,
            family=family, seed=seed, verbose=verbose, bar=bar if show_bar else None,
            lr_scale=lr_scale,
        )  # fmt: skip
        runs[shape.key] = result.run_id
        bar.update(1)
        if not show_bar:
            loss = "n/a" if result.val_loss is None else f"{result.val_loss:.4f}"
            acc = "n/a" if result.task_accuracy is None else f"{result.task_accuracy:.3f}"
            echo(
                f"  run {i}/{len(shapes)} {shape.key} at {shape.budget:.2g} FLOPs: "
                f"val_loss {loss}, nextline accuracy {acc} ({result.seconds:.0f} s)"
            )
    bar.close()
    echo(f"{family}: trained {len(todo)} runs in {time.perf_counter() - started:.0f} s")
    return runs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracking-uri", default="sqlite:///mlflow.db")
    parser.add_argument("--experiment", default="scaling-demo")
    parser.add_argument("--family", default="stdlib-gpt")
    parser.add_argument(
        "--quick", action="store_true", help="fewer, smaller runs (about 4 minutes)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--verbose", action="store_true", help="Lightning's own output too")
    args = parser.parse_args(argv)
    train_family(
        tracking_uri=args.tracking_uri, experiment=args.experiment, family=args.family,
        quick=args.quick, seed=args.seed, progress=not args.no_progress, verbose=args.verbose,
    )  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
