"""``ScalingLawTrainerCallback``: N, D and C of a Hugging Face ``Trainer`` run, in MLflow.

    trainer = Trainer(model, args, ..., callbacks=[ScalingLawTrainerCallback(family="gpt")])

The run: the one ``report_to="mlflow"`` opened (``MLFlowCallback`` starts it at train begin,
before this callback), else the active MLflow run, else one this callback opens on rank zero and
ends at train end. Same names, steps (optimizer steps, ``state.global_step``) and meanings as the
Lightning callback.

Tokens without the batch: a ``Trainer`` callback never sees the batch, so at train begin this
callback registers a forward pre-hook on the model (``register_forward_pre_hook(...,
with_kwargs=True)``). ``Trainer`` calls ``model(**inputs)`` once per micro-batch on every rank
(gradient accumulation included; DDP's wrapper calls the same module), so the hook reads exactly
the collated ``input_ids``, ``attention_mask`` and ``labels`` the model is trained on: padding
(``DataCollatorForLanguageModeling``'s) is excluded through the mask, ignored labels through
``ignore_index``. Counts stay on the device; evaluation forwards (``model.training`` false) are
not counted. The hook is removed at train end.

Steps: all per-step work runs in that one hook, at one point of the step. The first training
forward of an optimizer step (``state.global_step`` changed since the last one) ends the
previous step: logging steps log there, at ``state.global_step``, on every rank at the same
forward; the last step is logged at train end. The learning rate is read there too: the
scheduler has stepped, so it is the rate the new step uses (``scaling.lr_peak``), from the
optimizer ``Trainer`` hands every event (the same object from ``on_train_begin`` on).

Needs the ``transformers`` extra: ``pip install mlflow-scaling[transformers]``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from .core import CoreViews, ScalingCore
from .mlflow_sink import RunTarget, active_run_target
from .peak_flops import peak_flops_per_device
from .ranks import TorchRanks
from .settings import CountingSettings
from .unique_tokens import loader_dataset


class ScalingLawTrainerCallback(CoreViews, TrainerCallback):
    """Counts a ``Trainer`` run (module docstring). Only ``family`` is required; the options are
    those of :class:`~mlflow_scaling.integrations.settings.CountingSettings` (``unique_tokens=``
    included; without it an exact training dataset gives U, see :mod:`.unique_tokens`)."""

    def __init__(self, family: str, **options: Any) -> None:
        self.core = ScalingCore(
            CountingSettings(family=family, **options), "ScalingLawTrainerCallback"
        )
        self.opened_run_id: str | None = None
        """The run this callback opened itself (no run was active at train begin)."""
        self._hook: Any = None
        self._counting = False
        self._state: TrainerState | None = None
        self._optimizer: Any = None
        self._step_seen: int | None = None  # state.global_step at the last counted forward

    def on_train_begin(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        model: nn.Module | None = None,
        optimizer: Any = None,
        train_dataloader: Any = None,
        **kwargs: Any,
    ) -> None:
        if model is None:
            raise ValueError("ScalingLawTrainerCallback needs the Trainer's model")
        self._state, self._optimizer, self._step_seen = state, optimizer, None
        self.core.start(
            model,
            state.global_step,
            TorchRanks(args.device),
            self._find_or_open_run,
            peak_flops=peak_flops_per_device(args.device, _dtype(args)),
            dataset=loader_dataset(train_dataloader),
        )
        self._hook = model.register_forward_pre_hook(self._count, with_kwargs=True)

    def _count(self, module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        """Forward pre-hook: the first training forward of an optimizer step ends the previous
        step (module docstring, Steps); then count the micro-batch from the model's inputs."""
        if not module.training or self._counting:  # evaluation, or the FLOPs measurement
            return
        core = self.core
        step = self._state.global_step if self._state is not None else 0
        if step != self._step_seen:
            if self._step_seen is not None:
                core.after_step(step)  # every rank, at the same forward
            self._step_seen = step
            if self._optimizer is not None:  # the rate this step uses (the scheduler has run)
                core.note_learning_rate(self._optimizer)
        batch = kwargs  # read, never changed
        if args and "input_ids" not in kwargs:
            batch = {**kwargs, "input_ids": args[0]}
        if core.deferred.keeping:  # kept for later: no forward can run inside, no guard needed
            core.add_batch(batch)
            return
        self._counting = True
        try:
            core.add_batch(batch)
        finally:
            self._counting = False

    def _find_or_open_run(self) -> RunTarget | None:
        target = active_run_target()
        if target is None:
            import mlflow

            self.opened_run_id = mlflow.start_run().info.run_id
            target = active_run_target()
        return target

    def on_train_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        try:
            self.core.finish(state.global_step)
        finally:
            self._remove_hook()
            self._end_opened_run()

    def _remove_hook(self) -> None:
        if self._hook is not None:
            self._hook.remove()
            self._hook = None

    def _end_opened_run(self) -> None:
        if self.opened_run_id is None:
            return
        import mlflow

        active = mlflow.active_run()
        if active is not None and active.info.run_id == self.opened_run_id:
            mlflow.end_run()


def _dtype(args: TrainingArguments) -> torch.dtype:
    if getattr(args, "bf16", False):
        return torch.bfloat16
    if getattr(args, "fp16", False):
        return torch.float16
    return torch.float32
