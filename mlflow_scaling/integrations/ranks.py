"""How the counting core talks to the other ranks: one all-reduce of a short vector of sums."""

from __future__ import annotations

from typing import Protocol

import torch


class Ranks(Protocol):
    """The processes of one training run, as the counting core needs them."""

    @property
    def world_size(self) -> int: ...

    @property
    def is_rank_zero(self) -> bool: ...

    def all_reduce_sum(self, values: list[float]) -> list[float]:
        """The element-wise sum of ``values`` over all ranks (every rank calls it)."""
        ...


class TorchRanks:
    """``torch.distributed``'s default process group when initialised, else one process.

    The sums travel as one float64 tensor (exact for integer counts below 2**53) on the device
    the backend wants: the current CUDA device for NCCL, else ``device`` (CPU by default)."""

    def __init__(self, device: torch.device | str | None = None) -> None:
        self.device = torch.device(device) if device is not None else torch.device("cpu")

    @staticmethod
    def _initialized() -> bool:
        return torch.distributed.is_available() and torch.distributed.is_initialized()

    @property
    def world_size(self) -> int:
        return torch.distributed.get_world_size() if self._initialized() else 1

    @property
    def is_rank_zero(self) -> bool:
        return torch.distributed.get_rank() == 0 if self._initialized() else True

    def all_reduce_sum(self, values: list[float]) -> list[float]:
        if not self._initialized() or self.world_size == 1:
            return values
        device = self.device
        if torch.distributed.get_backend() == "nccl":
            device = torch.device("cuda", torch.cuda.current_device())
        vector = torch.tensor(values, dtype=torch.float64, device=device)
        torch.distributed.all_reduce(vector, op=torch.distributed.ReduceOp.SUM)
        return [float(v) for v in vector.tolist()]
