"""How noisy is the example sweep's loss at the scale of its 0.25 % band? (examples/hparam_sweep)

The learning-rate and batch check judges a prediction by the cell's 0.25 % near-optimal band, so
the loss *difference* between two settings of a cell must be measured with noise well below
0.25 % of the loss. This script trains three neighbouring settings of the sweep's largest cell
(N = 56.6k non-embedding parameters, D = 524k tokens; the same seed, as in the sweep), scores
each trained model window by window on the whole validation split (held-out stdlib files,
windows of 64 bytes), and prints, for each pair of settings:

* the difference (as a share of the loss) on the first 256 windows, on the first
  ``hparam_sweep.VALIDATION_WINDOWS`` and on all of them;
* its standard deviation over blocks of 256 consecutive windows at random offsets: what scoring
  on one such block adds to a comparison. Blocks of k windows are taken to shrink it by about
  √(k/256) (neighbouring blocks of text are not independent, so this is a floor on the noise).

Measured (2026-12-02): 0.34–0.51 % on 256 windows for the three pairs, larger than the band, so
the sweep scores on 2,048 windows (about 0.12–0.18 %).

    PYTHONPATH=$PWD OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/bench_validation_noise.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples"))

import hparam_sweep as sweep  # noqa: E402
from stdlib_corpus import load_corpus  # noqa: E402
from tiny_gpt import ByteWindows  # noqa: E402
from train_family import ScheduledGPT, lightning_quiet  # noqa: E402

SIZE, TOKENS = (2, 48), 2**19
SETTINGS = ((2, 0.0), (2, 0.5), (4, 0.0))
"""(batch in sequences, k): the grid's points η_c(N)·(B/2)^½·2^k of the largest cell."""
BLOCK = 256
DRAWS = 2000


def trained(batch: int, k: float, data: torch.Tensor) -> ScheduledGPT:
    """One run of the sweep's largest cell at (batch, k), as the sweep trains it, without
    MLflow or validation (only the model)."""
    point = sweep.Point(SIZE, TOKENS, sweep.lr_centre(sweep.non_embedding(SIZE), batch) * 2**k,
                        batch)  # fmt: skip
    model, train = sweep.model_and_batches(point, data)
    with lightning_quiet(True):
        sweep.sweep_trainer(point, logger=False, limit_val_batches=0).fit(model, train)
    print(f"  trained {point.key}", flush=True)
    return model


def window_losses(model: ScheduledGPT, windows: ByteWindows) -> np.ndarray:
    """Mean cross-entropy of each validation window."""
    model.eval()
    out = []
    with torch.no_grad():
        for x, y in DataLoader(windows, batch_size=256):
            logits = model(x)
            loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), y.reshape(-1),
                                   reduction="none")  # fmt: skip
            out.append(loss.view(x.shape[0], -1).mean(1))
    return torch.cat(out).numpy()


def main() -> int:
    torch.set_num_threads(1)
    corpus = load_corpus()
    data = torch.frombuffer(bytearray(corpus.train), dtype=torch.uint8).long()
    windows = ByteWindows(corpus.validation, sweep.SEQ_LEN)
    n, used = len(windows), min(sweep.VALIDATION_WINDOWS, len(windows))
    print(f"validation split: {n} windows of {sweep.SEQ_LEN} bytes; the sweep scores on {used}")
    scores = {s: window_losses(trained(*s, data), windows) for s in SETTINGS}
    rng = np.random.default_rng(0)
    offsets = rng.integers(0, n - BLOCK, DRAWS)
    print(f"\n{'pair (batch, k)':<22} {'first 256':>10} {f'first {used}':>11} {'all':>8} "
          f"{'sd, 256':>8} {f'sd, {used} (est.)':>16}")  # fmt: skip
    for i, a in enumerate(SETTINGS):
        for b in SETTINGS[i + 1 :]:
            diff, base = scores[a] - scores[b], scores[b].mean()
            blocks = np.array([diff[o : o + BLOCK].mean() for o in offsets]) / base
            sd = blocks.std()
            print(f"{f'{a} - {b}':<22} {diff[:BLOCK].mean() / base:>+10.3%} "
                  f"{diff[:used].mean() / base:>+11.3%} {diff.mean() / base:>+8.3%} "
                  f"{sd:>8.3%} {sd * np.sqrt(BLOCK / used):>16.3%}")  # fmt: skip
    print("\nthe check's band: 0.25 % of the loss")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
