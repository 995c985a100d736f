"""argparse value types shared by every `mlflow-scaling` subcommand."""

from __future__ import annotations

import argparse
import math


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive finite number")
    return value


def non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be 0 or more")
    return value


def huber_delta(text: str) -> float | str:
    """``auto`` (δ scaled to the residuals) or a positive number (1e-3 reproduces Epoch)."""
    if text.strip().lower() == "auto":
        return "auto"
    return positive_float(text)
