"""A training plan: for each memory strategy, whether it fits, its micro-batch and GPU count.

Strategies: ``ddp``, ``zero1``, ``zero2``, ``zero3`` and ``zero3_offload`` (see
:mod:`.memory`), each with and without full activation checkpointing and with and without
FlashAttention: 20 rows. Parallelism is pure data parallelism over K GPUs (no tensor or
pipeline parallelism), so each GPU runs whole micro-batches of whole sequences and the global
batch has at least K sequences.

For each row at the cluster size K (``--gpus``, else the smallest GPU count at which some
strategy without offload fits):

* ``memory_per_gpu`` at the micro-batch used: model states + activations + buffers;
* ``max_micro_batch``: the largest b that fits (0: none fits);
* ``grad_accum``: micro-batches per optimizer step so that K · b · grad_accum sequences reach
  the global batch, with b = min(max_micro_batch, the sequences each GPU needs per step);
* ``min_gpus``: the fewest GPUs (data-parallel degree) at which a micro-batch of 1 fits,
  or None when even one sequence per GPU of the global batch does not fit.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .compute import FlopsPerToken, ceil_div, cost, gpu_hours, wall_days
from .data_budget import data_budget_lines
from .gpus import Accelerator
from .memory import (
    FIXED_OVERHEAD_BYTES,
    FRAGMENTATION,
    PRECISIONS,
    STRATEGIES,
    Shape,
    activation_terms,
    buffer_terms,
    logits_bytes,
    max_micro_batch,
    model_state_terms,
    state_bytes,
)

PLAN_SCHEMA = "mlflow-scaling/plan"
PLAN_VERSION = 1
DEFAULT_MFU = 0.40
DEFAULT_GLOBAL_BATCH_TOKENS = 4 * 2**20
"""About 4M tokens per optimizer step, as Llama 2 used."""
STANDALONE_CHECK = {
    "verdict": None,
    "criteria": [],
    "failing": [],
    "ignored": False,
    "source": "standalone: no family",
}
RECOMPUTE_FACTOR = 4.0 / 3.0
"""Full checkpointing runs each layer's forward twice: 8·N FLOPs per token instead of 6·N."""


@dataclass(frozen=True)
class PlanInputs:
    """Everything a plan is computed from."""

    n_params: float
    tokens: float
    shape: Shape
    shape_source: str
    flops_per_token: FlopsPerToken
    gpu: Accelerator
    mfu: float
    mfu_source: str
    gpus: int | None = None
    precision: str = "bf16-mixed"
    optimizer: str = "adamw"
    global_batch_tokens: float = DEFAULT_GLOBAL_BATCH_TOKENS
    gpu_hour_price: float | None = None
    accounting: str = "zero"
    dropout: bool = False
    gpus_per_node: int = 8
    target_sources: dict = field(default_factory=dict)
    target_params: float | None = None
    """N as the family counts it (default ``n_params``, the parameters held in memory)."""
    global_batch_source: str = ""
    hparams: dict | None = None
    """The family's learning rate and batch for the target (:mod:`.batch`), when it swept them."""

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ValueError(
                f"unknown precision {self.precision!r}; expected one of {tuple(PRECISIONS)}"
            )
        if not (0 < self.mfu <= 1):
            raise ValueError(f"MFU must lie in (0, 1], got {self.mfu!r}")
        if self.gpus is not None and self.gpus < 1:
            raise ValueError(f"--gpus must be at least 1, got {self.gpus}")
        if self.gpus is not None and self.gpus > self.global_sequences:
            raise ValueError(
                f"--gpus {self.gpus} is more than the {self.global_sequences} sequences of a "
                f"global batch ({self.global_batch_tokens:g} tokens / seq_len "
                f"{self.shape.seq_len}); raise --global-batch-tokens"
            )

    @property
    def global_sequences(self) -> int:
        return max(1, int(round(self.global_batch_tokens / self.shape.seq_len)))

    @property
    def flops(self) -> float:
        return self.flops_per_token.value * self.tokens


