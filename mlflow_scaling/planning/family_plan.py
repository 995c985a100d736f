"""Plans from the ``plan`` options: standalone (``--params N --tokens D``, no MLflow) or for a
family from its ``fit.json`` (:func:`plan_from_doc`, which the refit job calls too through
:func:`refit_plan`). The options themselves are defined once, in :func:`add_plan_options`, for
the ``plan`` command and for the refit job's ``--plan-gpu`` plans (:func:`plan_args`).
"""

from __future__ import annotations

import argparse

from ..argtypes import positive_float, positive_int
from ..inputs import check_batch_within_run, check_shape_matches, finite_or_overflow
from ..tabular import InputError
from ..tracking import schema
from .batch import choose_batch, family_hparams
from .compute import flops_per_token
from .data_budget import family_data_budget
from .family import (
    RunFacts,
    check_summary,
    family_flops_per_token,
    family_target,
    read_run_facts,
)
from .gpus import ACCELERATORS, accelerator
from .memory import ACCOUNTINGS, OPTIMIZERS, PRECISIONS, Shape, derive_shape
from .plan import DEFAULT_GLOBAL_BATCH_TOKENS, DEFAULT_MFU, PlanInputs, build_plan

DEFAULT_GPU = "h100-80gb"
DEFAULT_SEQ_LEN = 2048
DEFAULT_VOCAB = 32000


def _fraction(text: str) -> float:
    value = positive_float(text)
    if value > 1:
        raise argparse.ArgumentTypeError(f"{text!r} must lie in (0, 1]")
    return value


def _shape(args: argparse.Namespace, n: float, *, non_embedding: bool) -> tuple[Shape, str]:
    given = {"--layers": args.layers, "--d-model": args.d_model, "--heads": args.heads}
    if all(v is None for v in given.values()):
        return derive_shape(n, seq_len=args.seq_len, vocab=args.vocab, non_embedding=non_embedding)
    missing = [k for k, v in given.items() if v is None]
    if missing:
        raise InputError(
            f"give --layers, --d-model and --heads together (missing {', '.join(missing)})"
        )
    if args.d_model % args.heads:
        raise InputError(f"--d-model {args.d_model} is not divisible by --heads {args.heads}")
    shape = Shape(args.layers, args.d_model, args.heads, args.seq_len, args.vocab)
    held = shape.non_embedding_params + (0 if non_embedding else shape.embedding_params)
    given_text = f"--layers {args.layers} --d-model {args.d_model} --heads {args.heads}"
    check_shape_matches(n, held, given_text)
    return shape, "given"


def _gpu(args: argparse.Namespace):
    try:
        return accelerator(args.gpu, args.gpu_memory, args.gpu_peak_flops)
    except ValueError as exc:
        raise InputError(str(exc)) from None


def _mfu_default(args, facts: RunFacts | None) -> tuple[float, str]:
    if args.mfu is not None:
        return args.mfu, "given (--mfu)"
    if facts is not None and facts.mfu is not None:
        return facts.mfu, facts.mfu_source
    why = facts.mfu_source if facts is not None else "standalone: no family"
    return DEFAULT_MFU, f"default {DEFAULT_MFU:.2f} ({why})"


def _inputs(
    args, n_memory, tokens, shape, shape_source, fpt, mfu, sources, target_params=None,
    hparams=None,
) -> PlanInputs:  # fmt: skip
    if args.precision == "fp32" and args.gpu_peak_flops is None:
        raise InputError(
            "--precision fp32 needs --gpu-peak-flops: the GPU table holds dense bf16 peaks"
        )
    batch, batch_source = choose_batch(args.global_batch_tokens, hparams, args.seq_len,
                                       family=target_params is not None)  # fmt: skip
    check_batch_within_run(batch, tokens, args.seq_len)
    finite_or_overflow(fpt.value * tokens, "training FLOPs",
                       f"{fpt.value:.4g} FLOPs per token × {tokens:.4g} tokens")  # fmt: skip
    try:
        return PlanInputs(
            n_params=n_memory, tokens=tokens, shape=shape, shape_source=shape_source,
            flops_per_token=fpt, gpu=_gpu(args), mfu=mfu[0], mfu_source=mfu[1],
            gpus=args.gpus, precision=args.precision, optimizer=args.optimizer,
            global_batch_tokens=batch, gpu_hour_price=args.gpu_hour_price,
            accounting=args.accounting, dropout=args.dropout, gpus_per_node=args.gpus_per_node,
            target_sources=sources, target_params=target_params,
            global_batch_source=batch_source, hparams=hparams,
        )  # fmt: skip
    except ValueError as exc:
        raise InputError(str(exc)) from None


