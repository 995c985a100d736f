"""Overhead per optimizer step of the scaling-law counting in each training loop, in one run.

The same tiny byte-level GPT trains through Lightning, Hugging Face ``Trainer`` and a plain
PyTorch loop. In each training our counter (``ScalingLawCallback``, ``ScalingLawTrainerCallback``,
``ScalingCounter``, logging to a real MLflow store) and the reference (Lightning's
``ThroughputMonitor``; ``lightning.fabric``'s ``Throughput`` updated once per optimizer step for
the other two loops) run side by side, on the same steps of the same model; a bare training of
the same loop (no counter) gives the step time. Repetitions interleave the loops, the bare and the
counted trainings, and the order of the counters (rotated each repetition; in the plain loop,
shuffled every step), and the medians over repetitions are reported.

Measured directly, because on a shared 2-core machine the wall-clock difference of two fits is
noise at the 1 % level: the time spent inside each counter's hooks per step (wall clock around
every hook call, logging steps included; for ours also the ``Trainer`` forward pre-hook), and the
CPU time of our MLflow worker thread per step, over the median bare step of that loop. Printed
per loop: each counter's overhead and its ratio to the reference's.

    .venv/bin/python benchmarks/bench_loops.py [--steps 200] [--warmup 10] [--repeats 5]
"""

from __future__ import annotations

import argparse
import functools
import random
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]

from examples.tiny_gpt import GPTConfig, TinyGPT  # noqa: E402

LOOPS = {
    "lightning": "ThroughputMonitor",
    "trainer": "fabric Throughput",
    "plain": "fabric Throughput",
}
"""Each loop and the name of its reference."""


class HookClock:
    """Seconds spent inside the wrapped methods of one counter, read at each step: CPU time of
    the training thread (``time.thread_time``), and wall clock."""

    def __init__(self, counter: Any, names: tuple[str, ...]) -> None:
        self.counter = counter
        self.cpu = self.wall = 0.0
        self.calls = 0
        self.marks: list[tuple[float, float, float, int]] = []  # cpu, wall, worker CPU, calls
        for name in names:
            method = getattr(counter, name)

            @functools.wraps(method)
            def timed(*args: Any, _method: Callable = method, **kwargs: Any) -> Any:
                self.calls += 1
                cpu, wall = time.thread_time(), time.perf_counter()
                try:
                    return _method(*args, **kwargs)
                finally:
                    self.wall += time.perf_counter() - wall
                    self.cpu += time.thread_time() - cpu

            setattr(counter, name, timed)  # an instance attribute: what the loops look up

    def mark(self) -> None:
        self.marks.append((self.cpu, self.wall, worker_cpu(self.counter), self.calls))

    def per_step(self, warmup: int) -> tuple[float, float, float, float]:
        """Means per step after ``warmup``: seconds of the hooks' CPU, of their wall clock and
        of our worker's CPU, and timed calls."""
        first, last = self.marks[warmup], self.marks[-1]
        n = len(self.marks) - 1 - warmup
        cpu, wall, worker, calls = ((b - a) / n for a, b in zip(first, last, strict=True))
        return cpu, wall, worker, calls


class Steps:
    """The step boundaries of one training and the clocks of its counters."""

    def __init__(self) -> None:
        self.marks: list[float] = []
        self.clocks: dict[str, HookClock] = {}

    def track(self, name: str, counter: Any, hooks: tuple[str, ...]) -> Any:
        self.clocks[name] = HookClock(counter, hooks)
        return counter

    def mark(self) -> None:
        """An optimizer step ended."""
        self.marks.append(time.perf_counter())
        for clock in self.clocks.values():
            clock.mark()

    def step_seconds(self, warmup: int) -> float:
        """The median step after ``warmup`` steps."""
        t = self.marks[warmup:]
        return statistics.median(b - a for a, b in zip(t, t[1:], strict=False))


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


