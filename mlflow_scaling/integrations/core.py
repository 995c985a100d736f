"""The counting core every training loop drives: N, D and C in the names of the data contract.

A loop's adapter (Lightning callback, ``Trainer`` callback, plain PyTorch counter) calls:

* :meth:`ScalingCore.start` once, with the model, the step it starts at and its ranks;
* :meth:`ScalingCore.add_batch` (or :meth:`ScalingCore.add_tokens`) for every micro-batch on
  every rank: its mask and labels are kept (:mod:`~mlflow_scaling.integrations.deferred`) and
  counted, with the batch's FLOPs, into pending sums that stay on the device at the next
  synchronisation (or at once, where keeping is not safe);
* :meth:`ScalingCore.note_learning_rate` once per optimizer step (host numbers only);
* :meth:`ScalingCore.after_step` after each optimizer step: on logging steps (every
  ``log_every_n_steps`` optimizer steps or about every ``log_every_seconds``) every rank takes
  part in one all-reduce of the pending sums, and rank zero hands the metrics to an asynchronous
  MLflow sink;
* :meth:`ScalingCore.finish` at the end (one last synchronisation and log), or
  :meth:`ScalingCore.abort` on an error (no collective, a short flush).

Nothing else crosses from device to host between logging steps, and nothing the tracking server
does can raise into training.

Batch and learning rate (the hyperparameter laws' axes):

    scaling.batch_tokens = scaling.tokens / optimizer steps
                         = non-padding tokens of one optimizer step, all micro-batches (gradient
                           accumulation) of all ranks, averaged over the run
    scaling.lr_peak      = max over optimizer steps and parameter groups of the group's ``lr``
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import asdict, replace
from typing import Any

from torch import Tensor, nn

from mlflow_scaling.tracking import schema

from .counting import (
    PARAMS_CONVENTION,
    Count,
    ParamCounts,
    PendingCounts,
    TokenCounts,
    Totals,
    as_batch,
    as_learning_rate,
    as_token_counts,
    count_parameters,
    count_tensors,
    locate,
    no_inputs,
)
from .deferred import DeferredCounts
from .errors import ScalingLawWarning
from .flops import FlopsPerToken
from .flops_plan import host_int, plan_flops
from .mlflow_sink import MlflowSink, RunTarget
from .ranks import Ranks, TorchRanks
from .settings import CountingSettings
from .unique_tokens import UniqueTokens, resolve_unique_tokens


class ScalingCore:
    """Counting state of one training run, shared by every loop's adapter (module docstring).

    ``owner`` names the object the user configured (``ScalingLawCallback``, ...) in messages."""

    def __init__(self, settings: CountingSettings, owner: str) -> None:
        self.settings = settings
        self.owner = owner
        self.totals = Totals()
        self.lr_peak: float | None = None
        self.param_counts: ParamCounts | None = None
        self.flops_method: str | None = None
        self.unique: UniqueTokens | None = None  # U and its source (unique_tokens.py)
        self.last_metrics: dict[str, float] = {}
        """The metrics of the last logging step, as computed on rank zero."""
        self.sink: MlflowSink | None = None
        self.target: RunTarget | None = None
        self.closed_sink_cpu_seconds = 0.0
        """CPU time the MLflow worker threads of closed sinks spent delivering."""
        self.active = False
        self.ranks: Ranks = TorchRanks()
        self.synced_step = 0  # the step :attr:`totals` are exact for (all ranks)
        self.resumed_from_step: int | None = None  # the step of the totals in a loaded state
        self._model: nn.Module | None = None
        self._flops: FlopsPerToken | None = None
        self._pending = PendingCounts()
        self.deferred = DeferredCounts(settings.ignore_index, self._pending, self._flops_of)
        """Micro-batches kept until the next synchronisation (the per-step path stays short)."""
        self._warned_no_run = False
        self._step = 0
        self._next_log_step: float = 0
        self._last_log_step = -1
        self._last_log_time = 0.0
        self._last_log_tokens = 0
        self._last_log_flops = 0.0
        self._logged_totals: Totals | None = None
        self._paused_since: float | None = None
        self._paused_total = 0.0
        self._peak_flops: float | None = None

    # Starting ------------------------------------------------------------------------------
    def start(
        self,
        model: nn.Module,
        step: int,
        ranks: Ranks,
        find_target: Callable[[], RunTarget | None],
        *,
        peak_flops: float | None = None,
        no_run_message: str = "",
        dataset: Any = None,
    ) -> None:
        """Begin counting ``model`` at optimizer step ``step``; rank zero opens the sink on the
        run ``find_target`` returns and logs the parameter counts, family and loss metric (and
        U: ``unique_tokens=``, else what ``dataset`` states exactly)."""
        self.active = True
        self.unique = resolve_unique_tokens(self.settings.unique_tokens, dataset)
        self.ranks = ranks
        self._model = model
        self._pending = PendingCounts()
        self.deferred = DeferredCounts(self.settings.ignore_index, self._pending, self._flops_of)
        self._flops = None
        self.param_counts = count_parameters(model)
        self._warn_about_a_resume_gap(step)
        self._step = self.synced_step = self._last_log_step = step
        self._logged_totals = None
        self._last_log_time = time.monotonic()
        self._paused_total, self._paused_since = 0.0, None
        self._last_log_tokens = self.totals.tokens
        self._last_log_flops = self.totals.flops_hardware
        self._next_log_step = self._first_log_step(step)
        self._peak_flops = self.settings.peak_flops_per_device or peak_flops
        if ranks.is_rank_zero:
            self._open_sink(find_target, no_run_message)
            self._log_parameters(step)

    def _first_log_step(self, start: int) -> float:
        settings = self.settings
        if settings.log_every_seconds is not None:
            return start + 1  # an early point, and a first measure of step time
        if settings.log_every_n_steps is not None:
            return _next_multiple(start, settings.log_every_n_steps)
        return math.inf

    def _warn_about_a_resume_gap(self, start: int) -> None:
        resumed_from, self.resumed_from_step = self.resumed_from_step, None
        if resumed_from is not None and resumed_from < start and self.ranks.is_rank_zero:
            warnings.warn(
                f"the checkpoint resumed at step {start} holds the scaling-law totals of step "
                f"{resumed_from} (the last synchronisation of all ranks before it was written): "
                f"the tokens and FLOPs of the {start - resumed_from} steps in between are not in "
                "scaling.tokens and scaling.flops. Checkpoints written by ModelCheckpoint's "
                "every_n_train_steps, at epoch ends or at validation keep them exact",
                ScalingLawWarning,
                stacklevel=4,
            )

    def _log_parameters(self, step: int) -> None:
        counts = self.param_counts
        assert counts is not None
        law = self.settings.params_for_law
        metrics = {
            schema.METRIC_PARAMS_TOTAL: counts.total,
            schema.METRIC_PARAMS_NON_EMBEDDING: counts.non_embedding,
            schema.METRIC_PARAMS: counts.total if law == "total" else counts.non_embedding,
        }
        params = {schema.PARAM_PARAMS_CONVENTION: f"scaling.params = {law}; {PARAMS_CONVENTION}"}
        if self.unique is not None:
            metrics.update(self.unique.metrics(self.totals.tokens))
            params.update(self.unique.params())
        self._emit(
            metrics,
            step=step,
            params=params,
            tags={
                schema.TAG_FAMILY: self.settings.family,
                schema.TAG_LOSS_METRIC: self.settings.loss_metric,
            },
        )

    # Counting (every micro-batch, every rank) ---------------------------------------------
    def add_batch(self, batch: Any) -> None:
        """Count the tokens of one micro-batch and add its FLOPs (see :meth:`add_tokens`)."""
        settings = self.settings
        if settings.token_counter is not None:
            counted = settings.token_counter(batch)
            total, non_padding, loss = as_token_counts(counted, "token_counter")
            self._add_counts(batch, total, non_padding, loss, None)
            return
        inputs, mask, labels = locate(batch)
        if inputs is None:
            raise no_inputs(batch)
        if not self.deferred.keep(inputs, mask, labels):  # add_tokens, one call shorter
            self.count_now(inputs, mask, labels, batch)

    def add_tokens(
        self, inputs: Tensor, mask: Tensor | None, labels: Tensor | None, batch: Any = None
    ) -> None:
        """Count one micro-batch from its token ids, ``attention_mask`` and labels (``batch``:
        the batch they came from, else made from them when needed).

        No host copy of device counts (except the first batch's FLOPs planning, once), and
        usually no kernel either: the mask and labels are kept and counted together at the next
        synchronisation (:mod:`~mlflow_scaling.integrations.deferred`)."""
        if not self.deferred.keep(inputs, mask, labels):
            self.count_now(inputs, mask, labels, batch)

    def count_now(
        self, inputs: Tensor, mask: Tensor | None, labels: Tensor | None, batch: Any = None
    ) -> None:
        """:meth:`add_tokens` for a micro-batch ``self.deferred.keep`` declined (it never keeps
        with a user ``token_counter``): counted at once."""
        if self.settings.token_counter is not None:  # the user's counter reads the batch
            self.add_batch(as_batch(inputs, mask, labels) if batch is None else batch)
            return
        total, non_padding, loss, seq_len = count_tensors(
            inputs, mask, labels, self.settings.ignore_index
        )
        if batch is None:
            batch = as_batch(inputs, mask, labels)
        self._add_counts(batch, total, non_padding, loss, seq_len)

    def _add_counts(
        self, batch: Any, total: Count, non_padding: Count, loss: Count, seq_len: int | None
    ) -> None:
        flops = self._flops
        if flops is None:
            counts = TokenCounts(total, non_padding, loss)
            flops = self._flops = self._plan_flops(batch, counts)
            if self.settings.token_counter is None and flops.kind != "measured":
                self.deferred.enable(host_int(total))  # FLOPs from the sequence length alone
        self._pending.add_counts(total, non_padding, loss, flops.per_token(batch, total, seq_len))

    def _flops_of(self, total: int, seq_len: int | None) -> float:
        assert self._flops is not None
        return self._flops.per_token(None, total, seq_len)

    def _plan_flops(self, batch: Any, counts: Any) -> FlopsPerToken:
        assert self.param_counts is not None and self._model is not None
        rank_zero = self.ranks.is_rank_zero
        plan = plan_flops(
            self.settings, self._model, batch, counts, self.param_counts, rank_zero, self.owner
        )
        self.flops_method = plan.per_token.method
        if rank_zero:
            metrics = {schema.METRIC_FLOPS_PER_TOKEN: plan.first}
            if plan.measured is not None:
                metrics[schema.METRIC_FLOPS_PER_TOKEN_MEASURED] = plan.measured
            method = {schema.PARAM_FLOPS_METHOD: plan.per_token.method}
            self._emit(metrics, step=self._step, params=method)
        return plan.per_token

    def note_learning_rate(self, optimizer: Any) -> None:
        """Remember the largest ``lr`` of ``optimizer``'s parameter groups (call once per
        optimizer step, with the learning rate that step uses)."""
        peak = self.lr_peak
        for group in optimizer.param_groups:
            lr = group.get("lr")
            if lr.__class__ is not float:  # an int, a tensor, or something else
                lr = as_learning_rate(lr)
                if lr is None:
                    continue
            if peak is None or lr > peak:
                peak = lr
        self.lr_peak = peak

    # Steps ----------------------------------------------------------------------------------
    def log_due(self, step: int) -> bool:
        """Whether optimizer step ``step`` is a logging step (the same answer on every rank)."""
        return step >= self._next_log_step and step > self._last_log_step

    def after_step(self, step: int, checkpoint_due: Callable[[int], bool] | None = None) -> None:
        """Call after optimizer step ``step``: logs on logging steps; elsewhere, where
        ``checkpoint_due(step)``, synchronises (every rank, no logging) so that a checkpoint
        written there holds exact totals."""
        self._step = step
        if step >= self._next_log_step and step > self._last_log_step:  # log_due, inlined
            self.log_step(step)
        elif checkpoint_due is not None and step > self.synced_step and checkpoint_due(step):
            self.synchronize(step, plan=False)

    def pause(self) -> None:
        """Stop the throughput clock (validation is not training throughput)."""
        if self.active and self._paused_since is None:
            self._paused_since = time.monotonic()

    def resume(self) -> None:
        if self._paused_since is not None:
            self._paused_total += time.monotonic() - self._paused_since
            self._paused_since = None

    def finish(self, step: int) -> None:
        """The last synchronisation and log (every rank), then deliver and stop the sink."""
        if not self.active:
            return
        self._step = step
        self.log_step(step, final=True)
        self.active = False
        self.close_sink()

    def abort(self) -> None:
        """No collective (other ranks may not get this far); deliver what rank zero has,
        waiting less than at a normal end: someone may be pressing Ctrl+C."""
        self.active = False
        self.close_sink(min(self.settings.flush_timeout_s, 5.0))

    # Synchronising and logging ----------------------------------------------------------------
    def synchronize(self, step: int, plan: bool) -> int | None:
        """Sum pending counts over ranks into :attr:`totals` (one all-reduce; every rank calls
        this at the same points and ends with the same totals).

        With ``plan``, rank zero also proposes the next logging interval in the same vector so
        that every rank agrees on it; returns that interval."""
        self.deferred.count()
        values = self._pending.drain()
        rank_zero = self.ranks.is_rank_zero
        values.append(float(self._propose_interval(step)) if plan and rank_zero else 0.0)
        if self.ranks.world_size > 1:
            values = self.ranks.all_reduce_sum(values)
        total, non_padding, loss, flops, flops_hardware, interval = values
        self.totals.tokens_total += round(total)
        self.totals.tokens += round(non_padding)
        self.totals.tokens_loss += round(loss)
        self.totals.flops += flops
        self.totals.flops_hardware += flops_hardware
        self.synced_step = step
        return max(1, round(interval)) if plan else None

    def _propose_interval(self, step: int) -> int:
        interval = self.settings.log_every_n_steps or 0
        every_s = self.settings.log_every_seconds
        if every_s is not None:
            steps = step - self._last_log_step
            elapsed = self._active_seconds(time.monotonic())
            by_time = (
                max(1, math.floor(every_s * steps / elapsed)) if steps > 0 and elapsed > 0 else 1
            )
            interval = min(interval, by_time) if interval else by_time
        return interval

    def _active_seconds(self, now: float) -> float:
        paused = self._paused_total
        if self._paused_since is not None:
            paused += now - self._paused_since
        return max(now - self._last_log_time - paused, 0.0)

    def log_step(self, step: int, final: bool = False) -> None:
        """Synchronise (every rank) and, on rank zero, log the totals at ``step``."""
        interval = self.synchronize(step, plan=not final)
        if final and step == self._last_log_step and self.totals == self._logged_totals:
            return  # the last logging step already wrote these totals at this step
        if interval is not None:
            settings = self.settings
            if settings.log_every_n_steps is None and settings.log_every_seconds is None:
                self._next_log_step = math.inf
            else:
                self._next_log_step = _next_multiple(step, interval)
        now = time.monotonic()
        metrics = self._totals_metrics(step)
        metrics.update(self._throughput_metrics(step, now))
        self._last_log_step = step
        self._last_log_time = now
        self._paused_total = 0.0
        if self._paused_since is not None:
            self._paused_since = now
        self._last_log_tokens = self.totals.tokens
        self._last_log_flops = self.totals.flops_hardware
        self._logged_totals = replace(self.totals)
        if self.ranks.is_rank_zero:
            self._emit(metrics, step=step)

    def _totals_metrics(self, step: int) -> dict[str, float]:
        totals = self.totals
        metrics: dict[str, float] = {
            schema.METRIC_TOKENS: totals.tokens,
            schema.METRIC_TOKENS_TOTAL: totals.tokens_total,
            schema.METRIC_TOKENS_LOSS: totals.tokens_loss,
            schema.METRIC_FLOPS: totals.flops,
            schema.METRIC_FLOPS_HARDWARE: totals.flops_hardware,
        }
        if step > 0:  # tokens of one optimizer step, all ranks and micro-batches (docstring)
            metrics[schema.METRIC_BATCH_TOKENS] = totals.tokens / step
        if self.lr_peak is not None:
            metrics[schema.METRIC_LR_PEAK] = self.lr_peak
        if self.unique is not None:
            metrics.update(self.unique.metrics(totals.tokens))
        return metrics

    def _throughput_metrics(self, step: int, now: float) -> dict[str, float]:
        """Non-padding tokens/s, hardware FLOPs/s (padding included: the compute spent) and
        MFU = FLOPs/s / (peak FLOPs/s of one device x world size), over the last interval."""
        elapsed = self._active_seconds(now)
        if step <= self._last_log_step or elapsed <= 0:
            return {}
        flops_per_s = (self.totals.flops_hardware - self._last_log_flops) / elapsed
        metrics = {
            schema.METRIC_TOKENS_PER_SECOND: (self.totals.tokens - self._last_log_tokens) / elapsed,
            schema.METRIC_FLOPS_PER_SECOND: flops_per_s,
        }
        if self._peak_flops:
            metrics[schema.METRIC_MFU] = flops_per_s / (self._peak_flops * self.ranks.world_size)
        return metrics

    # Checkpoints ----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """The run totals as of the last synchronisation, and its step. No collective."""
        return {"version": 2, "step": self.synced_step, **asdict(self.totals)}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        self.totals = Totals.from_state(state_dict)
        step = state_dict.get("step")  # version 1: synchronised at the checkpoint's own step
        self.resumed_from_step = int(step) if step is not None else None

    # Delivery --------------------------------------------------------------------------------
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

    def _open_sink(self, find_target: Callable[[], RunTarget | None], no_run: str) -> None:
        if self.sink is not None:
            return
        try:
            self.target = find_target()
        except Exception as err:  # a tracking problem must not stop training
            self.target = None
            warnings.warn(
                f"{self.owner} could not find its MLflow run ({type(err).__name__}: "
                f"{err}); it keeps counting but logs nothing",
                ScalingLawWarning,
                stacklevel=4,
            )
            self._warned_no_run = True
            return
        if self.target is None:
            if not self._warned_no_run:
                self._warned_no_run = True
                warnings.warn(
                    f"{self.owner} found no MLflow run: {no_run or 'no MLflow run is active'}. "
                    "It counts tokens and FLOPs but logs nothing",
                    ScalingLawWarning,
                    stacklevel=4,
                )
            return
        self.sink = MlflowSink(self.target, retry_interval_s=self.settings.retry_interval_s)

    def close_sink(self, timeout_s: float | None = None) -> None:
        """Deliver what is queued within ``timeout_s`` (default ``flush_timeout_s``) and stop."""
        sink, self.sink = self.sink, None
        if sink is None:
            return
        timeout_s = self.settings.flush_timeout_s if timeout_s is None else timeout_s
        delivered = sink.close(timeout_s)
        self.closed_sink_cpu_seconds += sink.cpu_seconds
        if not delivered:
            warnings.warn(
                f"{sink.pending} scaling-law values could not be delivered to run "
                f"{sink.target.run_id} at {sink.target.tracking_uri} within "
                f"{timeout_s:g} s ({sink.describe_failure()}); the totals of this "
                f"run were tokens={self.totals.tokens}, flops={self.totals.flops:.6g}",
                ScalingLawWarning,
                stacklevel=3,
            )


def _next_multiple(step: int, interval: int) -> int:
    return (step // interval + 1) * interval


class CoreViews:
    """What every training-loop integration shows of its :class:`ScalingCore` (``self.core``)."""

    core: ScalingCore

    @property
    def totals(self) -> Totals:
        return self.core.totals

    @property
    def last_metrics(self) -> dict[str, float]:
        return self.core.last_metrics
