"""Peak FLOPs per second of one accelerator, for MFU (``scaling.throughput.mfu``)."""

from __future__ import annotations

import torch


def peak_flops_per_device(device: torch.device, dtype: torch.dtype) -> float | None:
    """The device's peak FLOPs/s at ``dtype`` from the table ``lightning.fabric`` keeps of known
    accelerators; ``None`` on CPU, for unknown devices, or without that table."""
    if device.type == "cpu":
        return None
    try:
        from lightning.fabric.utilities.throughput import get_available_flops

        peak = get_available_flops(device, dtype)
    except Exception:  # no table, or a device it does not know
        return None
    return float(peak) if peak else None
