"""Bytes per GPU of training a transformer: model states, activations and buffers.

Model states (bytes per parameter; Rajbhandari et al. 2020, "ZeRO", §3 and Fig. 1)
    mixed precision (bf16 or fp16 compute) with AdamW: the weights the forward reads (2), their
    gradients (2), fp32 master weights (4) and Adam's m and v in fp32 (8): 16 bytes, of which
    K = 12 are the optimizer's. fp32 training has no master copy: 4 + 4 + 8. ``adamw8bit`` keeps
    m and v in int8 (2; the per-block scales add under 2 % and are left out), ``sgd`` one fp32
    momentum buffer (4). Each strategy divides part of these by the data-parallel degree Nd:

    ==============  =====================================================
    ``ddp``         nothing: (w + g + K)·N on every GPU
    ``zero1``       the optimizer part K (master weights and states)
    ``zero2``       K and the gradients
    ``zero3``       everything, plus the largest layer gathered whole: its weights and
                    gradients in the compute dtype (2 + 2 bytes per parameter in bf16)
    ``zero3_offload``  ZeRO-3 with parameters and optimizer on CPU: the GPU keeps the
                    gathered layer only; the rest lives in CPU memory (per node)
    ==============  =====================================================

    ``accounting="deepspeed"`` counts as DeepSpeed's estimators do
    (``estimate_zero2/zero3_model_states_mem_needs``): the optimizer step also reads an fp32
    copy of the gradient partition (4 bytes, sharded with K); under ZeRO-1/2 the compute-dtype
    weights and gradients stay whole on every GPU (4 bytes); under ZeRO-3 the compute-dtype
    gradients are transient (reduce-scattered as they appear) and not counted.

Activations per micro-batch (Korthikanti et al. 2022, "Reducing Activation Recomputation in
Large Transformer Models", §4.1), for a GPT block with sequence s, micro-batch b, width h,
a heads and e bytes per activation value (2 in bf16):
    saved per layer = s·b·h·(16·e + 2·[dropout]) + a·s²·b·(e + [dropout]·(1 + e))
    which is their s·b·h·(34 + 5·a·s/h) at e = 2 with dropout. The 16·e are the inputs of the
    two LayerNorms (2e), the QKV input (e), Q, K, V (3e), the output projection's input (e),
    the MLP's two inputs and the GELU input (e + 4e + 4e); dropout keeps a 1-byte mask after
    attention and after the MLP. The a·s² terms are the softmax output (e), its dropout mask
    (1) and the dropped-out scores (e): FlashAttention keeps none of them (it recomputes the
    scores from Q, K, V and a per-row log-sum-exp of a·s·b fp32 values, left out).
    Full activation checkpointing (recompute every layer) keeps only each layer's input
    (e·s·b·h) and, during the backward, one layer's full set again.
    Outside the layers: the final LayerNorm's input and the head's input (2·e·s·b·h), the
    embedding dropout mask, and the fp32 log-softmax the loss saves (4·s·b·V).

Buffers
    the logits in the compute dtype and the fp32 gradient of the loss over them during the
    backward ((e + 4)·s·b·V), a fixed allowance for the CUDA context, communication buffers and
    the allocator's workspace (:data:`FIXED_OVERHEAD_BYTES`), and :data:`FRAGMENTATION` of
    everything else for temporaries and allocator fragmentation.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

PRECISIONS = {"bf16-mixed": 2, "fp16-mixed": 2, "fp32": 4}
"""Bytes of one activation (compute) value under each precision."""
OPTIMIZERS = ("adamw", "adamw8bit", "sgd")
STRATEGIES = ("ddp", "zero1", "zero2", "zero3", "zero3_offload")
ACCOUNTINGS = ("zero", "deepspeed")
MASTER_BYTES = 4
GRAD_FP32_BYTES = 4
LOSS_BYTES = 4
"""The loss is computed in fp32 (autocast runs log-softmax in fp32)."""
FIXED_OVERHEAD_BYTES = 2**30
"""CUDA context, NCCL buffers and allocator workspace: 1 GiB per GPU."""
FRAGMENTATION = 0.10
"""Temporaries and allocator fragmentation: 10 % on top of states, activations and logits."""


def _optimizer_bytes(optimizer: str) -> float:
    if optimizer == "adamw":
        return 8.0  # m and v, fp32
    if optimizer == "adamw8bit":
        return 2.0  # m and v, int8 (block-wise fp32 scales left out)
    if optimizer == "sgd":
        return 4.0  # momentum, fp32
    raise ValueError(f"unknown optimizer {optimizer!r}; expected one of {OPTIMIZERS}")


def _compute_bytes(precision: str) -> int:
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; expected one of {tuple(PRECISIONS)}")
    return PRECISIONS[precision]


@dataclass(frozen=True)
class StateBytes:
    """Bytes per parameter of each model-state term."""

    weights: float
    grads: float
    master: float
    optimizer: float
    grad_fp32: float = 0.0

    @property
    def total(self) -> float:
        return self.weights + self.grads + self.master + self.optimizer + self.grad_fp32

    def to_dict(self) -> dict:
        return {**asdict(self), "total": self.total}


def state_bytes(precision: str, optimizer: str, accounting: str = "zero") -> StateBytes:
    """Bytes per parameter for ``precision`` and ``optimizer`` (module docstring)."""
    if accounting not in ACCOUNTINGS:
        raise ValueError(f"unknown accounting {accounting!r}; expected one of {ACCOUNTINGS}")
    e = _compute_bytes(precision)
    mixed = precision != "fp32"
    return StateBytes(
        weights=e,
        grads=e,
        master=MASTER_BYTES if mixed else 0.0,
        optimizer=_optimizer_bytes(optimizer),
        grad_fp32=GRAD_FP32_BYTES if (mixed and accounting == "deepspeed") else 0.0,
    )


_SHARDED = {
    "zero": {
        "ddp": (),
        "zero1": ("master", "optimizer", "grad_fp32"),
        "zero2": ("grads", "master", "optimizer", "grad_fp32"),
        "zero3": ("weights", "grads", "master", "optimizer", "grad_fp32"),
    },
    "deepspeed": {
        "ddp": (),
        "zero1": ("master", "optimizer", "grad_fp32"),
        "zero2": ("master", "optimizer", "grad_fp32"),
        "zero3": ("weights", "master", "optimizer", "grad_fp32"),
    },
}
_TERMS = ("weights", "grads", "master", "optimizer", "grad_fp32")


def model_state_terms(
    strategy: str,
    n_params: float,
    dp: int,
    per_param: StateBytes,
    largest_layer_params: float,
    accounting: str = "zero",
    gpus_per_node: int = 8,
) -> dict[str, float]:
    """Model-state bytes on one GPU, term by term, with ``total`` (and ``cpu_per_node``).

    ``dp`` is the data-parallel degree (GPUs sharing the shards).
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; expected one of {STRATEGIES}")
    if dp < 1:
        raise ValueError(f"data-parallel degree must be at least 1, got {dp}")
    offload = strategy == "zero3_offload"
    base = "zero3" if offload else strategy
    sharded = _SHARDED[accounting][base]
    values = asdict(per_param)
    out: dict[str, float] = {}
    for term in _TERMS:
        if accounting == "deepspeed" and base == "zero3" and term == "grads":
            out[term] = 0.0  # transient: reduce-scattered into the fp32 partition
            continue
        size = values[term] * n_params
        out[term] = size / dp if term in sharded else size
    gathered = 0.0
    if base == "zero3":
        gathered = (per_param.weights + per_param.grads) * largest_layer_params
    cpu_per_node = 0.0
    if offload:
        nodes = max(1, math.ceil(dp / gpus_per_node))
        cpu_per_node = sum(out.values()) * dp / nodes
        out = dict.fromkeys(_TERMS, 0.0)
    out["gathered_layer"] = gathered
    out["total"] = sum(out[t] for t in _TERMS) + gathered
    out["cpu_per_node"] = cpu_per_node
    return out