# Counters of each loop: factories of (counter, timed hooks[, per-step call, close]). -----------
@dataclass
class PlainArm:
    counter: Any
    hooks: tuple[str, ...]
    call: Callable[[int, torch.Tensor, torch.Tensor, torch.optim.Optimizer], None]
    close: Callable[[], None] | None = None


def plain_ours(m: torch.nn.Module, args: argparse.Namespace, name: str) -> PlainArm:
    from mlflow_scaling.integrations.torch import ScalingCounter

    counter = ScalingCounter(m, family=f"bench-plain-{name}")
    call = lambda s, x, y, o: counter.step(x, o, labels=y)  # noqa: E731
    return PlainArm(counter, ("step",), call, counter.close)


def plain_reference(m: torch.nn.Module, args: argparse.Namespace, name: str) -> PlainArm:
    reference = FabricThroughputOncePerStep(args.batch, 64)
    return PlainArm(reference, ("step",), lambda s, x, y, o: reference.step(s))


def lightning_ours(args: argparse.Namespace, name: str) -> tuple[Any, tuple[str, ...]]:
    from lightning_callbacks import ScalingLawCallback

    hooks = ("on_train_batch_end", "on_before_optimizer_step")
    return ScalingLawCallback(family=f"bench-lightning-{name}"), hooks


def lightning_reference(args: argparse.Namespace, name: str) -> tuple[Any, tuple[str, ...]]:
    from lightning.pytorch.callbacks import ThroughputMonitor

    monitor = ThroughputMonitor(lambda b: b[0].size(0), lambda b: b[0].numel())
    return monitor, ("on_train_batch_end",)


def trainer_ours(args: argparse.Namespace, name: str) -> tuple[Any, tuple[str, ...]]:
    from mlflow_scaling.integrations.transformers import ScalingLawTrainerCallback

    hooks = ("_count",)  # the forward pre-hook does all the per-step work
    return ScalingLawTrainerCallback(family=f"bench-trainer-{name}"), hooks


