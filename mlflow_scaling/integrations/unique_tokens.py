"""U, the unique tokens a run draws from, and its epochs: ``scaling.unique_tokens``,
``scaling.epochs``.

Every loop's counter takes ``unique_tokens=`` (a positive number: the distinct tokens of the
training corpus, counted like ``scaling.tokens``, i.e. input positions without padding). Without
it, the Lightning and ``Trainer`` callbacks read the training dataset, but only where its size
in tokens is exact:

* a ``TensorDataset`` whose first tensor holds integer token ids of shape (sequences, seq_len)
  (the inputs; a second tensor, the labels, does not add tokens), or
* a 2-D integer tensor used as the dataset itself;

then U = sequences x seq_len and ``scaling.unique_tokens_source`` says
``dataset:<sequences>x<seq_len>``. Any other dataset (iterable, mapping samples, uneven or
padded sequences, windows that may overlap) says nothing about uniqueness: no metric, no param.
``scaling.epochs`` = ``scaling.tokens`` / U, logged with the tokens.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import Tensor
from torch.utils.data import TensorDataset

from mlflow_scaling.tracking import schema

from .counting import is_token_ids

SOURCE_ARGUMENT = "argument"


@dataclass(frozen=True)
class UniqueTokens:
    """U and where it came from (``argument`` or ``dataset:<len>x<seq_len>``)."""

    value: float
    source: str

    def params(self) -> dict[str, str]:
        return {schema.PARAM_UNIQUE_TOKENS_SOURCE: self.source}

    def metrics(self, tokens: float) -> dict[str, float]:
        """``scaling.unique_tokens`` and ``scaling.epochs`` at ``tokens`` tokens so far."""
        return {schema.METRIC_UNIQUE_TOKENS: self.value, schema.METRIC_EPOCHS: tokens / self.value}


def dataset_unique_tokens(dataset: Any) -> UniqueTokens | None:
    """U of a dataset whose size in tokens is exact (module docstring), else None."""
    if isinstance(dataset, TensorDataset) and dataset.tensors:
        inputs = dataset.tensors[0]
    elif isinstance(dataset, Tensor):
        inputs = dataset
    else:
        return None
    if inputs.dim() != 2 or not is_token_ids(inputs) or inputs.numel() == 0:
        return None
    sequences, seq_len = (int(v) for v in inputs.shape)
    return UniqueTokens(float(sequences * seq_len), f"dataset:{sequences}x{seq_len}")


def resolve_unique_tokens(given: float | None, dataset: Any = None) -> UniqueTokens | None:
    """The argument when given, else what the dataset states exactly, else None."""
    if given is not None:
        return UniqueTokens(float(given), SOURCE_ARGUMENT)
    return None if dataset is None else dataset_unique_tokens(dataset)


def loader_dataset(loader: Any) -> Any:
    """The ``dataset`` of a DataLoader (None for several loaders or none)."""
    return getattr(loader, "dataset", None)
