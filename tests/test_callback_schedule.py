"""The callback logs the learning-rate schedule's name and warmup where Lightning exposes them."""

from __future__ import annotations

import mlflow
import torch
from _scaling_support import tiny_gpt, token_loader, trainer, unique
from lightning.pytorch.loggers import MLFlowLogger

from examples.tiny_gpt import TinyGPT
from lightning_callbacks import ScalingLawCallback
from mlflow_scaling.tracking import schema


class WarmupCosineGPT(TinyGPT):
    """The tiny GPT with 3 linear warmup steps, then cosine decay, stepped per optimizer step."""

    def configure_optimizers(self):
        opt = torch.optim.AdamW(self.parameters(), lr=1e-3)
        warmup = torch.optim.lr_scheduler.LinearLR(opt, start_factor=0.1, total_iters=3)
        cosine = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=5)
        both = torch.optim.lr_scheduler.SequentialLR(opt, [warmup, cosine], milestones=[3])
        return {"optimizer": opt, "lr_scheduler": {"scheduler": both, "interval": "step"}}


def _params_after_fit(model, server: str) -> dict[str, str]:
    logger = MLFlowLogger(experiment_name=unique("cb-schedule"), tracking_uri=server)
    cb = ScalingLawCallback(family="schedule", loss_metric="train_loss")
    trainer(logger=logger, callbacks=[cb], max_steps=6).fit(model, token_loader(6, 2))
    return mlflow.MlflowClient(server).get_run(logger.run_id).data.params


def test_warmup_and_schedule_names_are_logged(mlflow_server: str) -> None:
    params = _params_after_fit(WarmupCosineGPT(tiny_gpt().config), mlflow_server)
    assert params[schema.PARAM_LR_SCHEDULE] == "LinearLR+CosineAnnealingLR per step"
    assert params[schema.PARAM_LR_WARMUP_STEPS] == "3"


def test_no_scheduler_is_named_and_warmup_left_out(mlflow_server: str) -> None:
    params = _params_after_fit(tiny_gpt(), mlflow_server)
    assert params[schema.PARAM_LR_SCHEDULE] == "none"
    assert schema.PARAM_LR_WARMUP_STEPS not in params
