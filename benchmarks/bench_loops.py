"""Overhead per optimizer step of the scaling-law counting in each training loop, in one run.

The same tiny byte-level GPT trains through Lightning, Hugging Face ``Trainer`` and a plain
PyTorch loop, each three times: bare, with our counting (``ScalingLawCallback``,
``ScalingLawTrainerCallback``, ``ScalingCounter``, logging to a real SQLite MLflow store), and
with the reference (Lightning's ``ThroughputMonitor``; ``lightning.fabric``'s ``Throughput``
updated once per optimizer step for the other two loops).

Measured directly, because on a shared 2-core machine the wall-clock difference of two fits is
noise at the 1 % level: the time spent inside each counter's hooks per step (wall clock around
every hook call; for us also the forward pre-hook and the MLflow worker thread's CPU time), over
the median bare step of that loop. Printed per loop: our overhead, the reference's, and the ratio.

    .venv/bin/python benchmarks/bench_loops.py [--steps 200] [--warmup 10]
"""

from __future__ import annotations

import argparse
import functools
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]

from examples.tiny_gpt import GPTConfig, TinyGPT  # noqa: E402


class HookClock:
    """Wall-clock seconds spent inside the wrapped methods of counters, and step boundaries."""

    def __init__(self) -> None:
        self.inside = 0.0
        self.marks: list[float] = []
        self.inside_marks: list[float] = []
        self.worker_marks: list[float] = []
        self.counter: Any = None

    def wrap(self, obj: Any, names: tuple[str, ...]) -> Any:
        """Time ``obj``'s methods ``names``; ``obj`` is the counter of this arm."""
        self.counter = obj
        for name in names:
            method = getattr(obj, name)

            @functools.wraps(method)
            def timed(*args: Any, _method: Callable = method, **kwargs: Any) -> Any:
                start = time.perf_counter()
                try:
                    return _method(*args, **kwargs)
                finally:
                    self.inside += time.perf_counter() - start

            setattr(obj, name, timed)  # an instance attribute: what the loops look up
        return obj

    def mark(self) -> None:
        """An optimizer step ended."""
        self.marks.append(time.perf_counter())
        self.inside_marks.append(self.inside)
        self.worker_marks.append(worker_cpu(self.counter))

    def step_seconds(self, warmup: int) -> float:
        """The median step after ``warmup`` steps."""
        t = self.marks[warmup:]
        return statistics.median(b - a for a, b in zip(t, t[1:], strict=False))

    def hook_seconds(self, warmup: int) -> float:
        """Mean seconds per step inside the hooks after ``warmup`` steps (start-up excluded)."""
        t = self.inside_marks[warmup:]
        return (t[-1] - t[0]) / (len(t) - 1)

    def worker_seconds(self, warmup: int) -> float:
        """Mean CPU seconds per step of our MLflow worker thread after ``warmup`` steps."""
        t = self.worker_marks[warmup:]
        return (t[-1] - t[0]) / (len(t) - 1)


def model() -> TinyGPT:
    torch.manual_seed(0)
    return TinyGPT(GPTConfig(n_layer=2, n_head=2, d_model=64, seq_len=64))


def data(steps: int, batch: int) -> TensorDataset:
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, 256, (steps * batch, 65), generator=g)
    return TensorDataset(ids[:, :-1], ids[:, 1:])


def flops_per_token() -> float:
    from mlflow_scaling.integrations import analytic_flops_per_token, count_parameters
    from mlflow_scaling.integrations import infer_transformer_shape as shape_of

    m = model()
    return float(analytic_flops_per_token(count_parameters(m), shape_of(m), 64))


def worker_cpu(counter: Any) -> float:
    """CPU seconds our MLflow worker thread has spent delivering so far (0 for references)."""
    core = getattr(counter, "core", None)
    if core is None:
        return 0.0
    return core.closed_sink_cpu_seconds + (core.sink.cpu_seconds if core.sink else 0.0)


