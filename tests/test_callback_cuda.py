"""On a GPU: no device-to-host synchronisation between logging steps, and MFU from the peak.

Skipped without CUDA (CI has none). Needs no MLflow: the callback runs without a run.
"""

from __future__ import annotations

import warnings
from typing import Any

import pytest
import torch
from _scaling_support import SEQ_LEN, PaddedBytes, tiny_gpt, trainer
from lightning.fabric.utilities.throughput import get_available_flops
from torch.utils.data import DataLoader

from lightning_callbacks import ScalingLawCallback, ScalingLawWarning
from mlflow_scaling.tracking import schema

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def test_no_sync_between_logging_steps_on_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    lengths = [1 + (5 * i) % SEQ_LEN for i in range(4 * 20)]
    cb = ScalingLawCallback(family="cuda", log_every_n_steps=5, log_every_seconds=None)
    hook = cb.on_train_batch_end
    checked: list[int] = []

    def strict(trainer: Any, *args: Any, **kwargs: Any) -> None:
        step = trainer.global_step
        logs = cb.core.log_due(step)
        if logs:
            hook(trainer, *args, **kwargs)
            return
        torch.cuda.synchronize()  # only what the hook itself does counts
        torch.cuda.set_sync_debug_mode("error")  # any synchronising call raises
        try:
            hook(trainer, *args, **kwargs)
        finally:
            torch.cuda.set_sync_debug_mode("default")
        checked.append(step)

    monkeypatch.setattr(cb, "on_train_batch_end", strict)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ScalingLawWarning)  # no MLflow run here
        trainer(accelerator="cuda", precision="bf16-mixed", callbacks=[cb], max_steps=20).fit(
            tiny_gpt(), DataLoader(PaddedBytes(lengths), batch_size=4)
        )
    assert len(checked) == 16  # 20 steps, 4 of them logging steps (5, 10, 15, 20)
    assert cb.totals.tokens == sum(lengths)
    assert cb.last_metrics[schema.METRIC_TOKENS] == sum(lengths)
    assert cb.last_metrics[schema.METRIC_FLOPS_PER_SECOND] > 0
    peak = get_available_flops(torch.device("cuda"), torch.bfloat16)
    if peak:  # a GPU whose peak Lightning knows (H100, A100, ...)
        mfu = cb.last_metrics[schema.METRIC_MFU]
        assert mfu == pytest.approx(cb.last_metrics[schema.METRIC_FLOPS_PER_SECOND] / peak)
        assert 0 < mfu < 1
    else:
        assert schema.METRIC_MFU not in cb.last_metrics
