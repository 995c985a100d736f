"""Training FLOPs per token: analytic for transformers, measured on the meta device otherwise.

Analytic convention (PaLM App. B, nanoGPT's ``estimate_mfu``, torchtitan), forward + backward:

    flops_per_token = 6 * N_matmul + 12 * n_layer * n_head * head_dim * seq_len

``N_matmul`` is the non-embedding parameter count plus a head tied to the token embedding: the
6·N rule counts 2 FLOPs per parameter per token forward and 4 backward for every parameter used
in a matrix product, and a tied head is such a product although its parameters count as
embedding. Embedding lookups cost nothing. The attention term counts the score and value
products over the full ``seq_len`` with no halving for causal masks (Megatron halves it).

Measured count: torch's ``FlopCounterMode`` around one
forward + backward of the model on the **meta device**, so nothing is computed and the model's
real parameters are untouched (``torch.func.functional_call`` swaps in meta tensors). On real
CPU tensors the counter misses scaled-dot-product attention, hence the meta device.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode

from .counting import ParamCounts, sequence_length
from .errors import ScalingLawWarning

ForwardFn = Callable[[nn.Module, Any], Any]
"""``forward_fn(model, batch)`` runs the model's forward on a batch and returns its output."""

ANALYTIC_FORMULA = "6*(N_non_embedding + tied_head) + 12*n_layer*n_head*head_dim*seq_len"

_LAYER_KEYS = ("n_layer", "n_layers", "num_layers", "num_hidden_layers")
_HEAD_KEYS = ("n_head", "n_heads", "num_heads", "num_attention_heads")
_WIDTH_KEYS = ("d_model", "n_embd", "hidden_size", "dim", "embed_dim")


@dataclass(frozen=True)
class TransformerShape:
    """What the attention term needs: layers, query heads and the width of one head."""

    n_layer: int
    n_head: int
    head_dim: int
    source: str = "given"

    def attention_flops_per_token(self, seq_len: int) -> int:
        return 12 * self.n_layer * self.n_head * self.head_dim * seq_len


