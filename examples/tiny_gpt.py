"""A small byte-level GPT as a LightningModule, for examples, tests and benchmarks.

nanoGPT-style and deliberately plain: token embedding + learned position embedding, pre-norm
transformer blocks with causal ``F.scaled_dot_product_attention``, a final LayerNorm and a
linear head that can share its matrix with the token embedding (``tie_head``). The vocabulary
is the 256 byte values, so any text becomes training data with ``text.encode()``.

Batches may be a pair ``(input_ids, labels)`` or a mapping with ``input_ids`` and optionally
``labels`` and ``attention_mask``. Labels equal to ``ignore_index`` (-100) carry no loss, which
is how padding is excluded; right padding needs no attention mask, since causal attention never
looks at later positions.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import Dataset

IGNORE_INDEX = -100


@dataclass(frozen=True)
class GPTConfig:
    """Shape and training settings of a :class:`TinyGPT`."""

    n_layer: int = 2
    n_head: int = 2
    d_model: int = 64
    seq_len: int = 64
    vocab: int = 256
    tie_head: bool = True
    bias: bool = True
    dropout: float = 0.0
    lr: float = 3e-3
    weight_decay: float = 0.1

    def __post_init__(self) -> None:
        if self.d_model % self.n_head != 0:
            raise ValueError(f"d_model={self.d_model} is not divisible by n_head={self.n_head}")

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_head


class CausalSelfAttention(nn.Module):
    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.n_head = cfg.n_head
        self.dropout = cfg.dropout
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model, bias=cfg.bias)
        self.proj = nn.Linear(cfg.d_model, cfg.d_model, bias=cfg.bias)

    def forward(self, x: Tensor) -> Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(x).split(d, dim=2)
        # (b, t, d) -> (b, n_head, t, head_dim)
        q, k, v = (z.view(b, t, self.n_head, d // self.n_head).transpose(1, 2) for z in (q, k, v))
        y = F.scaled_dot_product_attention(
            q, k, v, is_causal=True, dropout_p=self.dropout if self.training else 0.0
        )
        return self.proj(y.transpose(1, 2).reshape(b, t, d))


class MLP(nn.Module):
    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.fc = nn.Linear(cfg.d_model, 4 * cfg.d_model, bias=cfg.bias)
        self.out = nn.Linear(4 * cfg.d_model, cfg.d_model, bias=cfg.bias)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.drop(self.out(F.gelu(self.fc(x))))


class Block(nn.Module):
    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(cfg.d_model, bias=cfg.bias)
        self.attn = CausalSelfAttention(cfg)
        self.ln2 = nn.LayerNorm(cfg.d_model, bias=cfg.bias)
        self.mlp = MLP(cfg)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class TinyGPT(L.LightningModule):
    """A byte-level GPT; ``forward(input_ids)`` returns logits of shape (batch, time, vocab)."""

    def __init__(self, config: GPTConfig | None = None) -> None:
        super().__init__()
        self.config = config or GPTConfig()
        cfg = self.config
        self.save_hyperparameters(asdict(cfg))
        self.tok_emb = nn.Embedding(cfg.vocab, cfg.d_model)
        self.pos_emb = nn.Embedding(cfg.seq_len, cfg.d_model)
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        self.ln_f = nn.LayerNorm(cfg.d_model, bias=cfg.bias)
        self.head = nn.Linear(cfg.d_model, cfg.vocab, bias=False)
        if cfg.tie_head:
            self.head.weight = self.tok_emb.weight
        self.apply(self._init_weights)
        # GPT-2: scale the residual projections by the depth.
        for name, p in self.named_parameters():
            if name.endswith(("attn.proj.weight", "mlp.out.weight")):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * cfg.n_layer))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def forward(self, input_ids: Tensor) -> Tensor:
        t = input_ids.shape[1]
        if t > self.config.seq_len:
            raise ValueError(
                f"sequence of length {t} is longer than the model's seq_len={self.config.seq_len}"
            )
        pos = torch.arange(t, device=input_ids.device)
        x = self.drop(self.tok_emb(input_ids) + self.pos_emb(pos))
        for block in self.blocks:
            x = block(x)
        return self.head(self.ln_f(x))

    @staticmethod
    def split_batch(batch: Any) -> tuple[Tensor, Tensor]:
        """``(input_ids, labels)`` from a pair or from a mapping with ``input_ids``/``labels``."""
        if isinstance(batch, Mapping):
            input_ids = batch["input_ids"]
            labels = batch.get("labels")
            if labels is None:  # next-byte prediction within the sequence itself
                labels = torch.full_like(input_ids, IGNORE_INDEX)
                labels[:, :-1] = input_ids[:, 1:]
                if "attention_mask" in batch:
                    labels[:, :-1] = labels[:, :-1].masked_fill(
                        batch["attention_mask"][:, 1:] == 0, IGNORE_INDEX
                    )
            return input_ids, labels
        input_ids, labels = batch[0], batch[1]
        return input_ids, labels

    def loss(self, batch: Any) -> Tensor:
        input_ids, labels = self.split_batch(batch)
        logits = self(input_ids)
        return F.cross_entropy(
            logits.reshape(-1, logits.size(-1)), labels.reshape(-1), ignore_index=IGNORE_INDEX
        )

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        loss = self.loss(batch)
        self.log("train_loss", loss, prog_bar=True)
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> Tensor:
        loss = self.loss(batch)
        self.log("val_loss", loss, prog_bar=True, sync_dist=True)
        return loss

    def configure_optimizers(self) -> torch.optim.Optimizer:
        cfg = self.config
        decay = [p for p in self.parameters() if p.dim() >= 2]
        no_decay = [p for p in self.parameters() if p.dim() < 2]
        groups = [
            {"params": decay, "weight_decay": cfg.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ]
        return torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, 0.95))


class ByteWindows(Dataset):
    """Non-overlapping windows of ``seq_len + 1`` bytes as ``(input_ids, labels)`` pairs."""

    def __init__(self, data: bytes | Tensor, seq_len: int) -> None:
        if isinstance(data, bytes | bytearray):
            data = torch.frombuffer(bytearray(data), dtype=torch.uint8).long()
        if data.numel() < seq_len + 1:
            raise ValueError(
                f"{data.numel()} bytes are too few for one window of seq_len={seq_len} (+1)"
            )
        self.data = data
        self.seq_len = seq_len

    def __len__(self) -> int:
        return (self.data.numel() - 1) // self.seq_len

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor]:
        chunk = self.data[i * self.seq_len : (i + 1) * self.seq_len + 1]
        return chunk[:-1], chunk[1:]


def random_bytes(n: int, seed: int = 0) -> Tensor:
    """``n`` pseudo-random byte values (for tests and benchmarks that need no real text)."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n,), generator=g)
