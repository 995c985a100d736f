"""The plan under a data budget: for families whose runs logged their unique tokens.

When the family's ``fit.json`` has a ``data_constrained`` section with an identified law, the
plan adds ``data_budget``: at the plan's compute C (its training FLOPs) and the family's U (the
largest corpus its runs logged), :func:`~..laws.data_constrained.allocate_with_unique_tokens`
picks the model size N that minimises L(N, D = C/(6N), U) under the data-constrained law, with
its tokens D, epochs D/U, loss, and the loss given up against unlimited fresh data (the
fresh-data optimum at the same C). The plan's own target, memory and GPUs are unchanged: this
says what the same compute would buy on this corpus, and whether it needs more epochs than are
worth training (1 + R*_D·ln 10). Without the section the plan is as before (no key).
"""

from __future__ import annotations

import math

from ..laws.data_constrained import DataConstrainedLaw, allocate_with_unique_tokens

_LAW_KEYS = ("E", "A", "B", "alpha", "beta", "r_star_d", "r_star_n")


def family_data_budget(doc: dict, flops: float) -> dict | None:
    """``data_budget`` for a plan of ``flops`` training FLOPs (module docstring); None when the
    family has no ``data_constrained`` section; ``{"applicable": False, "reason"}`` when its
    law is missing or not identified."""
    section = doc.get("data_constrained")
    if not isinstance(section, dict):
        return None
    if section.get("error"):
        return {"applicable": False, "reason": str(section["error"])}
    if not section.get("identified"):
        return {"applicable": False, "reason": "no run repeats its data: the repetition terms "
                "are not identified"}  # fmt: skip
    try:
        params = section["params"]
        law = DataConstrainedLaw(**{k: float(params[k]) for k in _LAW_KEYS})
        unique = float(section["unique_tokens"])
        allocation = allocate_with_unique_tokens(law, flops, unique)
    except (KeyError, TypeError, ValueError) as exc:
        return {"applicable": False, "reason": f"the family's data_constrained law cannot "
                f"be used: {type(exc).__name__}: {exc}"}  # fmt: skip
    worth = law.epochs_worth_tenth()
    return {
        "applicable": True,
        **allocation.to_dict(),
        "epochs_worth_tenth": worth,
        "more_than_worth_training": bool(allocation.epochs > worth),
        "r_star_d": law.r_star_d,
        "source": "the family's data_constrained law at the plan's FLOPs and its unique tokens "
        "(C = 6ND)",
    }


def data_budget_lines(plan: dict) -> list[str]:
    """The plan's data-budget lines (none without the key)."""
    b = plan.get("data_budget")
    if not b:
        return []
    if not b.get("applicable"):
        return [f"under the data budget: not applicable ({b.get('reason')})"]
    beyond = " (more than worth training)" if b["more_than_worth_training"] else ""
    worth = "∞" if math.isinf(b["epochs_worth_tenth"]) else f"{b['epochs_worth_tenth']:.3g}"
    return [
        f"under the data budget (U = {b['unique_tokens']:.4g} unique tokens, C = "
        f"{b['flops']:.4g} FLOPs): best N = {b['n_opt']:.4g}, D = {b['d_opt']:.4g} tokens = "
        f"{b['epochs']:.3g} epochs{beyond}; one more epoch is worth < 10 % after {worth}",
        f"  loss {b['loss']:.4g} against {b['unlimited_loss']:.4g} with unlimited fresh data "
        f"(N = {b['unlimited_n_opt']:.4g}, D = {b['unlimited_d_opt']:.4g}): "
        f"{b['loss_given_up']:.4g} given up",
    ]