def trainer_reference(args: argparse.Namespace, name: str) -> tuple[Any, tuple[str, ...]]:
    from transformers import TrainerCallback

    class Reference(TrainerCallback):
        def __init__(self) -> None:
            self.throughput = FabricThroughputOncePerStep(args.batch, 64)

        def on_step_end(self, a: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.throughput.step(state.global_step)

    return Reference(), ("on_step_end",)


class NoOp:
    """The timer's own cost: a hook that does nothing, timed like the others."""

    def step(self, *_: Any) -> None:
        pass


def plain_timer(m: torch.nn.Module, args: argparse.Namespace, name: str) -> PlainArm:
    noop = NoOp()
    return PlainArm(noop, ("step",), lambda s, x, y, o: noop.step(s))


def lightning_timer(args: argparse.Namespace, name: str) -> tuple[Any, tuple[str, ...]]:
    import lightning as L

    class Timer(L.Callback):
        def on_train_batch_end(self, *_: Any) -> None:
            pass

    return Timer(), ("on_train_batch_end",)


def trainer_timer(args: argparse.Namespace, name: str) -> tuple[Any, tuple[str, ...]]:
    from transformers import TrainerCallback

    class Timer(TrainerCallback):
        def on_step_end(self, *_: Any, **__: Any) -> None:
            pass

    return Timer(), ("on_step_end",)


ARMS: dict[str, dict[str, Callable[..., Any]]] = {
    "lightning": {
        "ours": lightning_ours,
        "reference": lightning_reference,
        "timer": lightning_timer,
    },
    "trainer": {"ours": trainer_ours, "reference": trainer_reference, "timer": trainer_timer},
    "plain": {"ours": plain_ours, "reference": plain_reference, "timer": plain_timer},
}
"""Per loop, the counters that run side by side (another script may add its own)."""


# The three loops. ----------------------------------------------------------------------------
def plain_loop(arms: list[str], args: argparse.Namespace, steps: Steps, tmp: str) -> None:
    """Train with a hand-written loop; the counters are called in a shuffled order each step."""
    m = model()
    optimizer = torch.optim.AdamW(m.parameters(), lr=1e-3)
    loader = DataLoader(data(args.steps + args.warmup, args.batch), batch_size=args.batch)
    made = [(name, ARMS["plain"][name](m, args, name)) for name in arms]
    for name, arm in made:
        steps.track(name, arm.counter, arm.hooks)
    calls = [arm.call for _, arm in made]
    order = random.Random(0)
    for step, (x, y) in enumerate(loader, start=1):
        logits = m(x)
        F.cross_entropy(logits.reshape(-1, logits.size(-1)), y.reshape(-1)).backward()
        optimizer.step()
        order.shuffle(calls)
        for call in calls:
            call(step, x, y, optimizer)
        optimizer.zero_grad(set_to_none=True)
        steps.mark()
    for _, arm in made:
        if arm.close is not None:
            arm.close()


def lightning_loop(arms: list[str], args: argparse.Namespace, steps: Steps, tmp: str) -> None:
    import lightning as L
    from lightning.pytorch.loggers import CSVLogger

    class Mark(L.Callback):
        def on_train_batch_end(self, *_: Any) -> None:
            steps.mark()

    m = model()
    m.flops_per_batch = flops_per_token() * args.batch * 64  # what ThroughputMonitor reads
    callbacks = [steps.track(name, *ARMS["lightning"][name](args, name)) for name in arms] + [
        Mark()
    ]
    L.Trainer(
        accelerator="cpu",
        devices=1,
        max_steps=args.steps + args.warmup,
        logger=CSVLogger(tmp, name="lightning"),
        log_every_n_steps=50,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=callbacks,
    ).fit(m, DataLoader(data(args.steps + args.warmup, args.batch), batch_size=args.batch))


def trainer_loop(arms: list[str], args: argparse.Namespace, steps: Steps, tmp: str) -> None:
    from transformers import Trainer, TrainerCallback, TrainingArguments

    class Mark(TrainerCallback):
        def on_step_end(self, *_: Any, **__: Any) -> None:
            steps.mark()

    class CausalLM(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.gpt = model()

        def forward(self, input_ids: torch.Tensor, labels: torch.Tensor) -> dict[str, Any]:
            logits = self.gpt(input_ids)
            loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), labels.reshape(-1))
            return {"loss": loss}

    callbacks = [steps.track(name, *ARMS["trainer"][name](args, name)) for name in arms]
    rows = [{"input_ids": x, "labels": y} for x, y in data(args.steps + args.warmup, args.batch)]
    training = TrainingArguments(
        output_dir=f"{tmp}/trainer",
        max_steps=args.steps + args.warmup,
        per_device_train_batch_size=args.batch,
        learning_rate=1e-3,
        use_cpu=True,
        report_to="none",
        save_strategy="no",
        logging_strategy="no",
        disable_tqdm=True,
    )
    callbacks.append(Mark())
    Trainer(model=CausalLM(), args=training, train_dataset=rows, callbacks=callbacks).train()


TRAIN = {"lightning": lightning_loop, "trainer": trainer_loop, "plain": plain_loop}


# Measuring and reporting. --------------------------------------------------------------------
Results = dict[str, dict[str, list[tuple[float, float, float, float]]]]
"""Per loop, per counter, one :meth:`HookClock.per_step` a repetition."""


