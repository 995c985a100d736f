"""Micro-batches kept as they come and counted together at the next synchronisation.

Counting a micro-batch's ``attention_mask`` and ``labels`` when it arrives takes two or three
small kernels, each dispatched right after a training step, when the CPU's caches hold the
step's work rather than the counter's: on the tiny benchmark model that alone costs more than
``lightning.fabric``'s ``Throughput.update``. :class:`DeferredCounts` instead keeps references to
those tensors (and the input's shape) and, at the next synchronisation (a logging step, a
checkpoint) or after :data:`MAX_KEPT` micro-batches or :data:`MAX_POSITIONS` positions, counts
them grouped by shape:

    non_padding = count_nonzero(stack(masks of a group))
    loss        = count_nonzero(stack(labels of a group) != ignore_index)

The same integers as counting one by one, with a few kernels per group instead of two or three
per micro-batch, still on the device and without a host copy (the sums are read with the rest at
the synchronisation).

Exactness needs the kept tensors unchanged until then. Data loaders hand out new tensors every
step; a loop that refills one buffer in place does not, so:

* over the first :data:`MEMORY_CHECKS` micro-batches (counted when they arrive for the first
  one, kept after), a mask or labels tensor whose memory is that of the previous micro-batch's
  (a refilled buffer: the previous one is still referenced here, so its memory cannot have
  been reused by the allocator) turns deferral off before anything is lost; from then on every
  micro-batch is counted when it arrives;
* PyTorch counts in-place writes to a tensor (``Tensor._version``); a kept tensor written since
  it was kept (a pool of buffers refilled in turn) is reported with a warning naming the step,
  and deferral is turned off.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from .counting import Count, PendingCounts, is_token_ids
from .errors import ScalingLawWarning

MAX_KEPT = 256
"""Micro-batches kept at most before they are counted (bounds the memory held)."""
MAX_POSITIONS = 1 << 24
"""Token positions kept at most, judged by the first kept micro-batch (bounds the memory)."""

MEMORY_CHECKS = 16
"""The first micro-batches whose mask and labels memory is compared with the previous one's."""

FlopsOf = Callable[[int, int | None], float]
"""FLOPs per token of a micro-batch from its positions and sequence length."""


class DeferredCounts:
    """Kept micro-batches (module docstring). Keeping starts with :meth:`enable` (once FLOPs
    per token depend on the sequence length alone, not on a measured batch shape); a refilled
    buffer or a kept tensor written in place stops it for good."""

    def __init__(self, ignore_index: int, pending: PendingCounts, flops_of: FlopsOf) -> None:
        self.ignore_index = ignore_index
        self.pending = pending
        self.flops_of = flops_of
        self.enabled = False
        self.stopped = False
        self.keeping = False  # enabled, memory checks done, not stopped: the short path
        self._max_kept = MAX_KEPT
        self._kept: list[tuple[Tensor, Any, int, Any, int]] = []
        self._checks_left = MEMORY_CHECKS
        self._ptrs = (0, 0)  # memory of the previous micro-batch's mask and labels
        self._last: tuple[Tensor | None, Tensor | None] = (None, None)
        """That mask and those labels, referenced so that their memory cannot be handed to a
        new tensor: the same memory again is a buffer refilled in place."""

    def enable(self, positions: int) -> None:
        """Start keeping; ``positions``: those of a typical micro-batch (the memory bound)."""
        self.enabled = not self.stopped
        self._max_kept = max(1, min(MAX_KEPT, MAX_POSITIONS // max(positions, 1)))

    def __len__(self) -> int:
        """Micro-batches kept now."""
        return len(self._kept)

    def keep(self, inputs: Tensor, mask: Tensor | None, labels: Tensor | None) -> bool:
        """Keep one micro-batch to count later (all kept ones are counted at the memory bound);
        ``False`` when it must be counted now."""
        if not self.keeping and not self._may_keep(mask, labels):
            return False
        kept = self._kept
        kept.append(
            (
                inputs,
                mask,
                0 if mask is None else mask._version,
                labels,
                0 if labels is None else labels._version,
            )
        )
        if len(kept) >= self._max_kept:
            self.count()
        return True

    def _may_keep(self, mask: Tensor | None, labels: Tensor | None) -> bool:
        """Whether this micro-batch may be kept, while memory is checked or keeping is off."""
        if self.stopped:
            return False
        if self._checks_left:  # a loop refills its buffers from its first steps on
            self._checks_left -= 1
            if self._refilled(mask, labels):
                return False
        self.keeping = self.enabled and not self._checks_left
        return self.enabled

    def _refilled(self, mask: Tensor | None, labels: Tensor | None) -> bool:
        """Whether ``mask`` or ``labels`` lie in the memory of the previous micro-batch's (then
        keeping stops for good)."""
        ptrs = (0 if mask is None else mask.data_ptr(), 0 if labels is None else labels.data_ptr())
        if any(p and p == last for p, last in zip(ptrs, self._ptrs, strict=True)):
            self.stopped, self.enabled = True, False
            self._last = (None, None)
            return True
        self._ptrs, self._last = ptrs, (mask, labels)
        if not self._checks_left:
            self._last = (None, None)  # checks done: nothing more to hold
        return False

    def count(self) -> None:
        """Count the kept micro-batches into the pending counts and forget them."""
        kept, self._kept = self._kept, []
        groups: dict[tuple[Any, ...], tuple[list[int], list[Tensor], list[Tensor]]] = {}
        changed = 0
        for inputs, mask, mask_version, labels, labels_version in kept:
            if (mask is not None and mask._version != mask_version) or (
                labels is not None and labels._version != labels_version
            ):
                changed += 1
            shape = inputs.shape
            if not is_token_ids(inputs):  # features: one sample counts as one token
                n = int(shape[0]) if len(shape) > 0 else 1
                self.pending.add_counts(n, n, n, self.flops_of(n, None))
                continue
            seq_len = int(shape[-1]) if len(shape) >= 2 else None
            totals, masks, label_list = groups.setdefault(
                (seq_len, _layout(mask), _layout(labels)), ([], [], [])
            )
            totals.append(shape.numel())
            if mask is not None:
                masks.append(mask)
            if labels is not None:
                label_list.append(labels)
        for (seq_len, _, _), (totals, masks, label_list) in groups.items():
            total = sum(totals)
            non_padding: Count = torch.count_nonzero(torch.stack(masks)) if masks else total
            loss: Count = non_padding
            if label_list:
                loss = torch.count_nonzero(torch.stack(label_list) != self.ignore_index)
            self.pending.add_counts(total, non_padding, loss, self.flops_of(total, seq_len))
        if changed:
            self.stopped, self.enabled, self.keeping = True, False, False
            warnings.warn(
                f"{changed} attention_mask/labels tensors were written in place after their "
                "micro-batch was handed to the counter (a pool of reused buffers?); the tokens "
                "of the steps since the last synchronisation read them as they are now and may "
                "be off. From now on each micro-batch is counted when it arrives",
                ScalingLawWarning,
                stacklevel=4,
            )


def _layout(t: Tensor | None) -> tuple[Any, ...] | None:
    """What tensors must share to be stacked together."""
    return None if t is None else (t.shape, t.dtype, t.device)
