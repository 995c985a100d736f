"""Helpers for the callback tests: tiny data, quiet Trainers, reading runs back."""

from __future__ import annotations

import uuid
from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset, TensorDataset

from examples.tiny_gpt import IGNORE_INDEX, GPTConfig, TinyGPT

SEQ_LEN = 16

# The tiny GPT of tiny_gpt() counted by hand (n_layer=2, n_head=2, d_model=32, seq_len=16,
# vocab=256, biases, head tied to the token embedding), independently of the code under test.
_D, _V = 32, 256
_BLOCK = (
    2 * _D  # ln1 weight and bias
    + (_D * 3 * _D + 3 * _D)  # qkv
    + (_D * _D + _D)  # attention output projection
    + 2 * _D  # ln2
    + (_D * 4 * _D + 4 * _D)  # mlp in
    + (4 * _D * _D + _D)  # mlp out
)
TINY_NON_EMBEDDING = 2 * _BLOCK + 2 * _D  # two blocks and the final LayerNorm: 25,472
TINY_EMBEDDING = _V * _D + SEQ_LEN * _D  # token and position tables: 8,704
TINY_TIED_HEAD = _V * _D  # the head is the token table: 8,192
TINY_TOTAL = TINY_NON_EMBEDDING + TINY_EMBEDDING  # 34,176 (the tied head counts once)
# 6 FLOPs per matmul parameter and token (non-embedding + the tied head's matmul), plus the
# attention scores and values: 12 * n_layer * n_head * head_dim * seq_len.
TINY_FLOPS_PER_TOKEN = 6 * (TINY_NON_EMBEDDING + TINY_TIED_HEAD) + 12 * 2 * 2 * 16 * SEQ_LEN
assert (TINY_TOTAL, TINY_FLOPS_PER_TOKEN) == (34_176, 214_272)


def tiny_gpt(**overrides: Any) -> TinyGPT:
    cfg = {"n_layer": 2, "n_head": 2, "d_model": 32, "seq_len": SEQ_LEN, **overrides}
    return TinyGPT(GPTConfig(**cfg))


def token_loader(
    n_batches: int, batch_size: int, seq_len: int = SEQ_LEN, seed: int = 0
) -> DataLoader:
    """Unpadded ``(input_ids, labels)`` batches of random bytes."""
    g = torch.Generator().manual_seed(seed)
    data = torch.randint(0, 256, (n_batches * batch_size, seq_len + 1), generator=g)
    return DataLoader(TensorDataset(data[:, :-1], data[:, 1:]), batch_size=batch_size)


class PaddedBytes(Dataset):
    """Mapping samples with right padding: ``lengths[i]`` real tokens out of ``seq_len``."""

    def __init__(self, lengths: list[int], seq_len: int = SEQ_LEN, seed: int = 0) -> None:
        g = torch.Generator().manual_seed(seed)
        self.samples = []
        for n in lengths:
            ids = torch.randint(0, 256, (seq_len,), generator=g)
            mask = (torch.arange(seq_len) < n).long()
            ids = ids * mask  # pad id 0
            labels = torch.full((seq_len,), IGNORE_INDEX)
            labels[: n - 1] = ids[1:n]  # next byte, only where both positions are real
            self.samples.append({"input_ids": ids, "attention_mask": mask, "labels": labels})

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return self.samples[i]


def trainer(**kwargs: Any) -> L.Trainer:
    """A quiet CPU Trainer; keyword arguments override the defaults."""
    defaults: dict[str, Any] = {
        "accelerator": "cpu",
        "devices": 1,
        "logger": False,
        "enable_checkpointing": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "num_sanity_val_steps": 0,
        "limit_val_batches": 0,
    }
    defaults.update(kwargs)
    return L.Trainer(**defaults)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def history(client: Any, run_id: str, key: str) -> list[tuple[int, float]]:
    """A metric's ``(step, value)`` pairs, sorted by step then time."""
    points = client.get_metric_history(run_id, key)
    return [(m.step, m.value) for m in sorted(points, key=lambda m: (m.step, m.timestamp))]
