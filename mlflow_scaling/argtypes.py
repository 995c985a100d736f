"""argparse value types shared by every `mlflow-scaling` subcommand, and its parser class.

The physical ranges behind the types are those of :mod:`.inputs` (the input contract).
"""

from __future__ import annotations

import argparse
import math
import re

from .inputs import PARAMS, TOKENS, Quantity

NUMBER_LIKE = re.compile(
    r"^-(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$|^-(inf|infinity|nan)$", re.IGNORECASE
)
"""What argparse should read as a (negative) value, not an option: -7e9, -1e18, -.5, -inf."""


class ScalingArgumentParser(argparse.ArgumentParser):
    """argparse reading ``-1e18`` and ``-inf`` as values (its own rule knows only -1 and -1.5),
    so the option's type names the value; subparsers inherit the class."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._negative_number_matcher = NUMBER_LIKE

    def _get_values(self, action, arg_strings):
        # ``--opt=--`` would reach the handler as an empty list (argparse strips the '--').
        if action.nargs in (None, argparse.OPTIONAL) and arg_strings == ["--"]:
            raise argparse.ArgumentError(action, "expected a value, got '--'")
        return super()._get_values(action, arg_strings)


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive finite number")
    return value


def quantity_of(quantity: Quantity):
    """An argparse type: a finite number in ``quantity``'s physical range."""

    def parse(text: str) -> float:
        value = positive_float(text)
        problem = quantity.problem(value)
        if problem is not None:
            raise argparse.ArgumentTypeError(f"{text!r}: {problem}")
        return value

    parse.__name__ = quantity.name.replace(" ", "_")
    return parse


params_count = quantity_of(PARAMS)
token_count = quantity_of(TOKENS)


def non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (value >= 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"{text!r} must be a finite number, 0 or more")
    return value


def _int_at_least(text: str, least: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < least:
        raise argparse.ArgumentTypeError(f"{text!r} must be {least} or more")
    return value


def non_negative_int(text: str) -> int:
    return _int_at_least(text, 0)


def positive_int(text: str) -> int:
    return _int_at_least(text, 1)


def huber_delta(text: str) -> float | str:
    """``auto`` (δ scaled to the residuals) or a positive number (1e-3 reproduces Epoch)."""
    if text.strip().lower() == "auto":
        return "auto"
    return positive_float(text)


# A percentile interval from a few replicates is noise: 50 is the least we compute one from.
MIN_BOOTSTRAP = 50
MAX_BOOTSTRAP = 100_000


def bootstrap_replicates(text: str) -> int:
    """0 (no intervals) or a replicate count in [MIN_BOOTSTRAP, MAX_BOOTSTRAP]."""
    value = non_negative_int(text)
    if 0 < value < MIN_BOOTSTRAP:
        raise argparse.ArgumentTypeError(
            f"{value} replicates are too few for a 95 % interval; use 0 (no intervals) or at "
            f"least {MIN_BOOTSTRAP}"
        )
    if value > MAX_BOOTSTRAP:
        raise argparse.ArgumentTypeError(
            f"{value} replicates is more than {MAX_BOOTSTRAP:,}; a few thousand fix an interval's "
            "ends to well under 1 %"
        )
    return value
