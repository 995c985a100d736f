"""The stdlib byte-level GPT trained by a plain PyTorch loop, counted by ``ScalingCounter``.

    python examples/train_plain_torch.py --tracking-uri sqlite:///mlflow.db [--steps 200]

The run joins the family ``plain-torch-gpt`` with N, D and C in the contract's names, exactly as
the Lightning callback would log them; gradient accumulation is shown with two micro-batches per
optimizer step.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import mlflow
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

sys.path.insert(0, str(Path(__file__).resolve().parent))
from stdlib_corpus import load_corpus  # noqa: E402
from tiny_gpt import ByteWindows, GPTConfig, TinyGPT  # noqa: E402

from mlflow_scaling.integrations.torch import ScalingCounter  # noqa: E402

ACCUMULATION = 2
FAMILY = "plain-torch-gpt"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracking-uri", default="sqlite:///mlflow.db")
    parser.add_argument("--steps", type=int, default=200)
    args = parser.parse_args()
    mlflow.set_tracking_uri(args.tracking_uri)
    mlflow.set_experiment("plain-torch")

    cfg = GPTConfig(n_layer=2, n_head=2, d_model=64, seq_len=64)
    model = TinyGPT(cfg)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr)
    data = DataLoader(ByteWindows(load_corpus().train, cfg.seq_len), batch_size=8, shuffle=True)
    batches = iter(data)

    run = mlflow.start_run()
    with run, ScalingCounter(model, family=FAMILY, loss_metric="train_loss") as counter:
        for step in range(1, args.steps + 1):
            xs, ys = [], []
            for _ in range(ACCUMULATION):
                x, y = next(batches, None) or next(batches := iter(data))
                logits = model(x)
                loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), y.reshape(-1))
                (loss / ACCUMULATION).backward()
                xs.append(x)
                ys.append(y)
            optimizer.step()
            counter.step(xs, optimizer, labels=ys)  # this step's micro-batches
            optimizer.zero_grad(set_to_none=True)
            if step % 50 == 0 or step == args.steps:
                mlflow.log_metric("train_loss", loss.item(), step=step)
    n = counter.last_metrics["scaling.params"]
    print(f"N={n:.0f} D={counter.totals.tokens} C={counter.totals.flops:.3g}")


if __name__ == "__main__":
    main()