def standalone_plan(args: argparse.Namespace) -> dict:
    """The plan of ``--params N --tokens D`` (or ``--budget C``), without MLflow."""
    if args.params is None or (args.tokens is None) == (args.budget is None):
        raise InputError(
            "standalone: give --params and one of --tokens or --budget (or --experiment and "
            "--family to plan from a family)"
        )
    if args.target_params is not None or args.target_tokens is not None:
        raise InputError("--target-params/--target-tokens go with --family; use --params/--tokens")
    n = args.params
    shape, shape_source = _shape(args, n, non_embedding=False)
    fpt = flops_per_token(n, shape if shape_source == "given" else None)
    tokens = args.tokens if args.tokens is not None else args.budget / fpt.value
    sources = {
        "params_source": "given (--params, all parameters)",
        "tokens_source": "given (--tokens)" if args.tokens is not None else
        f"--budget {args.budget:g} FLOPs / FLOPs per token",
    }  # fmt: skip
    return build_plan(_inputs(args, n, tokens, shape, shape_source, fpt,
                              _mfu_default(args, None), sources))  # fmt: skip


def plan_from_doc(
    doc: dict,
    args: argparse.Namespace,
    facts: RunFacts,
    *,
    ignore_check: bool,
) -> dict:
    """The plan for a family from its ``fit.json`` (no MLflow; the refit job calls it too)."""
    if args.target_tokens is not None and args.budget is not None:
        raise InputError("give one of --target-tokens and --budget")
    target = family_target(
        doc,
        lambda n: family_flops_per_token(doc, n),
        target_params=args.target_params,
        target_tokens=args.target_tokens,
        budget=args.budget,
    )
    # The family's N follows its runs' convention: without the embedding (the callback's
    # default) memory adds it; "total" already holds it.
    shape, shape_source = _shape(args, target.params, non_embedding=not facts.n_counts_embedding)
    if facts.n_counts_embedding:
        n_memory, how = target.params, "N (the runs counted every parameter)"
    else:
        n_memory = target.params + shape.embedding_params
        how = "N + vocab·d_model (N without the embedding, the callback's default; head tied)"
    fpt = family_flops_per_token(doc, target.params)
    sources = {**target.sources, "params_in_memory_source": how}
    summary = check_summary(doc, args.target_params)
    check = {
        "verdict": summary["verdict"],
        "criteria": summary["criteria"],
        "failing": summary["failing"],
        "ignored": bool(ignore_check and summary["verdict"] != "pass"),
        "source": f"fit run {summary['fit_run_id']}, refit #{summary['refit_number']}",
    }
    hparams = family_hparams(doc, target.params, target.tokens)
    inputs = _inputs(args, n_memory, target.tokens, shape, shape_source, fpt,
                     _mfu_default(args, facts), sources, target.params, hparams)  # fmt: skip
    plan = build_plan(inputs, check=check)
    budget = family_data_budget(doc, plan["flops"])
    if budget is not None:  # only families whose runs logged their unique tokens
        plan["data_budget"] = budget
    plan["family"] = {"name": doc.get("family"), "experiment": doc.get("experiment_name")}
    return plan


