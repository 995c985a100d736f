"""The options every training loop's counter takes, checked once (Lightning, Trainer, PyTorch)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from mlflow_scaling.tracking import schema

from .counting import TokenCounter
from .flops import ForwardFn, TransformerShape

ParamsForLaw = Literal["non_embedding", "total"]


@dataclass(frozen=True)
class CountingSettings:
    """What to count and how often to log; see docs/reference.md for each option."""

    family: str
    loss_metric: str = schema.DEFAULT_LOSS_METRIC
    params_for_law: ParamsForLaw = "non_embedding"
    log_every_n_steps: int | None = 50
    log_every_seconds: float | None = 300.0
    token_counter: TokenCounter | None = None
    ignore_index: int = -100
    flops_per_token: float | None = None
    transformer_shape: TransformerShape | None = None
    seq_len: int | None = None
    flops_forward_fn: ForwardFn | None = None
    cross_check: bool = True
    flops_tolerance: float = 0.05
    peak_flops_per_device: float | None = None
    retry_interval_s: float = 10.0
    flush_timeout_s: float = 30.0
    unique_tokens: float | None = None

    def __post_init__(self) -> None:
        _check_name("family", self.family)
        _check_name("loss_metric", self.loss_metric)
        if self.params_for_law not in ("non_embedding", "total"):
            raise ValueError(
                f"params_for_law must be 'non_embedding' or 'total', got {self.params_for_law!r}"
            )
        _check_positive("log_every_n_steps", self.log_every_n_steps, integer=True, optional=True)
        _check_positive("log_every_seconds", self.log_every_seconds, optional=True)
        _check_positive("flops_per_token", self.flops_per_token, optional=True)
        _check_positive("seq_len", self.seq_len, integer=True, optional=True)
        _check_positive("peak_flops_per_device", self.peak_flops_per_device, optional=True)
        _check_positive("retry_interval_s", self.retry_interval_s)
        _check_non_negative("flops_tolerance", self.flops_tolerance)
        _check_non_negative("flush_timeout_s", self.flush_timeout_s)
        _check_positive("unique_tokens", self.unique_tokens, optional=True, finite=True)
        for name in ("token_counter", "flops_forward_fn"):
            value = getattr(self, name)
            if value is not None and not callable(value):
                raise TypeError(f"{name} must be callable, got {value!r}")
        shape = self.transformer_shape
        if shape is not None and not isinstance(shape, TransformerShape):
            raise TypeError(f"transformer_shape must be a TransformerShape, got {shape!r}")


def _check_name(name: str, value: Any) -> None:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name} must be a non-empty string, got {value!r}")


def _check_positive(
    name: str, value: Any, integer: bool = False, optional: bool = False, finite: bool = False
) -> None:
    if value is None and optional:
        return
    kind = int if integer else (int, float)
    number = isinstance(value, kind) and not isinstance(value, bool)
    if not (number and value > 0 and (not finite or value < float("inf"))):
        what = "a positive integer" if integer else "a positive number"
        raise ValueError(f"{name} must be {what}{' or None' if optional else ''}, got {value!r}")


def _check_non_negative(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ValueError(f"{name} must be a number >= 0, got {value!r}")
