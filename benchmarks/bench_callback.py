"""Overhead of ScalingLawCallback on training step time.

A tiny byte-level GPT trains for the same number of steps with and without the callback
(default settings, logging to a real MLflow store), alternating the order every round, in one
process. A step is the interval between consecutive ``on_train_batch_end`` calls after a
warm-up, so it holds everything a step costs: data, forward, backward, optimizer, every callback.
Two clocks are read at each step boundary:

* wall-clock time, the number a user feels; on a shared machine it is noisy, so each fit gives
  its median step and the per-round ratios are summarised by their median;
* CPU time of the whole process (every thread: training, the callback's MLflow worker, torch's
  pool), which other processes on the machine disturb far less; summed over all timed steps.

The callback's one-off start-up work (parameter count, meta-device FLOP check on the first batch)
is reported apart from the steady state.

    .venv/bin/python benchmarks/bench_callback.py                 # CPU, sqlite store in a temp dir
    .venv/bin/python benchmarks/bench_callback.py --tracking-uri http://127.0.0.1:5000
    .venv/bin/python benchmarks/bench_callback.py --device cuda --no-mlflow

Prints the ratios (with / without) and the overhead in percent.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader, TensorDataset

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from examples.tiny_gpt import GPTConfig, TinyGPT  # noqa: E402
from lightning_callbacks import ScalingLawCallback  # noqa: E402


class StepTimer(L.Callback):
    """Wall-clock and process CPU time at each step boundary (CUDA synchronised there)."""

    def __init__(self) -> None:
        self.wall: list[float] = []
        self.cpu: list[float] = []
        self.started = 0.0

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.started = time.perf_counter()

    def on_train_batch_end(self, trainer: L.Trainer, *args: Any) -> None:
        if trainer.strategy.root_device.type == "cuda":
            torch.cuda.synchronize()
        self.wall.append(time.perf_counter())
        self.cpu.append(time.process_time())

    def step_times(self, warmup: int) -> list[float]:
        t = self.wall
        return [b - a for a, b in zip(t[warmup:-1], t[warmup + 1 :], strict=True)]

    def cpu_seconds(self, warmup: int) -> float:
        return self.cpu[-1] - self.cpu[warmup]


class TimedScalingLawCallback(ScalingLawCallback):
    """The callback, with the time spent in its per-batch hook and its MLflow worker recorded."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.hook_seconds: list[float] = []
        self.sink_cpu: list[float] = []  # the worker's CPU seconds so far, at each step's end
        self.sink_requests: list[int] = []

    def on_train_batch_end(self, *args: Any, **kwargs: Any) -> None:
        start = time.perf_counter()
        super().on_train_batch_end(*args, **kwargs)
        self.hook_seconds.append(time.perf_counter() - start)
        self.sink_cpu.append(self.sink.cpu_seconds if self.sink else 0.0)
        self.sink_requests.append(self.sink.requests if self.sink else 0)


def loader(steps: int, batch: int, seq_len: int) -> DataLoader:
    g = torch.Generator().manual_seed(0)
    data = torch.randint(0, 256, (steps * batch, seq_len + 1), generator=g)
    return DataLoader(TensorDataset(data[:, :-1], data[:, 1:]), batch_size=batch)


def fit_once(
    args: argparse.Namespace, with_callback: bool, uri: str | None
) -> tuple[StepTimer, TimedScalingLawCallback | None]:
    torch.manual_seed(0)
    cfg = GPTConfig(
        n_layer=args.n_layer, n_head=args.n_head, d_model=args.d_model, seq_len=args.seq_len
    )
    model = TinyGPT(cfg)
    timer = StepTimer()
    callbacks: list[L.Callback] = [timer]
    cb = TimedScalingLawCallback(family="bench") if with_callback else None
    if cb is not None:
        callbacks.append(cb)
    steps = args.warmup + args.steps + 1
    trainer = L.Trainer(
        accelerator=args.device,
        devices=1,
        precision=args.precision,
        max_steps=steps,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=callbacks,
    )
    data = loader(steps, args.batch, args.seq_len)
    if with_callback and uri is not None:
        import mlflow

        with mlflow.start_run(run_name="bench-with-callback"):
            trainer.fit(model, data)
    else:
        trainer.fit(model, data)
    return timer, cb


