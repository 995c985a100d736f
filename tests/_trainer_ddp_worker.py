"""One rank of the ``Trainer`` DDP test; ``torchrun`` starts two (gloo, CPU).

Usage: ``torchrun --nproc_per_node=2 tests/_trainer_ddp_worker.py OUT_DIR FAMILY``. Each rank
writes ``rank<N>.json`` with the totals it holds after training.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

import torch
from _loops_support import (
    CausalLM,
    collator,
    quiet_transformers,
    samples,
    trainer_arguments,
)
from transformers import Trainer

from mlflow_scaling.integrations.transformers import ScalingLawTrainerCallback

DDP_SAMPLES = 16
DDP_STEPS = 2  # 16 samples / (2 ranks x 2 micro-batches x 2 sequences)


def main(out: Path, family: str) -> None:
    quiet_transformers()
    torch.set_num_threads(1)
    callback = ScalingLawTrainerCallback(family=family, log_every_n_steps=1, log_every_seconds=None)
    with tempfile.TemporaryDirectory() as folder:
        Trainer(
            model=CausalLM(),
            args=trainer_arguments(folder, DDP_STEPS, "none", ddp_backend="gloo"),
            train_dataset=samples(DDP_SAMPLES),
            data_collator=collator(),
            callbacks=[callback],
        ).train()
    rank = int(os.environ["RANK"])
    report = {
        "world_size": callback.core.ranks.world_size,
        "tokens": callback.totals.tokens,
        "tokens_total": callback.totals.tokens_total,
        "opened_run_id": callback.opened_run_id,
    }
    (out / f"rank{rank}.json").write_text(json.dumps(report))


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2])
