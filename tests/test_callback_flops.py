"""FLOP accounting: the analytic count against torch's meta-device count, and the fallbacks."""

from __future__ import annotations

import warnings

import lightning as L
import pytest
import torch
from _scaling_support import (
    SEQ_LEN,
    TINY_FLOPS_PER_TOKEN,
    TINY_NON_EMBEDDING,
    TINY_TIED_HEAD,
    TINY_TOTAL,
    PaddedBytes,
    tiny_gpt,
    token_loader,
    trainer,
)
from torch import nn
from torch.utils.data import DataLoader

from examples.tiny_gpt import GPTConfig, TinyGPT
from lightning_callbacks import (
    ScalingLawCallback,
    ScalingLawWarning,
    TransformerShape,
    analytic_flops_per_token,
    count_parameters,
    infer_transformer_shape,
    measure_training_flops,
)
from mlflow_scaling.integrations.flops import relative_difference
from mlflow_scaling.tracking import schema


@pytest.mark.parametrize("tie_head", [True, False])
def test_analytic_count_agrees_with_meta_device_count_within_2_percent(tie_head: bool) -> None:
    cfg = GPTConfig(n_layer=4, n_head=8, d_model=256, seq_len=128, tie_head=tie_head)
    model = TinyGPT(cfg)
    batch = (torch.randint(0, 256, (4, cfg.seq_len)),) * 2
    shape = infer_transformer_shape(model)
    assert shape == TransformerShape(4, 8, 32, "config")

    measured = measure_training_flops(model, batch)
    analytic = analytic_flops_per_token(count_parameters(model), shape, cfg.seq_len) * 4 * 128
    assert relative_difference(analytic, measured) < 0.02
    # the meta-device run touched nothing real
    assert all(p.device.type == "cpu" and p.grad is None for p in model.parameters())


def test_tied_head_counts_once_as_embedding_but_its_matmul_is_counted() -> None:
    tied, untied = tiny_gpt(tie_head=True), tiny_gpt(tie_head=False)
    ct, cu = count_parameters(tied), count_parameters(untied)
    assert (ct.total, ct.non_embedding, ct.tied_head) == (TINY_TOTAL, TINY_NON_EMBEDDING, 256 * 32)
    assert (cu.total, cu.non_embedding, cu.tied_head) == (
        TINY_TOTAL + 256 * 32,
        TINY_NON_EMBEDDING + 256 * 32,
        0,
    )
    # the same matrix products either way: the hand count of _scaling_support
    shape = infer_transformer_shape(tied)
    assert shape == TransformerShape(2, 2, 16, "config")
    assert analytic_flops_per_token(ct, shape, SEQ_LEN) == TINY_FLOPS_PER_TOKEN
    assert analytic_flops_per_token(cu, shape, SEQ_LEN) == TINY_FLOPS_PER_TOKEN


def test_shape_from_multihead_attention_modules() -> None:
    layer = nn.TransformerEncoderLayer(d_model=64, nhead=4, batch_first=True)
    model = nn.TransformerEncoder(layer, num_layers=3, enable_nested_tensor=False)
    assert infer_transformer_shape(model) == TransformerShape(3, 4, 16, "nn.MultiheadAttention")
    assert infer_transformer_shape(nn.Linear(3, 3)) is None


class ByteMLP(L.LightningModule):
    """A next-byte model that is not a transformer: embedding, then a two-layer MLP."""

    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(256, 16)
        self.net = nn.Sequential(nn.Linear(16, 64), nn.ReLU(), nn.Linear(64, 256))

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.net(self.emb(input_ids))

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int):
        x, y = batch
        return nn.functional.cross_entropy(self(x).flatten(0, 1), y.flatten())

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_models_that_are_not_transformers_use_the_measured_count_per_shape() -> None:
    model = ByteMLP()
    assert infer_transformer_shape(model) is None
    cb = ScalingLawCallback(family="mlp", log_every_n_steps=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ScalingLawWarning)  # no run: said once, tested elsewhere
        trainer(callbacks=[cb], max_steps=2).fit(model, token_loader(2, 3))
    assert cb.flops_method.startswith("measured: torch FlopCounterMode on the meta device")
    # The counter counts matrix products: 2 FLOPs per weight forward, 4 backward.
    fpt = cb.last_metrics[schema.METRIC_FLOPS_PER_TOKEN]
    assert fpt == 6 * (16 * 64 + 64 * 256)
    assert cb.totals.flops == pytest.approx(2 * 3 * SEQ_LEN * fpt)


