"""The global batch a plan uses, and the peak learning rate it recommends.

Given ``--global-batch-tokens``, that. Else, when the family's ``fit.json`` has an ``hparams``
section (its runs swept the learning rate and the batch) with a batch law, the family's
predicted batch at the plan's target: the refit's prediction (with its interval and 0.25 %
band) when the plan's target is the refit's, else the law evaluated at the plan's target (the
interval and band were computed at the refit's target only, and are not carried over). Else the
assumed default, as before. The learning rate comes from the same section the same way.
"""

from __future__ import annotations

import math

from ..laws.hparam_laws import law_dict_value
from ..tabular import InputError
from .plan import DEFAULT_GLOBAL_BATCH_TOKENS

GIVEN = "given (--global-batch-tokens)"


def _same(a, b) -> bool:
    return (
        isinstance(a, int | float)
        and isinstance(b, int | float)
        and math.isclose(float(a), float(b), rel_tol=1e-6)
    )


def _at(law: dict | None, n: float, d: float) -> float | None:
    if not isinstance(law, dict) or "coef" not in law:
        return None
    return float(law_dict_value(law, n, d).ravel()[0])


def family_hparams(doc: dict, n: float, d: float) -> dict | None:
    """η and B for the plan's target (N, D) from the family's ``hparams`` section; None when
    the family has no sweep (or no law)."""
    h = doc.get("hparams")
    if not isinstance(h, dict):
        return None
    laws = h.get("laws") if isinstance(h.get("laws"), dict) else {}
    preds = h.get("predictions") if isinstance(h.get("predictions"), list) else []
    pred = preds[0] if preds and isinstance(preds[0], dict) else {}
    out = {"lr_law": (laws.get("lr") or {}).get("form"),
           "batch_law": (laws.get("batch") or {}).get("form")}  # fmt: skip
    if pred and _same(pred.get("N"), n) and _same(pred.get("D"), d):
        band = pred.get("band_025") or {}
        out.update(lr=pred.get("lr"), lr_lo=pred.get("lr_lo"), lr_hi=pred.get("lr_hi"),
                   lr_band=band.get("lr"), batch_tokens=pred.get("batch_tokens"),
                   batch_lo=pred.get("batch_lo"), batch_hi=pred.get("batch_hi"),
                   batch_band=band.get("batch"),
                   source="the family's prediction at its refit's target")  # fmt: skip
    else:
        out.update(lr=_at(laws.get("lr"), n, d), lr_lo=None, lr_hi=None, lr_band=None,
                   batch_tokens=_at(laws.get("batch"), n, d), batch_lo=None, batch_hi=None,
                   batch_band=None, source="the family's laws at the plan's target (interval "
                   "and band are computed at the refit's target only)")  # fmt: skip
    if out["lr"] is None and out["batch_tokens"] is None:
        return None
    return out


def choose_batch(
    given: float | None, hparams: dict | None, seq_len: int, *, family: bool = True
) -> tuple[float, str]:
    """(global batch in tokens, where it came from): given, the family's, or the default."""
    if given is not None:
        return given, GIVEN
    batch = None if hparams is None else hparams.get("batch_tokens")
    if batch is None:
        why = "no learning-rate/batch sweep" if hparams is None else "its sweep has no batch law"
        if not family:
            return float(DEFAULT_GLOBAL_BATCH_TOKENS), "the default (standalone: no family)"
        return float(DEFAULT_GLOBAL_BATCH_TOKENS), (
            f"assumed: the default {DEFAULT_GLOBAL_BATCH_TOKENS} tokens (the family has {why})"
        )
    if batch < seq_len:
        raise InputError(
            f"the family's predicted batch, {batch:.4g} tokens, is less than one sequence of "
            f"--seq-len {seq_len}: give --global-batch-tokens or a smaller --seq-len"
        )
    return float(batch), f"the family's batch law ({hparams.get('batch_law')}): {hparams['source']}"