def _row_at(inp: PlanInputs, strategy: str, ckpt: bool, flash: bool, dp: int) -> dict:
    e = PRECISIONS[inp.precision]
    per_param = state_bytes(inp.precision, inp.optimizer, inp.accounting)
    states = model_state_terms(
        strategy, inp.n_params, dp, per_param, inp.shape.largest_layer_params,
        inp.accounting, inp.gpus_per_node,
    )  # fmt: skip
    options = {"flash": flash, "checkpointing": ckpt, "dropout": inp.dropout}
    per_sample = activation_terms(inp.shape, 1, e, **options)["total"] + logits_bytes(
        inp.shape, 1, e
    )
    b_max = max_micro_batch(inp.gpu.memory_bytes, states["total"], per_sample)
    per_rank = ceil_div(inp.global_sequences, dp)
    b = max(1, min(b_max, per_rank))
    act = activation_terms(inp.shape, b, e, **options)
    logits = logits_bytes(inp.shape, b, e)
    buffers = buffer_terms(states["total"], act["total"], logits)
    return {
        "states": states,
        "activations": act,
        "buffers": buffers,
        "micro_batch": b,
        "max_micro_batch": b_max,
        "grad_accum": ceil_div(per_rank, b) if b_max >= 1 else None,
        "fits": b_max >= 1,
    }


def _min_gpus(inp: PlanInputs, strategy: str, ckpt: bool, flash: bool) -> int | None:
    """The fewest data-parallel GPUs at which one sequence per GPU fits (binary search:
    model states per GPU only fall as GPUs are added)."""
    hi = inp.global_sequences
    if not _row_at(inp, strategy, ckpt, flash, hi)["fits"]:
        return None
    lo = 1
    while lo < hi:
        mid = (lo + hi) // 2
        if _row_at(inp, strategy, ckpt, flash, mid)["fits"]:
            hi = mid
        else:
            lo = mid + 1
    return lo


def _variants():
    for strategy in STRATEGIES:
        for ckpt in (False, True):
            for flash in (False, True):
                yield strategy, ckpt, flash


def _preference(row: dict) -> tuple:
    """Least costly first: no offload, no recomputation, FlashAttention, least sharding."""
    return (
        row["name"] == "zero3_offload",
        row["activation_checkpointing"],
        not row["flash_attention"],
        STRATEGIES.index(row["name"]),
    )


def build_plan(inp: PlanInputs, check: dict | None = None) -> dict:
    """The plan as a JSON-ready dict (see the module docstring and the README)."""
    min_gpus = {v: _min_gpus(inp, *v) for v in _variants()}
    k, k_source = _gpu_count(inp, min_gpus)
    rows = _strategy_rows(inp, min_gpus, k)
    fitting = sorted((r for r in rows if r["fits"]), key=_preference)
    hours = gpu_hours(inp.flops, inp.gpu.peak_flops, inp.mfu)
    per_param = state_bytes(inp.precision, inp.optimizer, inp.accounting)
    return {
        "schema": PLAN_SCHEMA,
        "version": PLAN_VERSION,
        "target": {
            "params": inp.target_params or inp.n_params,
            "tokens": inp.tokens,
            "params_in_memory": inp.n_params,
            **inp.target_sources,
        },
        "shape": {**inp.shape.to_dict(), "source": inp.shape_source},
        "flops": inp.flops,
        "flops_per_token": inp.flops_per_token.value,
        "flops_method": inp.flops_per_token.method,
        "gpu": inp.gpu.to_dict(),
        "mfu": {"value": inp.mfu, "source": inp.mfu_source},
        "gpus": k,
        "gpus_source": k_source,
        "gpu_hours": hours,
        "days": None if k is None else wall_days(hours, k),
        "gpu_hour_price": inp.gpu_hour_price,
        "cost": cost(hours, inp.gpu_hour_price),
        "precision": inp.precision,
        "optimizer": inp.optimizer,
        "accounting": inp.accounting,
        "dropout": inp.dropout,
        "global_batch_tokens": inp.global_batch_tokens,
        "global_batch_sequences": inp.global_sequences,
        "global_batch_source": inp.global_batch_source,
        "optimizer_steps": inp.tokens / inp.global_batch_tokens,
        **({"hparams": inp.hparams} if inp.hparams else {}),
        "bytes_per_param": per_param.to_dict(),
        "allowances": {"fixed_bytes": FIXED_OVERHEAD_BYTES, "fragmentation": FRAGMENTATION},
        "check": check or dict(STANDALONE_CHECK),
        "recommended": None if not fitting else _label(fitting[0]),
        "strategies": rows,
    }