@dataclass(frozen=True)
class Shape:
    """A GPT's shape: layers, width, heads, context length and vocabulary."""

    n_layer: int
    d_model: int
    n_head: int
    seq_len: int
    vocab: int

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if not (isinstance(value, int) and value >= 1):
                raise ValueError(f"{name} must be a positive integer, got {value!r}")

    @property
    def block_params(self) -> int:
        """Weights of one block: QKV 3h², output h², MLP 8h² (biases and norms left out)."""
        return 12 * self.d_model**2

    @property
    def non_embedding_params(self) -> int:
        return self.n_layer * self.block_params

    @property
    def embedding_params(self) -> int:
        return self.vocab * self.d_model

    @property
    def largest_layer_params(self) -> int:
        """The largest module ZeRO-3 gathers at once: one block or the embedding."""
        return max(self.block_params, self.embedding_params)

    def to_dict(self) -> dict:
        return asdict(self)


ASPECT_RATIO = 128
"""Width per layer of a derived shape (d_model / n_layer, as in Llama 2 7B: 4096 / 32)."""
HEAD_DIM = 128
WIDTH_MULTIPLE = 128


def derive_shape(
    n_params: float, *, seq_len: int, vocab: int, non_embedding: bool = False
) -> tuple[Shape, str]:
    """A shape for ``n_params`` by a stated rule, and the rule in words.

    d_model = (ASPECT_RATIO · N_non_embedding / 12)^(1/3) rounded to a multiple of 128 (at
    least 128), n_head = d_model / 128, n_layer = N_non_embedding / (12 · d_model²) rounded (at
    least 1). ``n_params`` counts embeddings too unless ``non_embedding``.
    """
    if not (math.isfinite(n_params) and n_params > 0):
        raise ValueError(f"parameter count must be positive and finite, got {n_params!r}")
    core = n_params
    for _ in range(4):  # the embedding's share depends on the width: settle it
        width = (ASPECT_RATIO * max(core, 1.0) / 12) ** (1 / 3)
        d = max(WIDTH_MULTIPLE, int(round(width / WIDTH_MULTIPLE)) * WIDTH_MULTIPLE)
        core = n_params if non_embedding else max(n_params - vocab * d, 12.0 * d * d)
    n_layer = max(1, int(round(core / (12 * d * d))))
    rule = (
        f"derived: d_model = ({ASPECT_RATIO}·N_non_embedding/12)^(1/3) to a multiple of "
        f"{WIDTH_MULTIPLE}, head_dim {HEAD_DIM}, n_layer = N_non_embedding/(12·d_model²); "
        f"N counted {'without' if non_embedding else 'with'} the embedding"
    )
    return Shape(n_layer, d, max(1, d // HEAD_DIM), seq_len, vocab), rule


def layer_activation_bytes(
    shape: Shape, micro_batch: int, e: int, *, flash: bool, dropout: bool
) -> float:
    """Bytes one layer saves for the backward (Korthikanti et al. 2022; module docstring)."""
    s, b, h, a = shape.seq_len, micro_batch, shape.d_model, shape.n_head
    per_token = s * b * h * (16 * e + 2 * int(dropout))
    scores = 0 if flash else a * s * s * b * (e + int(dropout) * (1 + e))
    return float(per_token + scores)


def activation_terms(
    shape: Shape,
    micro_batch: int,
    e: int,
    *,
    flash: bool,
    checkpointing: bool,
    dropout: bool,
) -> dict[str, float]:
    """Saved activation bytes of one micro-batch, term by term, with ``total``."""
    s, b, h, v = shape.seq_len, micro_batch, shape.d_model, shape.vocab
    layer = layer_activation_bytes(shape, micro_batch, e, flash=flash, dropout=dropout)
    if checkpointing:
        layers = shape.n_layer * e * s * b * h  # each layer's input
        recompute = layer  # one layer's full set while it is recomputed in the backward
    else:
        layers, recompute = shape.n_layer * layer, 0.0
    out = {
        "per_layer": layer,
        "layers": float(layers),
        "recomputed_layer": float(recompute),
        "head": float(2 * e * s * b * h + int(dropout) * s * b * h),
        "loss": float(LOSS_BYTES * s * b * v),
    }
    out["total"] = out["layers"] + out["recomputed_layer"] + out["head"] + out["loss"]
    return out


def logits_bytes(shape: Shape, micro_batch: int, e: int) -> float:
    """The logits (compute dtype) and the fp32 gradient of the loss over them."""
    return float((e + LOSS_BYTES) * shape.seq_len * micro_batch * shape.vocab)


def buffer_terms(
    model_states: float, activations: float, logits: float, fragmentation: float = FRAGMENTATION
) -> dict[str, float]:
    """The buffers term by term: logits, fixed overhead, fragmentation; with ``total``."""
    frag = fragmentation * (model_states + activations + logits)
    out = {"logits": logits, "fixed": float(FIXED_OVERHEAD_BYTES), "fragmentation": frag}
    out["total"] = logits + FIXED_OVERHEAD_BYTES + frag
    return out


def max_micro_batch(
    memory_bytes: float,
    model_states: float,
    per_sample: float,
    fragmentation: float = FRAGMENTATION,
) -> int:
    """The largest b with states + b·per_sample + buffers ≤ memory (0 when none fits).

    ``per_sample`` is activations plus logits of one sequence; every such term is linear in b.
    """
    room = (memory_bytes - FIXED_OVERHEAD_BYTES) / (1 + fragmentation) - model_states
    if room <= 0 or per_sample <= 0:
        return 0
    return int(math.floor(room / per_sample + 1e-9))