class FabricThroughputOncePerStep:
    """The reference outside Lightning: ``lightning.fabric``'s ``Throughput`` updated once per
    optimizer step with host-known counts, computed every ``log_every`` steps (as
    ``ThroughputMonitor`` computes on logging steps)."""

    def __init__(self, batch: int, seq_len: int, log_every: int = 50) -> None:
        from lightning.fabric.utilities.throughput import Throughput

        self.throughput = Throughput(window_size=log_every)
        self.batch, self.seq_len, self.log_every = batch, seq_len, log_every
        self.fpt = flops_per_token()
        self.start = time.perf_counter()
        self.last: dict[str, float] = {}

    def step(self, step: int) -> None:
        samples = step * self.batch
        self.throughput.update(
            time=time.perf_counter() - self.start,
            batches=step,
            samples=samples,
            lengths=samples * self.seq_len,
            flops=samples * self.seq_len * self.fpt,
        )
        if step % self.log_every == 0:
            self.last = self.throughput.compute()


def plain_loop(arm: str, args: argparse.Namespace, clock: HookClock) -> None:
    """Train with a hand-written loop."""
    from mlflow_scaling.integrations.torch import ScalingCounter

    m = model()
    optimizer = torch.optim.AdamW(m.parameters(), lr=1e-3)
    loader = DataLoader(data(args.steps + args.warmup, args.batch), batch_size=args.batch)
    counter: Any = None
    if arm == "ours":
        counter = clock.wrap(ScalingCounter(m, family="bench-plain"), ("step",))
    elif arm == "reference":
        counter = clock.wrap(FabricThroughputOncePerStep(args.batch, 64), ("step",))
    for step, (x, y) in enumerate(loader, start=1):
        logits = m(x)
        F.cross_entropy(logits.reshape(-1, logits.size(-1)), y.reshape(-1)).backward()
        optimizer.step()
        if arm == "ours":
            counter.step(x, optimizer, labels=y)
        elif arm == "reference":
            counter.step(step)
        optimizer.zero_grad(set_to_none=True)
        clock.mark()
    if arm == "ours":
        counter.close()


def lightning_loop(arm: str, args: argparse.Namespace, clock: HookClock, tmp: str) -> None:
    import lightning as L
    from lightning.pytorch.callbacks import ThroughputMonitor
    from lightning.pytorch.loggers import CSVLogger

    from lightning_callbacks import ScalingLawCallback

    class Mark(L.Callback):
        def on_train_batch_end(self, *_: Any) -> None:
            clock.mark()

    m = model()
    m.flops_per_batch = flops_per_token() * args.batch * 64  # what ThroughputMonitor reads
    counter: Any = None
    if arm == "ours":
        hooks = ("on_train_batch_end", "on_before_optimizer_step")
        counter = clock.wrap(ScalingLawCallback(family="bench-lightning"), hooks)
    elif arm == "reference":
        monitor = ThroughputMonitor(lambda b: b[0].size(0), lambda b: b[0].numel())
        counter = clock.wrap(monitor, ("on_train_batch_end",))
    L.Trainer(
        accelerator="cpu",
        devices=1,
        max_steps=args.steps + args.warmup,
        logger=CSVLogger(tmp, name=f"lightning-{arm}"),
        log_every_n_steps=50,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[c for c in (counter, Mark()) if c is not None],
    ).fit(m, DataLoader(data(args.steps + args.warmup, args.batch), batch_size=args.batch))


