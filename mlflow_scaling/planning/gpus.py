"""Accelerators a plan can ask for: memory per device and dense bf16 peak FLOP/s.

Peaks are the vendors' dense (no structured sparsity) bf16 tensor figures; memory is the
capacity the driver reports where we know it (``nvidia-smi``'s total, MiB), else the datasheet.
"""

from __future__ import annotations

from dataclasses import dataclass

MIB = 2**20
GIB = 2**30


@dataclass(frozen=True)
class Accelerator:
    """One device kind: ``memory_bytes`` per device, ``peak_flops`` dense bf16 FLOP/s."""

    name: str
    memory_bytes: int
    peak_flops: float
    source: str = ""

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "memory_bytes": int(self.memory_bytes),
            "peak_flops": float(self.peak_flops),
            "source": self.source,
        }


ACCELERATORS: dict[str, Accelerator] = {
    g.name: g
    for g in (
        # NVIDIA A100 datasheet: BF16 tensor core 312 TFLOPS (624 with sparsity);
        # nvidia-smi reports 40960 MiB and 81920 MiB.
        Accelerator("a100-40gb", 40960 * MIB, 312e12, "NVIDIA A100 datasheet; 40960 MiB"),
        Accelerator("a100-80gb", 81920 * MIB, 312e12, "NVIDIA A100 datasheet; 81920 MiB"),
        # NVIDIA H100 SXM datasheet: BF16 1,979 TFLOPS with sparsity, 989 dense; 81559 MiB.
        Accelerator("h100-80gb", 81559 * MIB, 989e12, "NVIDIA H100 SXM datasheet; 81559 MiB"),
        # NVIDIA H200 SXM datasheet: same compute as H100 SXM, 141 GB HBM3e (143771 MiB).
        Accelerator("h200", 143771 * MIB, 989e12, "NVIDIA H200 SXM datasheet; 143771 MiB"),
        # NVIDIA HGX B200 datasheet: 4.5 PFLOPS BF16 with sparsity per GPU (2.25 dense),
        # 180 GB HBM3e per GPU (1,440 GB for 8).
        Accelerator("b200", 180 * 10**9, 2.25e15, "NVIDIA HGX B200 datasheet; 180 GB"),
        # NVIDIA L40S datasheet: BF16 tensor 362.05 TFLOPS (733 with sparsity); 48 GB GDDR6
        # (46068 MiB usable with ECC on).
        Accelerator("l40s", 46068 * MIB, 362.05e12, "NVIDIA L40S datasheet; 46068 MiB"),
        # AMD Instinct MI300X datasheet: BF16 1307.4 TFLOPS dense (2614.9 with sparsity),
        # 192 GB HBM3.
        Accelerator("mi300x", 192 * GIB, 1307.4e12, "AMD MI300X datasheet; 192 GB"),
    )
}


def accelerator(
    name: str, memory_bytes: float | None = None, peak_flops: float | None = None
) -> Accelerator:
    """The table's entry for ``name``, with memory or peak replaced when given.

    A name outside the table needs both ``memory_bytes`` and ``peak_flops``.
    """
    key = name.strip().lower()
    known = ACCELERATORS.get(key)
    if known is None:
        if memory_bytes is None or peak_flops is None:
            raise ValueError(
                f"unknown GPU {name!r}: choose one of {', '.join(ACCELERATORS)}, or give both "
                "--gpu-memory and --gpu-peak-flops"
            )
        return Accelerator(key, int(memory_bytes), float(peak_flops), "given")
    if memory_bytes is None and peak_flops is None:
        return known
    return Accelerator(
        known.name,
        int(memory_bytes if memory_bytes is not None else known.memory_bytes),
        float(peak_flops if peak_flops is not None else known.peak_flops),
        known.source + " (overridden)",
    )
