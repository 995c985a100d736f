"""``ScalingCounter``: N, D and C of a plain PyTorch loop, logged to the active MLflow run.

    with mlflow.start_run(), ScalingCounter(model, family="gpt") as counter:
        for step in range(steps):
            for x, y in micro_batches:              # gradient accumulation, if any
                loss_of(model, x, y).backward()
            optimizer.step()
            counter.step(xs, optimizer, labels=ys)  # xs, ys: this step's micro-batches
            scheduler.step()
            optimizer.zero_grad()

Padding and ignored labels: pass ``attention_mask`` (its non-zero positions are the tokens,
``scaling.tokens``) and ``labels`` (positions other than ``ignore_index`` are the loss tokens,
``scaling.tokens_loss``). Gradient accumulation: pass this optimizer step's micro-batches as a
list (``input_ids``, ``attention_mask`` and ``labels`` alike); a single tensor is one
micro-batch. Counts stay on the device; they cross to the host once per logging step. Until
then the mask and labels tensors are kept (referenced, not copied) and counted together; a loop
that refills the same buffers in place is noticed on its second step and counted at every step
from then on (:mod:`~mlflow_scaling.integrations.deferred`).

Several processes (``torch.distributed`` initialised, DDP or FSDP): every rank calls ``step``
with its own micro-batches, at the same points; the sums are all-reduced on logging steps and
rank zero logs. Call ``step`` after ``optimizer.step()`` and before the scheduler's step, so that
``scaling.lr_peak`` reads the learning rate the step used.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType
from typing import Any

import torch
from torch import Tensor, nn

from .core import CoreViews, ScalingCore
from .mlflow_sink import active_run_target
from .peak_flops import peak_flops_per_device
from .ranks import TorchRanks
from .settings import CountingSettings

MicroBatches = Tensor | Sequence[Tensor]
"""One micro-batch (a tensor), or this optimizer step's micro-batches (a list of tensors)."""


class ScalingCounter(CoreViews):
    """Counts a plain PyTorch loop (module docstring). Only ``family`` is required; the options
    are those of :class:`~mlflow_scaling.integrations.settings.CountingSettings`.

    ``start_step`` is the optimizer step counting starts at (a resumed loop's step).
    ``unique_tokens=`` (the corpus's distinct tokens) adds ``scaling.unique_tokens`` and
    ``scaling.epochs``; a plain loop has no dataset to read it from.
    """

    def __init__(self, model: nn.Module, family: str, *, start_step: int = 0, **options: Any):
        self.core = ScalingCore(CountingSettings(family=family, **options), "ScalingCounter")
        self.steps = start_step
        first = next(model.parameters(), None)
        device = first.device if first is not None else torch.device("cpu")
        dtype = first.dtype if first is not None else torch.float32
        self.core.start(
            model,
            start_step,
            TorchRanks(device),
            active_run_target,
            peak_flops=peak_flops_per_device(device, dtype),
            no_run_message="no MLflow run is active (mlflow.start_run)",
        )

    def step(
        self,
        input_ids: MicroBatches,
        optimizer: torch.optim.Optimizer | None = None,
        *,
        attention_mask: MicroBatches | None = None,
        labels: MicroBatches | None = None,
    ) -> None:
        """Count one optimizer step: its micro-batches (module docstring), its learning rate."""
        core = self.core
        if isinstance(input_ids, Tensor) and (
            (attention_mask is None or isinstance(attention_mask, Tensor))
            and (labels is None or isinstance(labels, Tensor))
        ):  # one micro-batch, the common case: core.add_tokens, one call shorter
            if not core.deferred.keep(input_ids, attention_mask, labels):
                core.count_now(input_ids, attention_mask, labels)
        else:
            for batch in _micro_batches(input_ids, attention_mask, labels):
                core.add_batch(batch)
        if optimizer is not None:
            core.note_learning_rate(optimizer)
        self.steps = steps = self.steps + 1
        core.after_step(steps)

    def close(self) -> None:
        """The last synchronisation (every rank) and log; waits for the delivery."""
        self.core.finish(self.steps)

    def __enter__(self) -> ScalingCounter:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if error is None:
            self.close()
        else:  # no collective: the other ranks may not get here
            self.core.abort()


def _micro_batches(
    input_ids: MicroBatches, attention_mask: MicroBatches | None, labels: MicroBatches | None
) -> list[dict[str, Tensor]]:
    """One mapping ``{"input_ids", "attention_mask"?, "labels"?}`` per micro-batch."""
    ids = _as_list(input_ids, "input_ids")
    masks = _as_list(attention_mask, "attention_mask", len(ids))
    targets = _as_list(labels, "labels", len(ids))
    batches = []
    for i, x in enumerate(ids):
        batch = {"input_ids": x}
        if masks is not None:
            batch["attention_mask"] = masks[i]
        if targets is not None:
            batch["labels"] = targets[i]
        batches.append(batch)
    return batches


def _as_list(value: MicroBatches | None, name: str, n: int | None = None) -> list[Tensor] | None:
    if value is None:
        return None
    out = [value] if isinstance(value, Tensor) else list(value)
    if n is not None and len(out) != n:
        raise ValueError(f"{name} holds {len(out)} micro-batches; input_ids holds {n}")
    return out