def main(argv: list[str] | None = None) -> float:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rounds", type=int, default=6)
    p.add_argument(
        "--steps",
        type=int,
        default=600,
        help="timed steps per fit (long enough for the "
        "callback's periodic logging and MLflow requests to recur, as in a real run)",
    )
    p.add_argument("--warmup", type=int, default=20, help="untimed steps at the start of a fit")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--seq-len", type=int, default=64)
    p.add_argument("--n-layer", type=int, default=2)
    p.add_argument("--n-head", type=int, default=2)
    p.add_argument("--d-model", type=int, default=64)
    p.add_argument("--device", default="cpu")
    p.add_argument("--precision", default="32-true")
    p.add_argument(
        "--threads", type=int, default=1, help="torch CPU threads (1: steadier on a shared CPU)"
    )
    p.add_argument("--tracking-uri", help="default: a SQLite store in a temporary folder")
    p.add_argument("--no-mlflow", action="store_true", help="no run: counting only")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)

    import logging

    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")

    with tempfile.TemporaryDirectory(prefix="bench-callback-") as tmp:
        uri = None
        if not args.no_mlflow:
            import mlflow

            uri = args.tracking_uri or f"sqlite:///{tmp}/bench.db"
            mlflow.set_tracking_uri(uri)
            mlflow.set_experiment("bench-callback")

        fit_once(args, True, uri)  # warm every code path once, untimed
        medians: dict[bool, list[float]] = {True: [], False: []}
        cpu: dict[bool, list[float]] = {True: [], False: []}
        first_step: dict[bool, list[float]] = {True: [], False: []}
        hook: list[float] = []
        sink_cpu: list[float] = []  # per fit, over the timed steps
        sink_requests: list[int] = []
        for r in range(args.rounds):
            order = (False, True) if r % 2 == 0 else (True, False)
            for flag in order:
                timer, cb = fit_once(args, flag, uri)
                medians[flag].append(statistics.median(timer.step_times(args.warmup)))
                cpu[flag].append(timer.cpu_seconds(args.warmup) / args.steps)
                first_step[flag].append(timer.wall[0] - timer.started)
                if cb is not None:  # steady state: the same steps as timed above
                    hook.extend(cb.hook_seconds[args.warmup + 1 :])
                    sink_cpu.append(cb.sink_cpu[-1] - cb.sink_cpu[args.warmup])
                    sink_requests.append(cb.sink_requests[-1] - cb.sink_requests[args.warmup])
            print(
                f"round {r + 1}/{args.rounds}: step without / with callback: wall (median) "
                f"{medians[False][-1] * 1e3:.3f} / {medians[True][-1] * 1e3:.3f} ms, "
                f"CPU {cpu[False][-1] * 1e3:.3f} / {cpu[True][-1] * 1e3:.3f} ms",
                flush=True,
            )

    wall_ratio = statistics.median(
        w / wo for w, wo in zip(medians[True], medians[False], strict=True)
    )
    cpu_ratio = sum(cpu[True]) / sum(cpu[False])
    step = statistics.median(medians[False])
    hook_mean = statistics.fmean(hook)
    startup = statistics.median(first_step[True]) - statistics.median(first_step[False])
    tracking = "none" if args.no_mlflow else (uri or "").split(":")[0]
    print(
        f"\nmodel: n_layer={args.n_layer} n_head={args.n_head} d_model={args.d_model} "
        f"seq_len={args.seq_len} batch={args.batch} on {args.device} ({args.precision}, "
        f"{torch.get_num_threads()} torch CPU threads); tracking: {tracking}; "
        f"{args.rounds} rounds x {args.steps} timed steps per arm"
    )
    print(f"step without callback: wall median {step * 1e3:.3f} ms")
    print(
        f"wall-clock ratio (with / without), median over rounds: {wall_ratio:.4f}"
        f"  -> overhead {100 * (wall_ratio - 1):+.2f} %"
    )
    print(
        f"process CPU-time ratio (with / without), all steps:   {cpu_ratio:.4f}"
        f"  -> overhead {100 * (cpu_ratio - 1):+.2f} %"
    )
    print(
        f"time inside the callback's per-batch hook: mean {hook_mean * 1e6:.1f} us/step, "
        f"median {statistics.median(hook) * 1e6:.1f} us, max {max(hook) * 1e3:.2f} ms "
        f"-> {100 * hook_mean / step:.3f} % of a step"
    )
    spread = sorted(w / wo for w, wo in zip(medians[True], medians[False], strict=True))
    print(f"  per-round wall ratios: min {spread[0]:.4f}, max {spread[-1]:.4f} (the noise)")
    if sink_cpu:
        per_step = statistics.fmean(sink_cpu) / args.steps
        print(
            f"MLflow worker thread over the timed steps: {statistics.fmean(sink_requests):.1f} "
            f"requests, {statistics.fmean(sink_cpu) * 1e3:.1f} ms CPU per {args.steps} steps "
            f"-> {per_step * 1e6:.1f} us/step"
        )
    else:
        per_step = 0.0
    direct = (hook_mean + per_step) / step
    print(f"direct estimate (hook + worker CPU per step, over the step time): {100 * direct:.2f} %")
    print(f"one-off start-up (first step, meta-device FLOP check): {startup * 1e3:+.1f} ms")
    return cpu_ratio


if __name__ == "__main__":
    main()