def _gpu_count(inp: PlanInputs, min_gpus: dict) -> tuple[int | None, str]:
    """The GPUs to plan for, and why: as given, else the fewest at which a strategy fits
    (one without offload first)."""
    if inp.gpus is not None:
        return inp.gpus, "given (--gpus)"
    no_offload = [g for (s, _, _), g in min_gpus.items() if g and s != "zero3_offload"]
    anything = [g for g in min_gpus.values() if g]
    if no_offload:
        return min(no_offload), "the fewest GPUs at which a strategy without offload fits"
    if anything:
        return min(anything), "the fewest GPUs at which any strategy fits (offload)"
    return None, "nothing fits at any data-parallel size up to the global batch"


def _strategy_rows(inp: PlanInputs, min_gpus: dict, k: int | None) -> list[dict]:
    """Every strategy (ZeRO stage, checkpointing, FlashAttention) at ``k`` GPUs."""
    rows = []
    for strategy, ckpt, flash in _variants():
        at = _row_at(inp, strategy, ckpt, flash, k or inp.global_sequences)
        states, act, buf = at["states"], at["activations"], at["buffers"]
        rows.append(
            {
                "name": strategy,
                "activation_checkpointing": ckpt,
                "flash_attention": flash,
                "memory_per_gpu": {
                    "model_states": states["total"],
                    "activations": act["total"],
                    "buffers": buf["total"],
                    "total": states["total"] + act["total"] + buf["total"],
                },
                "terms": {"model_states": states, "activations": act, "buffers": buf},
                "fits": bool(at["fits"] and k is not None),
                "micro_batch": at["micro_batch"],
                "max_micro_batch": at["max_micro_batch"],
                "grad_accum": at["grad_accum"],
                "min_gpus": min_gpus[(strategy, ckpt, flash)],
                "hardware_flops_factor": RECOMPUTE_FACTOR if ckpt else 1.0,
            }
        )
    return rows


def _label(row: dict) -> str:
    parts = [row["name"]]
    parts.append("checkpointing" if row["activation_checkpointing"] else "no checkpointing")
    parts.append("flash" if row["flash_attention"] else "no flash")
    return ", ".join(parts)


# --- the readable table ---------------------------------------------------------------------


def _gb(x: float | None) -> str:
    return "-" if x is None else f"{x / 1e9:.1f}"


STRATEGY_COLUMNS = ("strategy", "ckpt", "flash", "weights", "grads", "optim", "gather",
                    "states", "act/lay", "acts", "logits", "buffers", "total", "fits", "b_max",
                    "accum", "min_gpus")  # fmt: skip
LEFT_ALIGNED = {"strategy", "ckpt", "flash", "fits"}


def _strategy_cells(r: dict) -> list[str]:
    s, a, b = r["terms"]["model_states"], r["terms"]["activations"], r["terms"]["buffers"]
    optim = s["master"] + s["optimizer"] + s["grad_fp32"]
    yes = {True: "yes", False: "no"}
    return [
        r["name"], yes[r["activation_checkpointing"]], yes[r["flash_attention"]],
        _gb(s["weights"]), _gb(s["grads"]), _gb(optim), _gb(s["gathered_layer"]),
        _gb(s["total"]), _gb(a["per_layer"]), _gb(a["total"]), _gb(b["logits"]),
        _gb(b["total"]), _gb(r["memory_per_gpu"]["total"]), yes[bool(r["fits"])],
        str(r["max_micro_batch"]), "-" if r["grad_accum"] is None else str(r["grad_accum"]),
        "-" if r["min_gpus"] is None else str(r["min_gpus"]),
    ]  # fmt: skip


def _strategy_table(strategies: list[dict]) -> list[str]:
    """One line per strategy; every column as wide as its widest cell, one space apart."""
    rows = [list(STRATEGY_COLUMNS)] + [_strategy_cells(r) for r in strategies]
    widths = [max(len(row[i]) for row in rows) for i in range(len(STRATEGY_COLUMNS))]
    return [
        " ".join(
            cell.ljust(w) if name in LEFT_ALIGNED else cell.rjust(w)
            for cell, w, name in zip(row, widths, STRATEGY_COLUMNS, strict=True)
        ).rstrip()
        for row in rows
    ]


