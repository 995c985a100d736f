"""Counting N, D and C in training loops, and logging them to MLflow in the contract's names.

* :mod:`.core`: the framework-free counting core every loop drives (:class:`ScalingCore`);
* :mod:`.torch`: :class:`~mlflow_scaling.integrations.torch.ScalingCounter` for a plain
  PyTorch loop;
* :mod:`.transformers`: ``ScalingLawTrainerCallback`` for Hugging Face's ``Trainer`` (needs the
  ``transformers`` extra; imported only when asked for);
* the Lightning callback is ``lightning_callbacks.ScalingLawCallback``, thin hooks over the core.

This package imports nothing from ``mlflow_scaling`` but the contract names
(``mlflow_scaling.tracking.schema``).
"""

from .counting import ParamCounts, TokenCounts, count_parameters, default_token_counts
from .errors import ScalingLawWarning, TokenCountError
from .flops import (
    TransformerShape,
    analytic_flops_per_token,
    infer_transformer_shape,
    measure_training_flops,
)

__all__ = [
    "ParamCounts",
    "ScalingLawWarning",
    "TokenCountError",
    "TokenCounts",
    "TransformerShape",
    "analytic_flops_per_token",
    "count_parameters",
    "default_token_counts",
    "infer_transformer_shape",
    "measure_training_flops",
]