def measure(args: argparse.Namespace, tmp: str) -> tuple[dict[str, list[float]], Results]:
    """Interleaved repetitions: per loop a bare training (its median step), then one with every
    counter, their order rotated each repetition."""
    import mlflow

    bare: dict[str, list[float]] = {loop: [] for loop in args.loops}
    results: Results = {loop: {arm: [] for arm in ARMS[loop]} for loop in args.loops}
    for rep in range(args.repeats):
        for loop in args.loops:
            steps = Steps()
            TRAIN[loop]([], args, steps, tmp)
            bare[loop].append(steps.step_seconds(args.warmup))
            names = list(ARMS[loop])
            names = names[rep % len(names) :] + names[: rep % len(names)]
            steps = Steps()
            with mlflow.start_run(run_name=f"bench-{loop}-{rep}"):
                TRAIN[loop](names, args, steps, tmp)
            for name, clock in steps.clocks.items():
                results[loop][name].append(clock.per_step(args.warmup))
    return bare, results


def net_cpu(arm: tuple[float, ...], timer: tuple[float, ...]) -> float:
    """Hooks' CPU per step less the timer's own cost: calls x the no-op hook's CPU per call."""
    return arm[0] - arm[3] * timer[0] / timer[3]


def report(loop: str, step_s: list[float], arms: dict[str, list[tuple[float, ...]]]) -> None:
    """Medians over repetitions; ratios to the reference paired within each training."""
    step = statistics.median(step_s)
    timer, reference = arms["timer"], arms["reference"]
    per_call = statistics.median(t[0] / t[3] for t in timer)
    print(
        f"{loop}: bare step {step * 1e3:.2f} ms; the timer costs {per_call * 1e6:.1f} us CPU a "
        "call (a no-op hook, subtracted below)"
    )
    ref_net = [net_cpu(r, t) for r, t in zip(reference, timer, strict=True)]
    for name in (n for n in arms if n != "timer"):
        runs = arms[name]
        net = [net_cpu(a, t) for a, t in zip(runs, timer, strict=True)]
        cpu, wall, worker, calls = (statistics.median(r[i] for r in runs) for i in range(4))
        label = LOOPS[loop] if name == "reference" else name
        line = (
            f"  {label:18s} {calls:3.1f} calls: CPU {statistics.median(net) * 1e6:5.1f} us "
            f"({100 * statistics.median(net) / step:4.2f} %) [timed {cpu * 1e6:5.1f}, wall "
            f"{wall * 1e6:5.1f}]"
        )
        if name != "reference":
            ratios = [a / r for a, r in zip(net, ref_net, strict=True)]
            with_worker = [(a + r[2]) / b for a, r, b in zip(net, runs, ref_net, strict=True)]
            each = " ".join(f"{r:.2f}" for r in ratios)
            line += (
                f" + worker CPU {worker * 1e6:5.1f} us | / reference "
                f"{statistics.median(ratios):4.2f} (each repetition {each}), with worker "
                f"{statistics.median(with_worker):4.2f}"
            )
        print(line)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=200, help="timed steps per training")
    p.add_argument("--warmup", type=int, default=10, help="untimed steps at the start")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--repeats", type=int, default=5, help="interleaved repetitions")
    p.add_argument("--loops", nargs="+", choices=list(LOOPS), default=list(LOOPS))
    p.add_argument("--tracking-uri", help="default: a SQLite store in a temporary folder")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    import logging

    import mlflow

    for name in ("lightning.pytorch", "transformers", "mlflow"):
        logging.getLogger(name).setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory(prefix="bench-loops-") as tmp:
        mlflow.set_tracking_uri(args.tracking_uri or f"sqlite:///{tmp}/bench.db")
        mlflow.set_experiment("bench-loops")
        print(
            f"tiny GPT n_layer=2 d_model=64 seq_len=64 batch {args.batch}, CPU, 1 torch thread; "
            f"{args.steps} timed steps per training, {args.repeats} repetitions; tracking "
            f"{mlflow.get_tracking_uri()}\nper optimizer step, over the bare loop's median "
            "step: the training thread's CPU time in the hooks (their wall time beside), and our "
            "MLflow worker thread's CPU"
        )
        bare, results = measure(args, tmp)
        for loop in args.loops:
            report(loop, bare[loop], results[loop])


if __name__ == "__main__":
    main()