def trainer_loop(arm: str, args: argparse.Namespace, clock: HookClock, tmp: str) -> None:
    from transformers import Trainer, TrainerCallback, TrainingArguments

    from mlflow_scaling.integrations.transformers import ScalingLawTrainerCallback

    class Mark(TrainerCallback):
        def on_step_end(self, *_: Any, **__: Any) -> None:
            clock.mark()

    class Reference(TrainerCallback):
        def __init__(self) -> None:
            self.throughput = FabricThroughputOncePerStep(args.batch, 64)

        def on_step_end(self, a: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.throughput.step(state.global_step)

    class CausalLM(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.gpt = model()

        def forward(self, input_ids: torch.Tensor, labels: torch.Tensor) -> dict[str, Any]:
            logits = self.gpt(input_ids)
            loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), labels.reshape(-1))
            return {"loss": loss}

    counter: Any = None
    if arm == "ours":
        hooks = ("_count", "on_step_end", "on_optimizer_step")
        counter = clock.wrap(ScalingLawTrainerCallback(family="bench-trainer"), hooks)
    elif arm == "reference":
        counter = clock.wrap(Reference(), ("on_step_end",))
    rows = [{"input_ids": x, "labels": y} for x, y in data(args.steps + args.warmup, args.batch)]
    training = TrainingArguments(
        output_dir=f"{tmp}/trainer-{arm}",
        max_steps=args.steps + args.warmup,
        per_device_train_batch_size=args.batch,
        learning_rate=1e-3,
        use_cpu=True,
        report_to="none",
        save_strategy="no",
        logging_strategy="no",
        disable_tqdm=True,
    )
    callbacks = [c for c in (counter, Mark()) if c is not None]
    Trainer(model=CausalLM(), args=training, train_dataset=rows, callbacks=callbacks).train()


def measure(loop: str, args: argparse.Namespace, tmp: str) -> dict[str, tuple[float, float, float]]:
    """Per arm: median step seconds; seconds per step in the hooks, and of our worker's CPU."""
    out = {}
    for arm in ("bare", "ours", "reference"):
        clock = HookClock()
        if loop == "plain":
            plain_loop(arm, args, clock)
        elif loop == "lightning":
            lightning_loop(arm, args, clock, tmp)
        else:
            trainer_loop(arm, args, clock, tmp)
        out[arm] = (
            clock.step_seconds(args.warmup),
            clock.hook_seconds(args.warmup),
            clock.worker_seconds(args.warmup),
        )
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=200, help="timed steps per arm")
    p.add_argument("--warmup", type=int, default=10, help="untimed steps at the start")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--tracking-uri", help="default: a SQLite store in a temporary folder")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    import logging

    import mlflow

    for name in ("lightning.pytorch", "transformers"):
        logging.getLogger(name).setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory(prefix="bench-loops-") as tmp:
        mlflow.set_tracking_uri(args.tracking_uri or f"sqlite:///{tmp}/bench.db")
        mlflow.set_experiment("bench-loops")
        print(
            f"tiny GPT n_layer=2 d_model=64 seq_len=64 batch {args.batch}, CPU, 1 torch thread; "
            f"{args.steps} timed steps per arm; tracking {mlflow.get_tracking_uri()}\n"
            "per optimizer step, over the bare loop's median step: time in the hooks, and our "
            "MLflow worker thread's CPU"
        )
        for loop, reference in (
            ("lightning", "ThroughputMonitor"),
            ("trainer", "fabric Throughput"),
            ("plain", "fabric Throughput"),
        ):
            with mlflow.start_run(run_name=f"bench-{loop}"):
                arms = measure(loop, args, tmp)
            report(loop, reference, arms)


def report(loop: str, reference: str, arms: dict[str, tuple[float, float, float]]) -> None:
    step, (_, hooks, worker), ref = arms["bare"][0], arms["ours"], arms["reference"][1]
    print(
        f"{loop:9s}: step {step * 1e3:6.2f} ms | ours: hooks {hooks * 1e6:6.1f} us "
        f"({100 * hooks / step:4.2f} %) + worker {worker * 1e6:6.1f} us "
        f"({100 * worker / step:4.2f} %) = {100 * (hooks + worker) / step:4.2f} % | "
        f"{reference}: {ref * 1e6:6.1f} us ({100 * ref / step:4.2f} %) | hooks / reference = "
        f"{hooks / ref:4.2f}, with worker {(hooks + worker) / ref:4.2f}"
    )


if __name__ == "__main__":
    main()
