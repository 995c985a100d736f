"""MLflow names the callback logs beyond the data contract.

The contract (``mlflow_scaling.tracking.schema``) holds what the refit job reads: N, D, C, the
family and the loss metric. These extras are diagnostics for people looking at a run: the other
token counts, the FLOPs-per-token figures behind ``scaling.flops`` and the throughput.
"""

from __future__ import annotations

from mlflow_scaling.tracking import schema

METRIC_TOKENS_TOTAL = schema.PREFIX + "tokens_total"
"""Cumulative input positions, padding included."""
METRIC_TOKENS_LOSS = schema.PREFIX + "tokens_loss"
"""Cumulative loss-bearing positions (labels other than the ignore index)."""
METRIC_FLOPS_PER_TOKEN = schema.PREFIX + "flops_per_token"
"""Training FLOPs per token of the first batch, by ``scaling.flops_method``."""
METRIC_FLOPS_PER_TOKEN_MEASURED = schema.PREFIX + "flops_per_token_measured"
"""The meta-device measurement the analytic count was checked against."""
METRIC_TOKENS_PER_SECOND = schema.PREFIX + "throughput.tokens_per_s"
METRIC_FLOPS_PER_SECOND = schema.PREFIX + "throughput.flops_per_s"
METRIC_MFU = schema.METRIC_MFU
"""Model FLOPs utilisation: FLOPs/s over (peak FLOPs/s of one device x world size)."""
