"""Exact N, D and C under sharded training: FSDP2, FSDP1 and DeepSpeed ZeRO-3.

FSDP2 runs for real: two CPU processes over gloo, Lightning's ``ModelParallelStrategy`` with
``fully_shard`` in ``configure_model`` and the callback. FSDP1 runs for real too, in a plain
``torch.distributed`` loop: Lightning's ``FSDPStrategy`` refuses a CPU accelerator, while torch's
``FullyShardedDataParallel`` runs on CPU with gloo. DeepSpeed cannot run here (no CUDA): its
ZeRO-3 parameters are built by hand as ``deepspeed.runtime.zero.partition_parameters`` leaves
them (an empty ``data``, the full size in ``ds_numel`` and ``ds_shape``, this rank's slice in
``ds_tensor``).

Expected counts are the hand count of the tiny GPT in ``_scaling_support``.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch
from _distributed_support import report, run_ranks
from _scaling_support import (
    SEQ_LEN,
    TINY_EMBEDDING,
    TINY_FLOPS_PER_TOKEN,
    TINY_NON_EMBEDDING,
    TINY_TIED_HEAD,
    TINY_TOTAL,
    PaddedBytes,
    tiny_gpt,
    trainer,
)
from torch import nn
from torch.utils.data import DataLoader

from examples.tiny_gpt import Block, TinyGPT
from lightning_callbacks import ScalingLawCallback, count_parameters
from mlflow_scaling.integrations.counting import SHARDING_FSDP1, SHARDING_FSDP2, SHARDING_ZERO3
from mlflow_scaling.tracking import schema

pytestmark = pytest.mark.skipif(
    not torch.distributed.is_available(), reason="torch.distributed missing"
)

STEPS = 3
BATCH = {0: 2, 1: 3}  # uneven per-rank batches
LENGTHS = {r: [1 + (5 * i + 3 * r) % SEQ_LEN for i in range(STEPS * b)] for r, b in BATCH.items()}
EXPECTED = {
    "total": TINY_TOTAL,
    "embedding": TINY_EMBEDDING,
    "tied_head": TINY_TIED_HEAD,
    "non_embedding": TINY_NON_EMBEDDING,
}


def _counts(model: nn.Module) -> dict[str, object]:
    c = count_parameters(model)
    return {
        "total": c.total,
        "embedding": c.embedding,
        "tied_head": c.tied_head,
        "non_embedding": c.non_embedding,
        "sharding": c.sharding,
    }


class FullyShardedGPT(TinyGPT):
    """The tiny GPT with FSDP2 applied per block and at the root, as Lightning's docs do it."""

    def configure_model(self) -> None:
        from torch.distributed.fsdp import fully_shard

        mesh = self.device_mesh["data_parallel"]
        for block in self.blocks:
            fully_shard(block, mesh=mesh)
        fully_shard(self, mesh=mesh)


def _fsdp2_lightning(rank: int, out: Path) -> None:
    from lightning.pytorch.strategies import ModelParallelStrategy

    torch.manual_seed(0)
    model = FullyShardedGPT(tiny_gpt().config)
    cb = ScalingLawCallback(family="fsdp2", log_every_n_steps=2, log_every_seconds=None)
    loader = DataLoader(PaddedBytes(LENGTHS[rank], seed=rank), batch_size=BATCH[rank])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # no MLflow run here (said once, tested elsewhere)
        trainer(
            devices=2,
            strategy=ModelParallelStrategy(data_parallel_size=2, tensor_parallel_size=1),
            use_distributed_sampler=False,  # each rank keeps its own uneven loader
            callbacks=[cb],
            max_steps=STEPS,
        ).fit(model, loader)
    sharded = isinstance(next(model.parameters()), torch.distributed.tensor.DTensor)
    report(
        out,
        rank,
        sharded=sharded,
        local_numel=sum(p.to_local().numel() for p in model.parameters()),
        counts=_counts(model),
        metrics=cb.last_metrics,
        flops_method=cb.flops_method,
    )