def infer_transformer_shape(model: nn.Module) -> TransformerShape | None:
    """The transformer shape of ``model`` from a config it carries, or from its attention modules.

    Looked for, in order: a ``config`` attribute (dataclass, namespace or mapping) on the model
    or any submodule with a layer count (``n_layer``/``num_hidden_layers``/...), a head count
    (``n_head``/``num_attention_heads``/...) and ``head_dim`` or a width (``d_model``/``n_embd``/
    ``hidden_size``/...); the model's ``hparams``; then ``nn.MultiheadAttention`` modules.
    Returns ``None`` when the model does not look like a transformer.
    """
    for name, module in model.named_modules():
        config = getattr(module, "config", None)
        if config is not None:
            shape = _shape_from_config(config, f"{name + '.' if name else ''}config")
            if shape is not None:
                return shape
    hparams = getattr(model, "hparams", None)
    if hparams:
        shape = _shape_from_config(hparams, "hparams")
        if shape is not None:
            return shape
    attentions = [m for m in model.modules() if isinstance(m, nn.MultiheadAttention)]
    if attentions:
        widths = {(m.num_heads, m.embed_dim // m.num_heads) for m in attentions}
        if len(widths) == 1:
            ((heads, head_dim),) = widths
            return TransformerShape(len(attentions), heads, head_dim, "nn.MultiheadAttention")
    return None


def _shape_from_config(config: Any, where: str) -> TransformerShape | None:
    def get(keys: tuple[str, ...]) -> int | None:
        for key in keys:
            value = config.get(key) if isinstance(config, Mapping) else getattr(config, key, None)
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                return value
        return None

    n_layer, n_head = get(_LAYER_KEYS), get(_HEAD_KEYS)
    if n_layer is None or n_head is None:
        return None
    head_dim = get(("head_dim",))
    if head_dim is None:
        width = get(_WIDTH_KEYS)
        if width is None or width % n_head:
            return None
        head_dim = width // n_head
    return TransformerShape(n_layer, n_head, head_dim, where)


def analytic_flops_per_token(params: ParamCounts, shape: TransformerShape, seq_len: int) -> int:
    """Training FLOPs per token by the analytic convention (module docstring)."""
    return 6 * (params.non_embedding + params.tied_head) + shape.attention_flops_per_token(seq_len)


def default_forward(model: nn.Module, batch: Any) -> Any:
    """Run ``model`` on the inputs of ``batch``: ``input_ids`` of a mapping, the first element of
    a tuple/list, or the batch itself."""
    if isinstance(batch, Mapping):
        for key in ("input_ids", "tokens", "idx"):
            if isinstance(batch.get(key), Tensor):
                return model(batch[key])
        return model(**batch)
    if isinstance(batch, list | tuple):
        return model(batch[0])
    return model(batch)


def _scalar(output: Any) -> Tensor:
    """A scalar to call ``backward`` on from a model's output."""
    if isinstance(output, Tensor):
        return output.float().sum()
    if isinstance(output, Mapping):
        for key in ("logits", "loss"):
            if isinstance(output.get(key), Tensor):
                return output[key].float().sum()
        values = list(output.values())
    elif hasattr(output, "logits") and isinstance(output.logits, Tensor):
        return output.logits.float().sum()
    elif isinstance(output, list | tuple):
        values = list(output)
    else:
        values = []
    for value in values:
        if isinstance(value, Tensor) and value.is_floating_point():
            return value.float().sum()
    raise TypeError(
        f"the model's output (type {type(output).__name__}) holds no floating point tensor to "
        "differentiate; pass flops_forward_fn=... returning one"
    )


def measure_training_flops(
    model: nn.Module, batch: Any, forward_fn: ForwardFn | None = None
) -> int:
    """FLOPs of one forward + backward of ``model`` on ``batch``, counted on the meta device.

    The model's own parameters, buffers and gradients are not touched.
    """
    forward_fn = forward_fn or default_forward
    params = {
        name: torch.empty_like(p, device="meta").requires_grad_(p.requires_grad)
        for name, p in model.named_parameters()
    }
    buffers = {name: torch.empty_like(b, device="meta") for name, b in model.named_buffers()}
    meta_batch = map_tensors(batch, lambda t: torch.empty_like(t, device="meta"))

    class _Bound(nn.Module):  # functional_call needs a module whose forward takes the batch
        def __init__(self) -> None:
            super().__init__()
            self.inner = model

        def forward(self, b: Any) -> Any:
            return forward_fn(self.inner, b)

    bound = _Bound()
    state = {f"inner.{k}": v for k, v in {**params, **buffers}.items()}

    def run() -> Any:
        return torch.func.functional_call(bound, state, (meta_batch,), strict=False)

    with torch.enable_grad(), FlopCounterMode(display=False) as counter:
        _scalar(run()).backward()
    return int(counter.get_total_flops())


def map_tensors(data: Any, fn: Callable[[Tensor], Any]) -> Any:
    """``data`` with ``fn`` applied to every tensor in it (mappings, lists, tuples)."""
    if isinstance(data, Tensor):
        return fn(data)
    if isinstance(data, Mapping):
        return {k: map_tensors(v, fn) for k, v in data.items()}
    if isinstance(data, tuple) and hasattr(data, "_fields"):  # a named tuple
        return type(data)(*(map_tensors(v, fn) for v in data))
    if isinstance(data, list | tuple):
        return type(data)(map_tensors(v, fn) for v in data)
    return data


def batch_signature(batch: Any) -> Hashable:
    """Shapes and dtypes of the tensors in ``batch``: the key of a measured count."""
    out: list[tuple[tuple[int, ...], str]] = []
    map_tensors(batch, lambda t: out.append((tuple(t.shape), str(t.dtype))))
    return tuple(out)


class FlopsPerToken:
    """Training FLOPs per token for each batch, by one of four methods.

    * ``user``: a number the user gave;
    * ``analytic``: the transformer formula, per sequence length;
    * ``measured``: meta-device count per batch shape (models that are not transformers);
    * ``approximate``: 6·N_matmul when nothing else works (the attention term is missing).

    ``per_token(batch, total_tokens)`` is host-only work (shapes and dictionaries) except the
    first time a measured method meets a new batch shape.
    """

    def __init__(
        self,
        kind: str,
        method: str,
        *,
        constant: float | None = None,
        params: ParamCounts | None = None,
        shape: TransformerShape | None = None,
        default_seq_len: int | None = None,
        model: nn.Module | None = None,
        forward_fn: ForwardFn | None = None,
        max_shapes: int = 32,
    ) -> None:
        self.kind = kind
        self.method = method
        self._constant = constant
        self._params = params
        self._shape = shape
        self._default_seq_len = default_seq_len
        self._model = model
        self._forward_fn = forward_fn
        self._max_shapes = max_shapes
        self._by_key: dict[Hashable, float] = {}
        self._warned_cap = False

    def per_token(
        self, batch: Any, total_tokens: int | Tensor, seq_len: int | None = None
    ) -> float:
        """FLOPs per token of ``batch``; ``seq_len``, when known, saves looking it up."""
        if self._constant is not None:
            return self._constant
        if self.kind == "analytic":
            assert self._params is not None and self._shape is not None
            seq_len = seq_len or sequence_length(batch) or self._default_seq_len
            fpt = self._by_key.get(seq_len)
            if fpt is None:
                if seq_len is None:
                    raise ValueError("analytic FLOPs need the sequence length of the batch")
                fpt = float(analytic_flops_per_token(self._params, self._shape, seq_len))
                self._by_key[seq_len] = fpt
            return fpt
        # measured per batch shape
        key = batch_signature(batch)
        fpt = self._by_key.get(key)
        if fpt is None:
            if len(self._by_key) >= self._max_shapes:
                if not self._warned_cap:
                    self._warned_cap = True
                    warnings.warn(
                        f"more than {self._max_shapes} distinct batch shapes: FLOPs of further "
                        "shapes use the mean FLOPs per token of the measured ones",
                        ScalingLawWarning,
                        stacklevel=2,
                    )
                return sum(self._by_key.values()) / len(self._by_key)
            assert self._model is not None
            flops = measure_training_flops(self._model, batch, self._forward_fn)
            fpt = flops / max(int(total_tokens), 1)  # a host copy, once per new shape
            self._by_key[key] = fpt
        return fpt

    def seed(self, batch: Any, fpt: float) -> None:
        """Remember an already measured value for the shape of ``batch``."""
        if self.kind == "measured":
            self._by_key[batch_signature(batch)] = fpt


def relative_difference(a: float, b: float) -> float:
    """``|a - b| / max(|a|, |b|)``, 0 when both are 0."""
    scale = max(abs(a), abs(b))
    return 0.0 if scale == 0 else abs(a - b) / scale


def format_flops(x: float) -> str:
    if x == 0 or not math.isfinite(x):
        return str(x)
    return f"{x:.4g}"