def format_plan(plan: dict) -> str:
    """The plan as text: the compute, the arithmetic per term, one line per strategy."""
    gpu, mfu, t = plan["gpu"], plan["mfu"], plan["target"]
    shape = plan["shape"]
    bpp = plan["bytes_per_param"]
    lines = []
    check = plan["check"]
    if check.get("verdict") is not None:
        state = check["verdict"].upper() + (
            " (ignored: --ignore-check)" if check["ignored"] else ""
        )
        lines.append(f"scaling check: {state}")
    lines += [
        f"target: N = {t['params']:.4g} parameters, D = {t['tokens']:.4g} tokens",
        f"shape: {shape['n_layer']} layers, d_model {shape['d_model']}, {shape['n_head']} heads, "
        f"seq_len {shape['seq_len']}, vocab {shape['vocab']}   ({shape['source']})",
        f"FLOPs: {plan['flops']:.4g} = {plan['flops_per_token']:.4g} per token × D   "
        f"({plan['flops_method']})",
        f"GPU: {gpu['name']}, {gpu['memory_bytes'] / 2**30:.1f} GiB, peak "
        f"{gpu['peak_flops']:.4g} FLOP/s dense bf16   MFU {mfu['value']:.3f} ({mfu['source']})",
        f"GPU-hours: {plan['gpu_hours']:,.0f}"
        + (f"   cost: {plan['cost']:,.0f} at {plan['gpu_hour_price']:g}/GPU-hour"
           if plan["cost"] is not None else ""),
    ]  # fmt: skip
    if plan["gpus"] is None:
        lines.append(f"GPUs: none   ({plan['gpus_source']})")
    else:
        lines.append(
            f"on {plan['gpus']} GPUs ({plan['gpus_source']}): {plan['days']:,.1f} days   "
            f"(global batch {plan['global_batch_sequences']} sequences of {shape['seq_len']})"
        )
    lines += _hparam_lines(plan)
    lines += data_budget_lines(plan)
    lines.append(
        f"model states per parameter ({plan['precision']}, {plan['optimizer']}, "
        f"{plan['accounting']} accounting): weights {bpp['weights']:g} + grads {bpp['grads']:g}"
        f" + master {bpp['master']:g} + optimizer {bpp['optimizer']:g}"
        + (f" + fp32 grads {bpp['grad_fp32']:g}" if bpp["grad_fp32"] else "")
        + f" = {bpp['total']:g} bytes → {bpp['total'] * t['params'] / 1e9:.1f} GB unsharded"
    )
    alw = plan["allowances"]
    lines.append(
        f"buffers: logits + fp32 loss gradient, {alw['fixed_bytes'] / 2**30:g} GiB fixed, "
        f"{alw['fragmentation']:.0%} fragmentation; GB below are 1e9 bytes per GPU"
    )
    lines += ["", *_strategy_table(plan["strategies"]), ""]
    lines.append(
        "memory at the micro-batch used (the largest that fits, at most the global batch's "
        "share); act/lay: one layer at that micro-batch; checkpointing recomputes each forward "
        "(4/3 of the model FLOPs in hardware)"
    )
    if plan["recommended"]:
        lines.append(f"recommended: {plan['recommended']}")
    cpu = [r for r in plan["strategies"] if r["name"] == "zero3_offload"]
    if cpu:
        lines.append(
            f"zero3_offload keeps {_gb(cpu[0]['terms']['model_states']['cpu_per_node'])} GB of "
            "model states in each node's CPU memory"
        )
    return "\n".join(lines)


def _span(lo, hi) -> str:
    return "-" if lo is None or hi is None else f"{lo:.3g}..{hi:.3g}"


def _hparam_lines(plan: dict) -> list[str]:
    """The batch and peak learning rate from the family's sweep (none without one)."""
    h = plan.get("hparams")
    if not h:
        return []
    band = h.get("lr_band") or [None, None]
    lines = [
        f"global batch: {plan['global_batch_tokens']:.4g} tokens, "
        f"{plan['optimizer_steps']:,.0f} optimizer steps   ({plan['global_batch_source']})"
    ]
    if h.get("batch_tokens") is not None and h.get("batch_lo") is not None:
        batch_band = h.get("batch_band") or [None, None]
        lines.append(f"  the family's batch: 95 % interval {_span(h['batch_lo'], h['batch_hi'])}"
                     f", 0.25 % band {_span(*batch_band)}")  # fmt: skip
    if h.get("lr") is None:
        lines.append("peak learning rate: - (the family's sweep has no learning-rate law)")
    else:
        lines.append(
            f"peak learning rate: {h['lr']:.3g} (95 % interval {_span(h['lr_lo'], h['lr_hi'])}"
            f", 0.25 % band {_span(*band)})   (the family's {h.get('lr_law')} law: "
            f"{h['source']})"
        )
    return lines
