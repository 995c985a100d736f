"""``mlflow-scaling plan``: GPUs, memory per GPU and days for a target model.

From a family (``--experiment E --family F``) the target, the compute axis and the MFU come from
the family's runs, and the plan is refused (exit 1) unless the family's latest scaling check
passed (``--ignore-check`` plans anyway and says so). Standalone (``--params N --tokens D``) it
needs no MLflow. Exit 2 on bad input, with one line on stderr.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from ..argtypes import params_count, positive_float, positive_int, token_count
from ..inputs import check_batch_within_run, check_shape_matches, finite_or_overflow
from ..strict_json import dumps as strict_dumps
from ..tabular import InputError
from .compute import flops_per_token
from .gpus import ACCELERATORS, accelerator
from .memory import ACCOUNTINGS, OPTIMIZERS, PRECISIONS, Shape, derive_shape
from .plan import DEFAULT_GLOBAL_BATCH_TOKENS, DEFAULT_MFU, PlanInputs, build_plan, format_plan

if TYPE_CHECKING:
    from .family import RunFacts

EXIT_OK, EXIT_REFUSED = 0, 1
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
    args, n_memory, tokens, shape, shape_source, fpt, mfu, sources, target_params=None
) -> PlanInputs:
    if args.precision == "fp32" and args.gpu_peak_flops is None:
        raise InputError(
            "--precision fp32 needs --gpu-peak-flops: the GPU table holds dense bf16 peaks"
        )
    check_batch_within_run(args.global_batch_tokens, tokens, args.seq_len)
    finite_or_overflow(fpt.value * tokens, "training FLOPs",
                       f"{fpt.value:.4g} FLOPs per token × {tokens:.4g} tokens")  # fmt: skip
    try:
        return PlanInputs(
            n_params=n_memory, tokens=tokens, shape=shape, shape_source=shape_source,
            flops_per_token=fpt, gpu=_gpu(args), mfu=mfu[0], mfu_source=mfu[1],
            gpus=args.gpus, precision=args.precision, optimizer=args.optimizer,
            global_batch_tokens=args.global_batch_tokens, gpu_hour_price=args.gpu_hour_price,
            accounting=args.accounting, dropout=args.dropout, gpus_per_node=args.gpus_per_node,
            target_sources=sources, target_params=target_params,
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
    from .family import check_summary, family_flops_per_token, family_target

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
    inputs = _inputs(args, n_memory, target.tokens, shape, shape_source, fpt,
                     _mfu_default(args, facts), sources, target.params)  # fmt: skip
    plan = build_plan(inputs, check=check)
    plan["family"] = {"name": doc.get("family"), "experiment": doc.get("experiment_name")}
    return plan


def family_plan(args: argparse.Namespace) -> tuple[dict | None, str]:
    """The plan for ``--experiment E --family F``; (None, why) when the check refuses it."""
    from ..jobs.commands import _connect, _mlflow_errors
    from ..tracking.reading import resolve_experiments
    from .family import check_summary, describe_failures, read_fit_doc, read_run_facts

    if args.params is not None or args.tokens is not None:
        raise InputError("--params/--tokens are for a standalone plan; with --family use "
                         "--target-params/--target-tokens")  # fmt: skip
    with _mlflow_errors(lambda: getattr(args, "resolved_uri", args.tracking_uri)):
        client = _connect(args)
        (experiment,) = resolve_experiments(client, [args.experiment])
        doc, _ = read_fit_doc(client, experiment, args.family)
        summary = check_summary(doc, args.target_params)
        if summary["verdict"] != "pass" and not args.ignore_check:
            at = "" if args.target_params is None else f" at N = {args.target_params:.3g}"
            return None, (
                f"family {args.family!r} did not pass its latest scaling check{at} (refit "
                f"#{summary['refit_number']}): {describe_failures(summary)}; "
                "--ignore-check plans anyway"
            )
        facts = read_run_facts(client, experiment.experiment_id, args.family)
    return plan_from_doc(doc, args, facts, ignore_check=args.ignore_check), ""


def _cmd_plan(args: argparse.Namespace) -> int:
    if (args.experiment is None) != (args.family is None):
        raise InputError("a family plan needs both --experiment and --family")
    if args.family is not None:
        plan, refusal = family_plan(args)
        if plan is None:
            print(f"mlflow-scaling plan: {refusal}", file=sys.stderr)
            return EXIT_REFUSED
    else:
        plan = standalone_plan(args)
    print(strict_dumps(plan, indent=2) if args.format == "json" else format_plan(plan))
    return EXIT_OK


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
    p.add_argument("--global-batch-tokens", type=positive_float,
                   default=float(DEFAULT_GLOBAL_BATCH_TOKENS))  # fmt: skip
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


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``plan`` to the ``mlflow-scaling`` parser."""
    p = subparsers.add_parser(
        "plan",
        help="GPUs, memory per GPU and days to train a target model (exit 1: the family's "
        "scaling check did not pass)",
    )
    p.add_argument("--tracking-uri", default=None,
                   help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else "
                   "sqlite:///mlflow.db)")  # fmt: skip
    p.add_argument("--experiment", default=None, metavar="NAME")
    p.add_argument("--family", default=None, metavar="F")
    p.add_argument("--target-params", type=params_count, default=None)
    p.add_argument("--target-tokens", type=token_count, default=None)
    p.add_argument("--params", type=params_count, default=None, help="standalone: N")
    p.add_argument("--tokens", type=token_count, default=None, help="standalone: D")
    p.add_argument("--budget", type=positive_float, default=None, metavar="C",
                   help="training FLOPs instead of tokens")  # fmt: skip
    p.add_argument("--ignore-check", action="store_true",
                   help="plan even when the family's check did not pass (recorded)")  # fmt: skip
    add_plan_options(p)
    p.add_argument("--format", choices=["table", "json"], default="table")
    p.set_defaults(handler=_cmd_plan)


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
    from ..tracking import schema

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
    from .family import read_run_facts

    try:
        facts = read_run_facts(client, doc["experiment_id"], doc["family"])
        return plan_from_doc(doc, plan_args(gpu=gpu), facts, ignore_check=True)
    except (InputError, ValueError) as exc:
        return {"error": str(exc), "gpu": gpu}