def test_fsdp2_through_lightning_counts_the_full_model(tmp_path: Path) -> None:
    ranks = run_ranks(_fsdp2_lightning, tmp_path)
    for r in ranks:
        assert r["sharded"]
        assert r["local_numel"] < TINY_TOTAL  # each rank really holds a part only
        assert r["counts"] == {**EXPECTED, "sharding": SHARDING_FSDP2}
    metrics = ranks[0]["metrics"]  # logged by rank zero
    assert metrics[schema.METRIC_PARAMS_TOTAL] == TINY_TOTAL
    assert metrics[schema.METRIC_PARAMS_NON_EMBEDDING] == TINY_NON_EMBEDDING
    assert metrics[schema.METRIC_PARAMS] == TINY_NON_EMBEDDING
    tokens = sum(LENGTHS[0]) + sum(LENGTHS[1])
    positions = (len(LENGTHS[0]) + len(LENGTHS[1])) * SEQ_LEN
    assert metrics[schema.METRIC_TOKENS] == tokens
    assert metrics[schema.METRIC_FLOPS_PER_TOKEN] == TINY_FLOPS_PER_TOKEN
    assert metrics[schema.METRIC_FLOPS] == tokens * TINY_FLOPS_PER_TOKEN
    assert metrics[schema.METRIC_FLOPS_HARDWARE] == positions * TINY_FLOPS_PER_TOKEN
    # The meta-device cross-check would run FSDP's all-gathers on rank zero alone: skipped, said.
    assert ranks[0]["flops_method"].endswith(
        f"; not cross-checked: the parameters are sharded ({SHARDING_FSDP2})"
    )
    assert schema.METRIC_FLOPS_PER_TOKEN_MEASURED not in metrics


def _fsdp1_loop(rank: int, out: Path) -> None:
    from torch.distributed.fsdp import FullyShardedDataParallel
    from torch.distributed.fsdp.wrap import ModuleWrapPolicy

    torch.distributed.init_process_group("gloo")
    results = {}
    for use_orig_params in (False, True):
        torch.manual_seed(0)
        model = FullyShardedDataParallel(
            tiny_gpt(),
            auto_wrap_policy=ModuleWrapPolicy({Block}),
            use_orig_params=use_orig_params,
            device_id=torch.device("cpu"),
        )
        local = sum(p.numel() for p in model.parameters())
        before_step = _counts(model)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        batch = next(iter(DataLoader(PaddedBytes(LENGTHS[rank], seed=rank), batch_size=2)))
        logits = model(batch["input_ids"])  # through the FSDP root: it unshards
        nn.functional.cross_entropy(logits.flatten(0, 1), batch["labels"].flatten()).backward()
        optimizer.step()
        results[str(use_orig_params)] = {
            "local": local,
            "before_step": before_step,
            "after_step": _counts(model),
        }
    torch.distributed.destroy_process_group()
    report(out, rank, **results)


def test_fsdp1_flat_parameters_count_the_full_model(tmp_path: Path) -> None:
    ranks = run_ranks(_fsdp1_loop, tmp_path)
    expected = {**EXPECTED, "sharding": SHARDING_FSDP1}
    for r in ranks:
        for use_orig_params in ("False", "True"):
            result = r[use_orig_params]
            assert result["local"] < TINY_TOTAL, use_orig_params  # a shard per rank
            assert result["before_step"] == expected, use_orig_params
            assert result["after_step"] == expected, use_orig_params


def _zero3_partition(model: nn.Module, rank: int, world_size: int) -> None:
    """Leave ``model``'s parameters as DeepSpeed ZeRO-3 does after partitioning them."""
    for i, p in enumerate(dict.fromkeys(model.parameters())):  # a shared tensor once
        flat = p.data.flatten()
        per_rank = -(-flat.numel() // world_size)  # padded to equal parts
        padded = torch.cat([flat, flat.new_zeros(per_rank * world_size - flat.numel())])
        p.ds_id = i
        p.ds_shape = p.shape
        p.ds_numel = p.numel()
        p.ds_persist = False
        p.ds_status = "NOT_AVAILABLE"
        p.ds_tensor = padded[rank * per_rank : (rank + 1) * per_rank].clone()
        p.data = torch.empty(0, dtype=p.dtype)


@pytest.mark.parametrize("rank", [0, 1])
def test_deepspeed_zero3_parameters_built_by_hand_count_in_full(rank: int) -> None:
    model = tiny_gpt()
    _zero3_partition(model, rank, world_size=2)
    assert sum(p.numel() for p in model.parameters()) == 0  # what a plain count would see
    assert model.head.weight is model.tok_emb.weight
    assert _counts(model) == {**EXPECTED, "sharding": SHARDING_ZERO3}


def test_unsharded_model_counts_by_hand() -> None:
    assert _counts(tiny_gpt()) == {**EXPECTED, "sharding": None}
    untied = tiny_gpt(tie_head=False)
    assert _counts(untied) == {
        "total": TINY_TOTAL + TINY_TIED_HEAD,
        "embedding": TINY_EMBEDDING,
        "tied_head": 0,
        "non_embedding": TINY_NON_EMBEDDING + TINY_TIED_HEAD,
        "sharding": None,
    }
