"""The memory formulas against what torch actually holds, on CPU in fp32.

Model states: the bytes of parameters, gradients and optimizer state tensors after a real
optimizer step equal the formula's. Activations: the unique storages autograd saves for the
backward (``saved_tensors_hooks``) are within 10 % of the formula, with the attention scores
kept (math attention) and not (FlashAttention), with and without full checkpointing.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.checkpoint import checkpoint

from examples.tiny_gpt import GPTConfig, TinyGPT
from mlflow_scaling.planning.memory import (
    PRECISIONS,
    Shape,
    activation_terms,
    model_state_terms,
    state_bytes,
)

FP32 = PRECISIONS["fp32"]
# (n_layer, n_head, d_model, seq_len, micro_batch): a few GPT shapes, from square to
# attention-heavy (a·s/h = 8).
SHAPES = [(2, 2, 64, 64, 4), (3, 4, 128, 128, 2), (2, 8, 256, 256, 2)]


def _model(n_layer, n_head, d_model, seq_len) -> TinyGPT:
    torch.manual_seed(0)
    return TinyGPT(GPTConfig(n_layer=n_layer, n_head=n_head, d_model=d_model, seq_len=seq_len))


def _forward(model: TinyGPT, x: torch.Tensor, *, ckpt: bool) -> torch.Tensor:
    """TinyGPT's forward, with each block checkpointed when asked."""
    pos = torch.arange(x.shape[1])
    h = model.drop(model.tok_emb(x) + model.pos_emb(pos))
    for block in model.blocks:
        h = checkpoint(block, h, use_reentrant=True) if ckpt else block(h)
    return model.head(model.ln_f(h))


def _saved_bytes(fn, exclude: set[int]) -> int:
    """Bytes of the unique storages autograd saves while ``fn`` runs (parameters excluded)."""
    seen: dict[int, int] = {}

    def pack(t):
        s = t.untyped_storage()
        seen[s.data_ptr()] = s.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    return sum(v for k, v in seen.items() if k not in exclude)


def _param_ptrs(model) -> set[int]:
    return {p.untyped_storage().data_ptr() for p in model.parameters()}


def _loss(logits, y):
    return F.cross_entropy(logits.view(-1, logits.size(-1)), y.view(-1))


@pytest.mark.parametrize("flash", [False, True], ids=["scores", "flash"])
@pytest.mark.parametrize("ckpt", [False, True], ids=["stored", "checkpointed"])
@pytest.mark.parametrize("dims", SHAPES, ids=lambda d: "L{}a{}h{}s{}b{}".format(*d))
def test_activation_bytes_within_10_percent_of_autograd(dims, ckpt, flash):
    n_layer, n_head, d_model, seq_len, b = dims
    model = _model(n_layer, n_head, d_model, seq_len)
    x = torch.randint(0, 256, (b, seq_len))
    y = torch.randint(0, 256, (b, seq_len))
    backend = SDPBackend.FLASH_ATTENTION if flash else SDPBackend.MATH
    params = _param_ptrs(model)
    with sdpa_kernel(backend):
        measured = _saved_bytes(lambda: _loss(_forward(model, x, ckpt=ckpt), y), params)
        if ckpt:  # during the backward one block is recomputed and saves its full set
            h = torch.randn(b, seq_len, d_model, requires_grad=True)
            measured += _saved_bytes(lambda: model.blocks[0](h), params | {h.data_ptr()})
    shape = Shape(n_layer, d_model, n_head, seq_len, 256)
    formula = activation_terms(shape, b, FP32, flash=flash, checkpointing=ckpt, dropout=False)
    error = abs(formula["total"] - measured) / measured
    assert error < 0.10, (formula, measured, error)


def _state_bytes_held(model, optimizer) -> tuple[int, int]:
    """(bytes of params + grads + per-parameter optimizer tensors, bytes of 0-dim counters)."""
    storages: dict[int, int] = {}
    counters = 0
    for p in model.parameters():
        for t in (p, p.grad):
            storages[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
    for state in optimizer.state.values():
        for t in state.values():
            if not torch.is_tensor(t):
                continue
            if t.dim() == 0:
                counters += t.untyped_storage().nbytes()
                continue
            storages[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
    return sum(storages.values()), counters


@pytest.mark.parametrize(
    ("name", "make"),
    [
        pytest.param("adamw", lambda ps: torch.optim.AdamW(ps, lr=1e-3), id="adamw"),
        pytest.param("sgd", lambda ps: torch.optim.SGD(ps, lr=1e-3, momentum=0.9), id="sgd"),
    ],
)
@pytest.mark.parametrize("dims", SHAPES, ids=lambda d: "L{}a{}h{}s{}".format(*d[:4]))
def test_model_state_bytes_equal_a_real_optimizer_after_a_step(dims, name, make):
    model = _model(*dims[:4])
    optimizer = make(model.parameters())
    x = torch.randint(0, 256, (1, 8))  # the states do not depend on the batch
    _loss(model(x), x).backward()
    optimizer.step()
    held, counters = _state_bytes_held(model, optimizer)
    n_params = sum(p.numel() for p in model.parameters())  # the tied head counts once
    per_param = state_bytes("fp32", name)
    terms = model_state_terms("ddp", n_params, 1, per_param, 0)
    assert terms["total"] == held
    # AdamW's step counters are one 4-byte scalar per parameter tensor; SGD keeps none.
    n_tensors = len(list(model.parameters()))
    assert counters == (4 * n_tensors if name == "adamw" else 0)
