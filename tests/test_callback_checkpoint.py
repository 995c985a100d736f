"""Checkpoint state: collective-free, and honest about the steps it may miss on a resume."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import lightning as L
import pytest
import torch
from _distributed_support import report, run_ranks
from _scaling_support import SEQ_LEN, PaddedBytes, tiny_gpt, token_loader, trainer
from lightning.pytorch.callbacks import ModelCheckpoint
from torch.utils.data import DataLoader

from lightning_callbacks import ScalingLawCallback, ScalingLawWarning

EPOCH_STEPS, STEPS = 3, 4  # the second epoch stops after one step
BATCH = {0: 2, 1: 3}
LENGTHS = {
    r: [1 + (7 * i + 5 * r) % SEQ_LEN for i in range(EPOCH_STEPS * b)] for r, b in BATCH.items()
}


def _tokens_to(step: int) -> int:
    epochs, rest = divmod(step, EPOCH_STEPS)
    return sum(epochs * sum(LENGTHS[r]) + sum(LENGTHS[r][: rest * BATCH[r]]) for r in BATCH)


class RankZeroReadsState(L.Callback):
    """Rank zero alone asks the scaling callback for its checkpoint state, as a checkpoint
    written by rank zero only would: after step 3, and at the end of the first epoch (also step
    3, where Lightning's end-of-epoch checkpoints are written)."""

    def __init__(self, callback: ScalingLawCallback) -> None:
        self.callback = callback
        self.states: dict[str, Any] = {}

    def on_train_batch_end(self, trainer: L.Trainer, *args: Any) -> None:
        if trainer.global_step == 3 and trainer.is_global_zero:
            self.states["step 3"] = self.callback.state_dict()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.current_epoch == 0 and trainer.is_global_zero:
            self.states["epoch end"] = self.callback.state_dict()


def _ddp_rank_zero_state(rank: int, out: Path) -> None:
    cb = ScalingLawCallback(family="state", log_every_n_steps=2, log_every_seconds=None)
    reader = RankZeroReadsState(cb)
    loader = DataLoader(PaddedBytes(LENGTHS[rank], seed=rank), batch_size=BATCH[rank])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # no MLflow run here
        trainer(
            devices=2,
            strategy="ddp",
            use_distributed_sampler=False,
            callbacks=[cb, reader],
            max_steps=STEPS,
        ).fit(tiny_gpt(), loader)
    report(out, rank, states=reader.states, tokens=cb.totals.tokens)


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed missing")
def test_state_dict_called_by_rank_zero_alone_returns(tmp_path: Path) -> None:
    # Before: state_dict ran an all-reduce, which rank one never joined (hang, or a mismatch
    # with DDP's own gradient all-reduce).
    ranks = run_ranks(_ddp_rank_zero_state, tmp_path)
    states = ranks[0]["states"]
    # After step 3: the totals every rank holds since the logging step 2.
    assert states["step 3"]["step"] == 2
    assert states["step 3"]["tokens"] == _tokens_to(2)
    assert states["step 3"]["tokens_total"] == 2 * (BATCH[0] + BATCH[1]) * SEQ_LEN
    # At the epoch's end the ranks synchronised (all of them, before any checkpoint callback).
    assert states["epoch end"]["step"] == 3
    assert states["epoch end"]["tokens"] == _tokens_to(3)
    assert ranks[1]["states"] == {}
    assert ranks[0]["tokens"] == ranks[1]["tokens"] == _tokens_to(STEPS)  # training went on


def test_a_resume_from_older_totals_says_how_many_steps_they_miss(tmp_path: Path) -> None:
    # One process always synchronises at the checkpoint. A checkpoint written by several ranks
    # outside a synchronisation holds the totals of an earlier step: make one by editing it.
    checkpoint = ModelCheckpoint(dirpath=tmp_path, save_top_k=-1, every_n_train_steps=4)
    first = ScalingLawCallback(family="gap", log_every_n_steps=3, log_every_seconds=None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ScalingLawWarning)
        trainer(callbacks=[first, checkpoint], enable_checkpointing=True, max_steps=4).fit(
            tiny_gpt(), token_loader(4, 2)
        )
    (path,) = tmp_path.glob("*.ckpt")
    saved = torch.load(path, weights_only=False)
    state = saved["callbacks"][first.state_key]
    assert (state["step"], state["tokens"]) == (4, 4 * 2 * SEQ_LEN)  # exact at the checkpoint
    state.update(step=1, tokens=2 * SEQ_LEN)  # as if the ranks last synchronised at step 1
    torch.save(saved, path)

    cb = ScalingLawCallback(family="gap", log_every_n_steps=3, log_every_seconds=None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer(callbacks=[cb], max_steps=6).fit(tiny_gpt(), token_loader(6, 2), ckpt_path=path)
    messages = [str(w.message) for w in caught if issubclass(w.category, ScalingLawWarning)]
    (gap,) = [m for m in messages if "steps in between" in m]
    assert "resumed at step 4 holds the scaling-law totals of step 1" in gap
    assert "the 3 steps in between are not in scaling.tokens" in gap
    assert cb.totals.tokens == (1 + 2) * 2 * SEQ_LEN  # step 1 from the state, steps 5 and 6
