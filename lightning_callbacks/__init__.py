"""Lightning callbacks that log the axes of a scaling law (parameters, tokens, FLOPs) to MLflow.

``from lightning_callbacks import ScalingLawCallback`` and add
``ScalingLawCallback(family="my-family")`` to a Trainer's callbacks. The counting itself is
``mlflow_scaling.integrations`` (shared with the Hugging Face ``Trainer`` and plain PyTorch).
"""

from mlflow_scaling.integrations import (
    ParamCounts,
    ScalingLawWarning,
    TokenCountError,
    TokenCounts,
    TransformerShape,
    analytic_flops_per_token,
    count_parameters,
    default_token_counts,
    infer_transformer_shape,
    measure_training_flops,
)

from .scaling_law import ScalingLawCallback, Totals

__all__ = [
    "ParamCounts",
    "ScalingLawCallback",
    "ScalingLawWarning",
    "TokenCountError",
    "TokenCounts",
    "Totals",
    "TransformerShape",
    "analytic_flops_per_token",
    "count_parameters",
    "default_token_counts",
    "infer_transformer_shape",
    "measure_training_flops",
]