def test_user_flops_per_token_wins_and_is_named() -> None:
    cb = ScalingLawCallback(family="user", flops_per_token=1e6, log_every_n_steps=1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer(callbacks=[cb], max_steps=2).fit(tiny_gpt(), token_loader(2, 2))
    assert cb.flops_method == (
        "user: flops_per_token=1e+06 given to ScalingLawCallback; cross-checked on the meta device"
    )
    assert cb.totals.flops == 2 * 2 * SEQ_LEN * 1e6
    assert cb.last_metrics[schema.METRIC_FLOPS] == 2 * 2 * SEQ_LEN * 1e6
    # 1e6 is far from the measured ~2e5: a warning naming both numbers
    mismatch = [str(w.message) for w in caught if "differ by" in str(w.message)]
    assert len(mismatch) == 1
    measured = cb.last_metrics[schema.METRIC_FLOPS_PER_TOKEN_MEASURED]
    assert "1e+06" in mismatch[0] and f"{measured:.4g}" in mismatch[0]


def test_a_misread_shape_disagrees_and_warns_with_both_numbers() -> None:
    wrong = TransformerShape(n_layer=40, n_head=2, head_dim=16)
    cb = ScalingLawCallback(family="wrong", transformer_shape=wrong, flops_tolerance=0.05)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer(callbacks=[cb], max_steps=1).fit(tiny_gpt(), token_loader(1, 2))
    (message,) = [str(w.message) for w in caught if "differ by" in str(w.message)]
    analytic = cb.last_metrics[schema.METRIC_FLOPS_PER_TOKEN]
    measured = cb.last_metrics[schema.METRIC_FLOPS_PER_TOKEN_MEASURED]
    assert analytic == 6 * (TINY_NON_EMBEDDING + TINY_TIED_HEAD) + 12 * 40 * 2 * 16 * SEQ_LEN
    assert f"analytic FLOPs per token {analytic:.4g}" in message
    assert f"measured {measured:.4g}" in message


def test_throughput_and_mfu_count_the_padding_the_hardware_computed() -> None:
    lengths = [16, 3, 9, 12, 1, 16, 7, 5]
    cb = ScalingLawCallback(
        family="mfu", peak_flops_per_device=1e12, log_every_n_steps=2, log_every_seconds=None
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ScalingLawWarning)
        trainer(callbacks=[cb], max_steps=4).fit(
            tiny_gpt(), DataLoader(PaddedBytes(lengths), batch_size=2)
        )
    metrics = cb.last_metrics
    assert metrics[schema.METRIC_FLOPS] == sum(lengths) * TINY_FLOPS_PER_TOKEN
    assert metrics[schema.METRIC_FLOPS_HARDWARE] == len(lengths) * SEQ_LEN * TINY_FLOPS_PER_TOKEN
    # The last interval (steps 3 and 4): FLOPs/s over every position, tokens/s over real ones.
    positions, tokens = 4 * SEQ_LEN, sum(lengths[4:])
    assert metrics[schema.METRIC_FLOPS_PER_SECOND] / metrics[
        schema.METRIC_TOKENS_PER_SECOND
    ] == pytest.approx(positions * TINY_FLOPS_PER_TOKEN / tokens, rel=1e-12)
    assert metrics[schema.METRIC_MFU] == pytest.approx(
        metrics[schema.METRIC_FLOPS_PER_SECOND] / 1e12
    )
