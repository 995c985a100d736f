"""Masks and labels kept until the next synchronisation count exactly what counting each
micro-batch at once counts; refilled buffers are noticed (mlflow_scaling/integrations/deferred.py).
"""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from mlflow_scaling.integrations import ScalingLawWarning
from mlflow_scaling.integrations.deferred import MAX_KEPT
from mlflow_scaling.integrations.torch import ScalingCounter

FPT = 10.0  # a user FLOPs per token: FLOPs from the sequence length alone, so batches are kept


def counter(**options: object) -> ScalingCounter:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ScalingLawWarning)  # no MLflow run: counts, logs nothing
        return ScalingCounter(
            nn.Linear(4, 4), family="deferred", flops_per_token=FPT, cross_check=False, **options
        )


def batch(step: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Ids 2x5, a mask with ``step % 4`` padded positions, labels with ``step % 3`` ignored."""
    ids = torch.arange(10).reshape(2, 5) + step
    mask = torch.ones(2, 5, dtype=torch.long)
    mask.view(-1)[: step % 4] = 0
    labels = ids.clone()
    labels.view(-1)[: step % 3] = -100
    return ids, mask, labels


def expected(steps: range) -> tuple[int, int, int]:
    tokens = sum(10 - s % 4 for s in steps)
    return 10 * len(steps), tokens, sum(10 - s % 3 for s in steps)


def totals(c: ScalingCounter) -> tuple[int, int, int]:
    return c.totals.tokens_total, c.totals.tokens, c.totals.tokens_loss


def test_kept_batches_count_what_counting_at_once_counts() -> None:
    c = counter(log_every_n_steps=7, log_every_seconds=None)
    for step in range(40):
        ids, mask, labels = batch(step)
        c.step(ids, attention_mask=mask, labels=labels)
    assert c.core.deferred.keeping  # the path under test was taken
    c.close()
    total, tokens, loss = expected(range(40))
    assert totals(c) == (total, tokens, loss)
    assert c.totals.flops == FPT * tokens
    assert c.totals.flops_hardware == FPT * total


def test_a_buffer_refilled_in_place_is_counted_at_once() -> None:
    c = counter(log_every_n_steps=None, log_every_seconds=None)
    ids, mask, labels = (t.clone() for t in batch(0))
    for step in range(12):
        for buffer, fresh in zip((ids, mask, labels), batch(step), strict=True):
            buffer.copy_(fresh)  # the same tensors, new contents
        c.step(ids, attention_mask=mask, labels=labels)
    assert c.core.deferred.stopped
    c.close()
    assert totals(c) == expected(range(12))


def test_a_pool_of_buffers_written_after_keeping_is_reported() -> None:
    c = counter(log_every_n_steps=None, log_every_seconds=None)
    pool = [tuple(t.clone() for t in batch(0)) for _ in range(2)]
    for step in range(30):
        ids, mask, labels = pool[step % 2]
        for buffer, fresh in zip((ids, mask, labels), batch(step), strict=True):
            buffer.copy_(fresh)
        c.step(ids, attention_mask=mask, labels=labels)
    with pytest.warns(ScalingLawWarning, match="written in place after their micro-batch"):
        c.close()
    assert c.core.deferred.stopped


def test_kept_batches_are_bounded() -> None:
    c = counter(log_every_n_steps=None, log_every_seconds=None)
    for step in range(MAX_KEPT + 20):
        ids, mask, labels = batch(step)
        c.step(ids, attention_mask=mask, labels=labels)
        assert len(c.core.deferred) < MAX_KEPT
    c.close()
    assert totals(c) == expected(range(MAX_KEPT + 20))
