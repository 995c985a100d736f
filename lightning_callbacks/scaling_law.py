"""``ScalingLawCallback``: every Lightning run logs N, D and C in the names of the data contract.

Per training batch (every rank) the callback counts tokens and adds them, with the batch's
FLOPs, to pending sums that stay on the device. On logging steps (every ``log_every_n_steps``
optimizer steps or about every ``log_every_seconds``, and at the end) every rank takes part in
one all-reduce of those sums; every rank adds them to its copy of the run totals, and rank zero
hands the metrics to an asynchronous MLflow sink. Nothing else crosses from device to host, and
nothing the tracking server does can raise into training.

Checkpoints: :meth:`ScalingLawCallback.state_dict` runs no collective (a checkpoint written by
rank zero alone must not hang). It saves the totals of the last synchronisation, which every rank
holds. Besides the logging steps, the callback also synchronises (all ranks, no logging) where
Lightning writes checkpoints with every rank taking part: at the end of a training epoch, before
validation, and on the steps of a ``ModelCheckpoint(every_n_train_steps=...)``. A checkpoint
written elsewhere holds the totals of an earlier step; a resume from it says how many steps the
totals miss.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback

from mlflow_scaling.tracking import schema

from .counting import (
    PARAMS_CONVENTION,
    Count,
    ParamCounts,
    PendingCounts,
    TokenCounter,
    TokenCounts,
    as_token_counts,
    count_batch,
    count_parameters,
    sequence_length,
)
from .errors import ScalingLawWarning
from .flops import (
    ANALYTIC_FORMULA,
    FlopsPerToken,
    ForwardFn,
    TransformerShape,
    analytic_flops_per_token,
    format_flops,
    infer_transformer_shape,
    measure_training_flops,
    relative_difference,
)
from .mlflow_sink import MlflowSink, RunTarget, find_run

ParamsForLaw = Literal["non_embedding", "total"]

_PRECISION_DTYPES = {
    "bf16": torch.bfloat16,
    "16": torch.float16,
    "32": torch.float32,
    "64": torch.float64,
}


@dataclass
class Totals:
    """Run totals over all ranks since the start of training (resumes included)."""

    tokens_total: int = 0
    tokens: int = 0
    tokens_loss: int = 0
    flops: float = 0.0
    flops_hardware: float = 0.0
    """FLOPs per token over every processed position, padding included (``flops``: non-padding
    tokens only, the law's C)."""


class ScalingLawCallback(Callback):
    """Log parameters, tokens and training FLOPs of a run for scaling-law fitting.

    Only ``family`` is required; see the README section "The Lightning callback" for every
    argument. The run is the one of the Trainer's ``MLFlowLogger``, else the active MLflow run;
    with neither, the callback still counts (its totals are in :attr:`totals`) and says once
    that nothing is logged.
    """

    def __init__(
        self,
        family: str,
        *,
        loss_metric: str = schema.DEFAULT_LOSS_METRIC,
        params_for_law: ParamsForLaw = "non_embedding",
        log_every_n_steps: int | None = 50,
        log_every_seconds: float | None = 300.0,
        token_counter: TokenCounter | None = None,
        ignore_index: int = -100,
        flops_per_token: float | None = None,
        transformer_shape: TransformerShape | None = None,
        seq_len: int | None = None,
        flops_forward_fn: ForwardFn | None = None,
        cross_check: bool = True,
        flops_tolerance: float = 0.05,
        peak_flops_per_device: float | None = None,
        retry_interval_s: float = 10.0,
        flush_timeout_s: float = 30.0,
    ) -> None:
        super().__init__()
        if not isinstance(family, str) or not family.strip():
            raise ValueError(f"family must be a non-empty string, got {family!r}")
        if not isinstance(loss_metric, str) or not loss_metric.strip():
            raise ValueError(f"loss_metric must be a non-empty string, got {loss_metric!r}")
        if params_for_law not in ("non_embedding", "total"):
            raise ValueError(
                f"params_for_law must be 'non_embedding' or 'total', got {params_for_law!r}"
            )
        _check_positive("log_every_n_steps", log_every_n_steps, integer=True, optional=True)
        _check_positive("log_every_seconds", log_every_seconds, optional=True)
        _check_positive("flops_per_token", flops_per_token, optional=True)
        _check_positive("seq_len", seq_len, integer=True, optional=True)
        _check_positive("peak_flops_per_device", peak_flops_per_device, optional=True)
        _check_positive("retry_interval_s", retry_interval_s)
        _check_non_negative("flops_tolerance", flops_tolerance)
        _check_non_negative("flush_timeout_s", flush_timeout_s)
        if token_counter is not None and not callable(token_counter):
            raise TypeError(f"token_counter must be callable, got {token_counter!r}")
        if flops_forward_fn is not None and not callable(flops_forward_fn):
            raise TypeError(f"flops_forward_fn must be callable, got {flops_forward_fn!r}")
        if transformer_shape is not None and not isinstance(transformer_shape, TransformerShape):
            raise TypeError(
                f"transformer_shape must be a TransformerShape, got {transformer_shape!r}"
            )

        self.family = family
        self.loss_metric = loss_metric
        self.params_for_law = params_for_law
        self.log_every_n_steps = log_every_n_steps
        self.log_every_seconds = log_every_seconds
        self.token_counter = token_counter
        self.ignore_index = ignore_index
        self.flops_per_token = flops_per_token
        self.transformer_shape = transformer_shape
        self.seq_len = seq_len
        self.flops_forward_fn = flops_forward_fn
        self.cross_check = cross_check
        self.flops_tolerance = flops_tolerance
        self.peak_flops_per_device = peak_flops_per_device
        self.retry_interval_s = retry_interval_s
        self.flush_timeout_s = flush_timeout_s

        self.totals = Totals()
        self._logged_totals: Totals | None = None  # as last written to the run
        self.param_counts: ParamCounts | None = None
        self.flops_method: str | None = None
        self.last_metrics: dict[str, float] = {}
        """The metrics of the last logging step, as computed on rank zero."""
        self.sink: MlflowSink | None = None
        self.target: RunTarget | None = None

        self._flops: FlopsPerToken | None = None
        self._pending = PendingCounts()
        self._training = False
        self._warned_no_run = False
        self._next_log_step = 0
        self._last_log_step = -1
        self._last_log_time = 0.0
        self._last_log_tokens = 0
        self._last_log_flops = 0.0
        self._synced_step = 0  # the global step :attr:`totals` are exact for (all ranks)
        self._resumed_from_step: int | None = None  # the step of the totals in a loaded state
        self._paused_since: float | None = None
        self._paused_total = 0.0
        self._peak_flops: float | None = None

    # Lightning plumbing ---------------------------------------------------------------------
    @property
    def state_key(self) -> str:
        return self._generate_state_key(family=self.family)

    def state_dict(self) -> dict[str, Any]:
        """The run totals as of the last synchronisation, and its step. No collective: any rank
        may call this alone (module docstring)."""
        trainer = getattr(self, "_trainer", None)
        if self._training and trainer is not None and trainer.world_size == 1:
            self._synchronize(trainer, plan=False)  # one process: a host copy, no collective
        return {"version": 2, "step": self._synced_step, **asdict(self.totals)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        flops = float(state_dict.get("flops", 0.0))
        self.totals = Totals(
            tokens_total=int(state_dict.get("tokens_total", 0)),
            tokens=int(state_dict.get("tokens", 0)),
            tokens_loss=int(state_dict.get("tokens_loss", 0)),
            flops=flops,
            # version 1 did not count padding: from the resume on, it is counted
            flops_hardware=float(state_dict.get("flops_hardware", flops)),
        )
        step = state_dict.get("step")  # version 1: synchronised at the checkpoint's own step
        self._resumed_from_step = int(step) if step is not None else None

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self._trainer = trainer

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._trainer = trainer
        self._training = True
        self._pending = PendingCounts()
        self._flops = None
        self.param_counts = count_parameters(pl_module)
        start = trainer.global_step
        resumed_from, self._resumed_from_step = self._resumed_from_step, None
        if resumed_from is not None and resumed_from < start and trainer.is_global_zero:
            warnings.warn(
                f"the checkpoint resumed at step {start} holds the scaling-law totals of step "
                f"{resumed_from} (the last synchronisation of all ranks before it was written): "
                f"the tokens and FLOPs of the {start - resumed_from} steps in between are not in "
                "scaling.tokens and scaling.flops. Checkpoints written by ModelCheckpoint's "
                "every_n_train_steps, at epoch ends or at validation keep them exact",
                ScalingLawWarning,
                stacklevel=2,
            )
        self._synced_step = start
        self._last_log_step = start
        self._logged_totals = None
        self._last_log_time = time.monotonic()
        self._paused_total = 0.0
        self._paused_since = None
        self._last_log_tokens = self.totals.tokens
        self._last_log_flops = self.totals.flops_hardware
        if self.log_every_seconds is not None:
            self._next_log_step = start + 1  # an early point, and a first measure of step time
        elif self.log_every_n_steps is not None:
            self._next_log_step = _next_multiple(start, self.log_every_n_steps)
        else:
            self._next_log_step = math.inf  # type: ignore[assignment]
        self._peak_flops = self._find_peak_flops(trainer)
        if trainer.is_global_zero:
            self._open_sink(trainer)
            counts = self.param_counts
            law_params = counts.non_embedding
            if self.params_for_law == "total":
                law_params = counts.total
            self._emit(
                {
                    schema.METRIC_PARAMS_TOTAL: counts.total,
                    schema.METRIC_PARAMS_NON_EMBEDDING: counts.non_embedding,
                    schema.METRIC_PARAMS: law_params,
                },
                step=start,
                params={
                    schema.PARAM_PARAMS_CONVENTION: (
                        f"scaling.params = {self.params_for_law}; {PARAMS_CONVENTION}"
                    )
                },
                tags={schema.TAG_FAMILY: self.family, schema.TAG_LOSS_METRIC: self.loss_metric},
            )

    def on_train_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        if self.token_counter is None:
            counts, seq_len = count_batch(batch, self.ignore_index)
        else:
            counts = as_token_counts(self.token_counter(batch), "token_counter")
            seq_len = None
        if self._flops is None:
            self._flops = self._plan_flops(trainer, pl_module, batch, counts)
        self._pending.add(counts, self._flops.per_token(batch, counts.total, seq_len))
        step = trainer.global_step
        if step >= self._next_log_step and step > self._last_log_step:
            self._log_step(trainer, step)
        elif step > self._synced_step and _checkpoint_due(trainer, step):
            self._synchronize(trainer, plan=False)  # the checkpoint then holds exact totals

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._training:
            self._synchronize(trainer, plan=False)  # for a checkpoint at the epoch's end

    def on_validation_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._training:
            self._synchronize(trainer, plan=False)  # for a checkpoint after validation
        if self._training and self._paused_since is None:
            self._paused_since = time.monotonic()  # validation time is not training throughput

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._paused_since is not None:
            self._paused_total += time.monotonic() - self._paused_since
            self._paused_since = None

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not self._training:
            return
        self._log_step(trainer, trainer.global_step, final=True)
        self._training = False
        self._close_sink()

    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        # No collective here: other ranks may not get this far. Deliver what rank zero has,
        # waiting less than at a normal end: someone may be pressing Ctrl+C.
        self._training = False
        self._close_sink(min(self.flush_timeout_s, 5.0))

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self._training = False
        self._close_sink()

    # FLOPs --------------------------------------------------------------------------------
    def _plan_flops(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, counts: TokenCounts
    ) -> FlopsPerToken:
        """Decide, on the first batch, how FLOPs per token are obtained; cross-check once."""
        assert self.param_counts is not None
        params = self.param_counts
        rank_zero = trainer.is_global_zero
        forward_fn = self.flops_forward_fn
        measured_fpt: float | None = None
        measure_error: str | None = None

        def measure() -> float | None:
            nonlocal measure_error
            if params.sharding is not None:
                # The sharded model's forward runs the strategy's collectives (all-gathers);
                # on the meta device, and on one rank, that would fail or hang.
                measure_error = f"not attempted: the parameters are sharded ({params.sharding})"
                return None
            try:
                flops = measure_training_flops(pl_module, batch, forward_fn)
            except Exception as err:  # the model may not run on the meta device
                measure_error = f"{type(err).__name__}: {err}"
                return None
            return flops / max(_host_int(counts.total), 1)

        shape = self.transformer_shape or infer_transformer_shape(pl_module)
        seq_len = sequence_length(batch) or self.seq_len
        cross_check = self.cross_check and params.sharding is None
        checked = ""
        if self.cross_check:
            checked = (
                "; cross-checked on the meta device"
                if cross_check
                else f"; not cross-checked: the parameters are sharded ({params.sharding})"
            )
        if self.flops_per_token is not None:
            plan = FlopsPerToken(
                "user",
                f"user: flops_per_token={self.flops_per_token:g} given to ScalingLawCallback"
                + checked,
                constant=float(self.flops_per_token),
            )
            main = float(self.flops_per_token)
        elif shape is not None and seq_len is not None:
            plan = FlopsPerToken(
                "analytic",
                f"analytic: {ANALYTIC_FORMULA} per token, forward+backward, attention not "
                f"halved for causal masks; n_layer={shape.n_layer}, n_head={shape.n_head}, "
                f"head_dim={shape.head_dim} (from {shape.source})" + checked,
                params=params,
                shape=shape,
                default_seq_len=self.seq_len,
            )
            main = analytic_flops_per_token(params, shape, seq_len)
        else:
            measured_fpt = measure()
            if measured_fpt is not None:
                plan = FlopsPerToken(
                    "measured",
                    "measured: torch FlopCounterMode on the meta device, one forward+backward "
                    "per batch shape, divided by the batch's positions (padding included), "
                    "times its non-padding tokens (scaling.flops) or all its positions "
                    "(scaling.flops_hardware)",
                    model=pl_module,
                    forward_fn=forward_fn,
                )
                plan.seed(batch, measured_fpt)
                main = measured_fpt
            else:
                approx = 6.0 * (params.non_embedding + params.tied_head)
                plan = FlopsPerToken(
                    "approximate",
                    "approximate: 6*(N_non_embedding + tied_head) per token; no attention term "
                    f"(not a recognised transformer; meta-device count failed: {measure_error})",
                    constant=approx,
                )
                main = approx
                if rank_zero:
                    warnings.warn(
                        f"could not measure the FLOPs of {type(pl_module).__name__} on the "
                        f"meta device ({measure_error}); scaling.flops uses 6*N = "
                        f"{format_flops(approx)} per token. Pass flops_per_token=... or "
                        "flops_forward_fn=... to ScalingLawCallback",
                        ScalingLawWarning,
                        stacklevel=2,
                    )

        if rank_zero and cross_check and plan.kind in ("analytic", "user"):
            measured_fpt = measure()
            if measured_fpt is None:
                warnings.warn(
                    f"the meta-device FLOP count of {type(pl_module).__name__} failed "
                    f"({measure_error}); keeping the {plan.kind} count "
                    f"{format_flops(main)} FLOPs/token unchecked",
                    ScalingLawWarning,
                    stacklevel=2,
                )
            else:
                diff = relative_difference(main, measured_fpt)
                if diff > self.flops_tolerance:
                    warnings.warn(
                        f"{plan.kind} FLOPs per token {format_flops(main)} and the meta-device "
                        f"measured {format_flops(measured_fpt)} differ by {diff:.1%} (tolerance "
                        f"{self.flops_tolerance:.1%}); logging the {plan.kind} count. Pass "
                        "flops_per_token=... or transformer_shape=... if the model was misread",
                        ScalingLawWarning,
                        stacklevel=2,
                    )
        self.flops_method = plan.method
        if rank_zero:
            metrics = {schema.METRIC_FLOPS_PER_TOKEN: main}
            if measured_fpt is not None:
                metrics[schema.METRIC_FLOPS_PER_TOKEN_MEASURED] = measured_fpt
            self._emit(
                metrics,
                step=trainer.global_step,
                params={schema.PARAM_FLOPS_METHOD: plan.method},
            )
        return plan

    # Synchronising and logging --------------------------------------------------------------
    def _synchronize(self, trainer: pl.Trainer, plan: bool) -> int | None:
        """Sum pending counts over ranks into :attr:`totals` (one all-reduce; every rank calls
        this at the same points and ends with the same totals).

        With ``plan``, rank zero also proposes the next logging interval in the same vector so
        that every rank agrees on it; returns that interval."""
        values = self._pending.drain()
        values.append(
            float(self._propose_interval(trainer.global_step))
            if plan and trainer.is_global_zero
            else 0.0
        )
        if trainer.world_size > 1:
            values = _all_reduce_sum(trainer, values)
        total, non_padding, loss, flops, flops_hardware, interval = values
        self.totals.tokens_total += round(total)
        self.totals.tokens += round(non_padding)
        self.totals.tokens_loss += round(loss)
        self.totals.flops += flops
        self.totals.flops_hardware += flops_hardware
        self._synced_step = trainer.global_step
        return max(1, round(interval)) if plan else None

    def _propose_interval(self, step: int) -> int:
        interval = self.log_every_n_steps or 0
        if self.log_every_seconds is not None:
            steps = step - self._last_log_step
            elapsed = self._active_seconds(time.monotonic())
            by_time = (
                max(1, math.floor(self.log_every_seconds * steps / elapsed))
                if steps > 0 and elapsed > 0
                else 1
            )
            interval = min(interval, by_time) if interval else by_time
        return interval

    def _active_seconds(self, now: float) -> float:
        paused = self._paused_total
        if self._paused_since is not None:
            paused += now - self._paused_since
        return max(now - self._last_log_time - paused, 0.0)

    def _log_step(self, trainer: pl.Trainer, step: int, final: bool = False) -> None:
        interval = self._synchronize(trainer, plan=not final)
        if final and step == self._last_log_step and self.totals == self._logged_totals:
            return  # the last logging step already wrote these totals at this step
        now = time.monotonic()
        if interval is not None:
            if self.log_every_n_steps is None and self.log_every_seconds is None:
                self._next_log_step = math.inf  # type: ignore[assignment]
            else:
                self._next_log_step = _next_multiple(step, interval)
        totals = self.totals
        metrics: dict[str, float] = {
            schema.METRIC_TOKENS: totals.tokens,
            schema.METRIC_TOKENS_TOTAL: totals.tokens_total,
            schema.METRIC_TOKENS_LOSS: totals.tokens_loss,
            schema.METRIC_FLOPS: totals.flops,
            schema.METRIC_FLOPS_HARDWARE: totals.flops_hardware,
        }
        elapsed = self._active_seconds(now)
        if step > self._last_log_step and elapsed > 0:
            # throughput and MFU: the compute spent, padding included
            flops_per_s = (totals.flops_hardware - self._last_log_flops) / elapsed
            metrics[schema.METRIC_TOKENS_PER_SECOND] = (
                totals.tokens - self._last_log_tokens
            ) / elapsed
            metrics[schema.METRIC_FLOPS_PER_SECOND] = flops_per_s
            if self._peak_flops:
                metrics[schema.METRIC_MFU] = flops_per_s / (self._peak_flops * trainer.world_size)
        self._last_log_step = step
        self._last_log_time = now
        self._paused_total = 0.0
        if self._paused_since is not None:
            self._paused_since = now
        self._last_log_tokens = totals.tokens
        self._last_log_flops = totals.flops_hardware
        self._logged_totals = replace(totals)
        if trainer.is_global_zero:
            self._emit(metrics, step=step)

    def _emit(
        self,
        metrics: Mapping[str, float],
        step: int,
        params: Mapping[str, str] | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> None:
        self.last_metrics.update(metrics)
        if self.sink is None:
            return
        if tags:
            self.sink.set_tags(tags)
        if params:
            self.sink.log_params(params)
        self.sink.log_metrics(metrics, step)

    def _open_sink(self, trainer: pl.Trainer) -> None:
        if self.sink is not None:
            return
        try:
            self.target = find_run(trainer)
        except Exception as err:  # a tracking problem must not stop training
            self.target = None
            warnings.warn(
                f"ScalingLawCallback could not find its MLflow run ({type(err).__name__}: "
                f"{err}); it keeps counting but logs nothing",
                ScalingLawWarning,
                stacklevel=2,
            )
            self._warned_no_run = True
            return
        if self.target is None:
            if not self._warned_no_run:
                self._warned_no_run = True
                warnings.warn(
                    "ScalingLawCallback found no MLflow run: the Trainer has no MLFlowLogger and "
                    "no MLflow run is active (mlflow.start_run). It counts tokens and FLOPs but "
                    "logs nothing; it creates no run of its own",
                    ScalingLawWarning,
                    stacklevel=2,
                )
            return
        self.sink = MlflowSink(self.target, retry_interval_s=self.retry_interval_s)

    def _close_sink(self, timeout_s: float | None = None) -> None:
        sink, self.sink = self.sink, None
        if sink is None:
            return
        timeout_s = self.flush_timeout_s if timeout_s is None else timeout_s
        if not sink.close(timeout_s):
            warnings.warn(
                f"{sink.pending} scaling-law values could not be delivered to run "
                f"{sink.target.run_id} at {sink.target.tracking_uri} within "
                f"{timeout_s:g} s ({sink.describe_failure()}); the totals of this "
                f"run were tokens={self.totals.tokens}, flops={self.totals.flops:.6g}",
                ScalingLawWarning,
                stacklevel=2,
            )

    def _find_peak_flops(self, trainer: pl.Trainer) -> float | None:
        if self.peak_flops_per_device is not None:
            return float(self.peak_flops_per_device)
        device = trainer.strategy.root_device
        if device.type == "cpu":
            return None
        precision = str(trainer.precision)
        dtype = next(
            (dt for prefix, dt in _PRECISION_DTYPES.items() if precision.startswith(prefix)),
            torch.float32,
        )
        try:
            from lightning.fabric.utilities.throughput import get_available_flops

            peak = get_available_flops(device, dtype)
        except Exception:
            return None
        return float(peak) if peak else None


def _all_reduce_sum(trainer: pl.Trainer, values: list[float]) -> list[float]:
    device = trainer.strategy.root_device
    vector = torch.tensor(values, dtype=torch.float64, device=device)
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.all_reduce(vector, op=torch.distributed.ReduceOp.SUM)
    else:  # strategies without torch.distributed (XLA, say)
        vector = trainer.strategy.reduce(vector, reduce_op="sum")
    return [float(v) for v in vector.tolist()]


def _checkpoint_due(trainer: pl.Trainer, step: int) -> bool:
    """Whether a ``ModelCheckpoint(every_n_train_steps=n)`` of ``trainer`` saves at ``step``.

    Every rank computes the same answer (same callbacks, same step). Lightning keeps ``n`` in
    the private ``_every_n_train_steps``; if that ever changes this returns False and such
    checkpoints hold the totals of the last logging step (a resume says so)."""
    for callback in trainer.checkpoint_callbacks:
        every = getattr(callback, "_every_n_train_steps", 0)
        if isinstance(every, int) and every > 0 and step % every == 0:
            return True
    return False


def _next_multiple(step: int, interval: int) -> int:
    return (step // interval + 1) * interval


def _host_int(count: Count) -> int:
    return int(count.item()) if isinstance(count, torch.Tensor) else int(count)


def _check_positive(name: str, value: Any, integer: bool = False, optional: bool = False) -> None:
    if value is None and optional:
        return
    kind = int if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kind) or not value > 0:
        what = "a positive integer" if integer else "a positive number"
        raise ValueError(f"{name} must be {what}{' or None' if optional else ''}, got {value!r}")


def _check_non_negative(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ValueError(f"{name} must be a number >= 0, got {value!r}")
