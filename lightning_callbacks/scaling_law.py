"""``ScalingLawCallback``: Lightning hooks over the counting core (``mlflow_scaling.integrations``).

Per training batch (every rank) the core keeps the batch's mask and labels; on logging steps it
counts them on the device, every rank takes part in one all-reduce and rank zero logs through an
asynchronous MLflow sink (see :mod:`mlflow_scaling.integrations.core` and
:mod:`mlflow_scaling.integrations.deferred`).

Checkpoints: :meth:`ScalingLawCallback.state_dict` runs no collective (a checkpoint written by
rank zero alone must not hang). It saves the totals of the last synchronisation, which every rank
holds. Besides the logging steps, the callback also synchronises (all ranks, no logging) where
Lightning writes checkpoints with every rank taking part: at the end of a training epoch, before
validation, and on the steps of a ``ModelCheckpoint(every_n_train_steps=...)``. A checkpoint
written elsewhere holds the totals of an earlier step; a resume from it says how many steps the
totals miss.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback

from mlflow_scaling.integrations.core import CoreViews, ScalingCore, Totals
from mlflow_scaling.integrations.counting import ParamCounts
from mlflow_scaling.integrations.mlflow_sink import MlflowSink, RunTarget, active_run_target
from mlflow_scaling.integrations.peak_flops import peak_flops_per_device
from mlflow_scaling.integrations.settings import CountingSettings
from mlflow_scaling.integrations.unique_tokens import loader_dataset

from .schedule import schedule_params

__all__ = ["ScalingLawCallback", "Totals"]

_PRECISION_DTYPES = {
    "bf16": torch.bfloat16,
    "16": torch.float16,
    "32": torch.float32,
    "64": torch.float64,
}
_NO_RUN = (
    "the Trainer has no MLFlowLogger and no MLflow run is active (mlflow.start_run); it creates "
    "no run of its own"
)


class ScalingLawCallback(CoreViews, Callback):
    """Log parameters, tokens and training FLOPs of a run for scaling-law fitting.

    Only ``family`` is required; the options are those of
    :class:`~mlflow_scaling.integrations.settings.CountingSettings` (docs/reference.md). The run
    is the one of the Trainer's ``MLFlowLogger``, else the active MLflow run; with neither, the
    callback still counts (its totals are in :attr:`totals`) and says once that nothing is
    logged. ``unique_tokens=`` (else an exact training dataset, see
    :mod:`mlflow_scaling.integrations.unique_tokens`) adds ``scaling.unique_tokens`` and
    ``scaling.epochs``.
    """

    def __init__(self, family: str, **options: Any) -> None:
        super().__init__()
        self.settings = CountingSettings(family=family, **options)
        self.family = family
        self.core = ScalingCore(self.settings, "ScalingLawCallback")
        self._checkpoint_due: Callable[[int], bool] | None = None

    # What the core knows ----------------------------------------------------------------------
    @property
    def param_counts(self) -> ParamCounts | None:
        return self.core.param_counts

    @property
    def flops_method(self) -> str | None:
        return self.core.flops_method

    @property
    def sink(self) -> MlflowSink | None:
        return self.core.sink

    @property
    def target(self) -> RunTarget | None:
        return self.core.target

    # Lightning plumbing ---------------------------------------------------------------------
    @property
    def state_key(self) -> str:
        return self._generate_state_key(family=self.family)

    def state_dict(self) -> dict[str, Any]:
        """The run totals as of the last synchronisation, and its step. No collective: any rank
        may call this alone (module docstring)."""
        trainer = getattr(self, "_trainer", None)
        if self.core.active and trainer is not None and trainer.world_size == 1:
            self.core.synchronize(trainer.global_step, plan=False)  # a host copy, no collective
        return self.core.state_dict()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.core.load_state_dict(state_dict)

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self._trainer = trainer

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._trainer = trainer
        self._checkpoint_due = checkpoint_schedule(trainer)
        self.core.start(
            pl_module,
            trainer.global_step,
            LightningRanks(trainer),
            lambda: find_run(trainer),
            peak_flops=_peak_flops(trainer),
            no_run_message=_NO_RUN,
            dataset=loader_dataset(trainer.train_dataloader),
        )
        if self.core.sink is not None:  # rank zero with a run: what the schedule states
            self.core.sink.log_params(schedule_params(trainer))

    def on_before_optimizer_step(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, optimizer: Any
    ) -> None:
        self.core.note_learning_rate(optimizer)

    def on_train_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        core = self.core
        core.add_batch(batch)
        core.after_step(trainer.global_step, self._checkpoint_due)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.core.active:
            self.core.synchronize(trainer.global_step, plan=False)  # for an epoch-end checkpoint

    def on_validation_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.core.active:
            self.core.synchronize(trainer.global_step, plan=False)  # for a checkpoint after it
        self.core.pause()

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.core.resume()

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.core.finish(trainer.global_step)

    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        self.core.abort()

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self.core.active = False
        self.core.close_sink()


class LightningRanks:
    """The ranks of a Lightning Trainer, reduced through its strategy when it has no
    ``torch.distributed`` (XLA, say)."""

    def __init__(self, trainer: pl.Trainer) -> None:
        self.trainer = trainer

    @property
    def world_size(self) -> int:
        return self.trainer.world_size

    @property
    def is_rank_zero(self) -> bool:
        return self.trainer.is_global_zero

    def all_reduce_sum(self, values: list[float]) -> list[float]:
        strategy = self.trainer.strategy
        vector = torch.tensor(values, dtype=torch.float64, device=strategy.root_device)
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.all_reduce(vector, op=torch.distributed.ReduceOp.SUM)
        else:
            vector = strategy.reduce(vector, reduce_op="sum")
        return [float(v) for v in vector.tolist()]


def find_run(trainer: pl.Trainer) -> RunTarget | None:
    """The run of Lightning's ``MLFlowLogger`` in ``trainer.loggers``, else the active MLflow run
    (``mlflow.start_run``), else ``None``. Call it on rank zero only."""
    from lightning.pytorch.loggers import MLFlowLogger

    for logger in trainer.loggers:
        if isinstance(logger, MLFlowLogger):
            run_id = logger.run_id
            client = logger.experiment
            if run_id is not None:
                return RunTarget(str(client.tracking_uri), run_id, "MLFlowLogger")
    return active_run_target()


def _peak_flops(trainer: pl.Trainer) -> float | None:
    precision = str(trainer.precision)
    dtype = next(
        (dt for prefix, dt in _PRECISION_DTYPES.items() if precision.startswith(prefix)),
        torch.float32,
    )
    return peak_flops_per_device(trainer.strategy.root_device, dtype)


def checkpoint_schedule(trainer: pl.Trainer) -> Callable[[int], bool] | None:
    """Whether a ``ModelCheckpoint(every_n_train_steps=n)`` of ``trainer`` saves at a step, as a
    function of the step (``None`` when none saves by steps); read once, at train start.

    Every rank computes the same answer (same callbacks, same step). Lightning keeps ``n`` in
    the private ``_every_n_train_steps``; if that ever changes no step is due and such
    checkpoints hold the totals of the last logging step (a resume says so)."""
    every = [getattr(cb, "_every_n_train_steps", 0) for cb in trainer.checkpoint_callbacks]
    intervals = tuple(n for n in every if isinstance(n, int) and n > 0)
    if not intervals:
        return None
    return lambda step: any(step % n == 0 for n in intervals)