def add_plan_options(p: argparse.ArgumentParser) -> None:
    """The options shared by ``plan`` (and by the refit job's plans)."""
    p.add_argument("--gpu", default=DEFAULT_GPU,
                   help=f"accelerator: {', '.join(ACCELERATORS)} (default {DEFAULT_GPU}), or "
                   "any name with --gpu-memory and --gpu-peak-flops")  # fmt: skip
    p.add_argument("--gpu-memory", type=positive_float, default=None, metavar="BYTES")
    p.add_argument("--gpu-peak-flops", type=positive_float, default=None, metavar="FLOP/S")
    p.add_argument("--gpus", type=positive_int, default=None,
                   help="plan for this many GPUs (default: the fewest that fit)")  # fmt: skip
    p.add_argument("--mfu", type=_fraction, default=None,
                   help=f"model FLOPs utilisation (default: the family's measured one, else "
                   f"{DEFAULT_MFU})")  # fmt: skip
    p.add_argument("--global-batch-tokens", type=positive_float, default=None,
                   help="global batch in tokens (default: the family's predicted batch where "
                   "its runs swept it, else " f"{DEFAULT_GLOBAL_BATCH_TOKENS})")  # fmt: skip
    p.add_argument("--precision", choices=tuple(PRECISIONS), default="bf16-mixed")
    p.add_argument("--optimizer", choices=OPTIMIZERS, default="adamw")
    p.add_argument("--gpu-hour-price", type=positive_float, default=None)
    p.add_argument("--accounting", choices=ACCOUNTINGS, default="zero",
                   help="model-state bytes as the ZeRO paper counts them (default) or as "
                   "DeepSpeed's estimators do")  # fmt: skip
    p.add_argument("--dropout", action="store_true",
                   help="count dropout masks (34 + 5·a·s/h per layer)")  # fmt: skip
    p.add_argument("--gpus-per-node", type=positive_int, default=8)
    p.add_argument("--layers", type=positive_int, default=None)
    p.add_argument("--d-model", type=positive_int, default=None)
    p.add_argument("--heads", type=positive_int, default=None)
    p.add_argument("--seq-len", type=positive_int, default=DEFAULT_SEQ_LEN)
    p.add_argument("--vocab", type=positive_int, default=DEFAULT_VOCAB)


# --- the refit job's plans -------------------------------------------------------------------


def known_gpu(text: str) -> str:
    """argparse type: a GPU name from the table."""
    name = text.strip().lower()
    if name not in ACCELERATORS:
        raise argparse.ArgumentTypeError(
            f"unknown GPU {text!r}; expected one of {', '.join(ACCELERATORS)}"
        )
    return name


def plan_gpu_setting(run) -> dict:
    """``{"plan_gpu": NAME, ...}`` from a fit run's ``scaling.plan_gpu`` tag, or {}."""
    text = "" if run is None else run.data.tags.get(schema.TAG_PLAN_GPU, "").strip()
    if not text:
        return {}
    try:
        name = known_gpu(text)
    except argparse.ArgumentTypeError as exc:
        raise InputError(f"fit run {run.info.run_id}: tag {schema.TAG_PLAN_GPU}: {exc}") from None
    return {"plan_gpu": name, "plan_gpu_from": f"tag {schema.TAG_PLAN_GPU}"}


def plan_args(**overrides) -> argparse.Namespace:
    """The ``plan`` options at their defaults (what the refit job plans with)."""
    parser = argparse.ArgumentParser(add_help=False)
    add_plan_options(parser)
    args = parser.parse_args([])
    for key, value in {"target_params": None, "target_tokens": None, "budget": None,
                       **overrides}.items():  # fmt: skip
        setattr(args, key, value)
    return args


def refit_plan(client, doc: dict, gpu: str) -> dict:
    """The plan a refit writes to ``scaling/plan.json`` (whatever the check said: the plan
    records the verdict), or ``{"error": ...}`` when the family cannot be planned yet."""
    try:
        facts = read_run_facts(client, doc["experiment_id"], doc["family"])
        return plan_from_doc(doc, plan_args(gpu=gpu), facts, ignore_check=True)
    except (InputError, ValueError) as exc:
        return {"error": str(exc), "gpu": gpu}
