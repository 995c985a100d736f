"""``mlflow-scaling plan`` standalone: the compute anchor, the memory arithmetic, bad input.

The ZeRO stage arithmetic is compared with two independent references written here from their
documents: the worked example of the ZeRO paper (Rajbhandari et al. 2020, Fig. 1) and the
formulas of DeepSpeed's documented estimators ``estimate_zero2_model_states_mem_needs`` and
``estimate_zero3_model_states_mem_needs`` (DeepSpeed's "Memory Requirements" page; DeepSpeed
itself cannot be installed here).
"""

from __future__ import annotations

import json
import math
import re

import pytest
from _refit_support import call_cli

from mlflow_scaling.planning.memory import (
    FIXED_OVERHEAD_BYTES,
    FRAGMENTATION,
    derive_shape,
    model_state_terms,
    state_bytes,
)

LLAMA2_7B = ["--params", "6.74e9", "--tokens", "2e12", "--gpu", "a100-80gb", "--mfu", "0.39"]
LLAMA2_7B_SHAPE = ["--layers", "32", "--d-model", "4096", "--heads", "32", "--seq-len", "4096"]


def _plan(*args) -> dict:
    result = call_cli("plan", *args, "--format", "json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_llama2_7b_gpu_hours_land_near_metas_184320():
    plan = _plan(*LLAMA2_7B)
    assert plan["flops_method"] == "6ND"
    assert plan["flops"] == pytest.approx(6 * 6.74e9 * 2e12, rel=1e-12)
    assert plan["gpu_hours"] == pytest.approx(6 * 6.74e9 * 2e12 / (312e12 * 0.39) / 3600)
    assert abs(plan["gpu_hours"] - 184_320) / 184_320 < 0.005  # 184,637: +0.17 %
    assert plan["mfu"] == {"value": 0.39, "source": "given (--mfu)"}
    assert plan["gpu"]["name"] == "a100-80gb" and plan["gpu"]["memory_bytes"] == 80 * 2**30


def test_7b_mixed_adamw_needs_sharding_on_80gb():
    plan = _plan(*LLAMA2_7B, *LLAMA2_7B_SHAPE)
    assert plan["bytes_per_param"]["total"] == 16
    rows = {(r["name"], r["activation_checkpointing"], r["flash_attention"]): r
            for r in plan["strategies"]}  # fmt: skip
    assert len(rows) == 20
    for ckpt in (False, True):
        for flash in (False, True):
            ddp = rows[("ddp", ckpt, flash)]
            assert ddp["memory_per_gpu"]["model_states"] == pytest.approx(16 * 6.74e9)
            assert ddp["fits"] is False and ddp["min_gpus"] is None and ddp["max_micro_batch"] == 0
            assert rows[("zero3_offload", ckpt, flash)]["min_gpus"] == 1
    # Without FlashAttention the 32·4096² scores of a layer alone (2 bytes each, 4096 tokens)
    # outgrow what ZeRO-3 on 2 GPUs leaves: only recomputation or Flash make room.
    assert plan["gpus"] == 2
    assert plan["recommended"] == "zero3, no checkpointing, flash"
    zero3 = rows[("zero3", False, True)]
    assert zero3["fits"] and zero3["max_micro_batch"] == 1 and zero3["grad_accum"] == 512
    assert plan["days"] == pytest.approx(plan["gpu_hours"] / 2 / 24)
    assert plan["flops_method"].startswith("6N + 12·n_layer·d_model·seq_len")
    assert plan["flops_per_token"] == 6 * 6.74e9 + 12 * 32 * 4096 * 4096


def test_memory_totals_add_up_and_the_micro_batch_is_the_largest_that_fits():
    plan = _plan(*LLAMA2_7B, *LLAMA2_7B_SHAPE, "--gpus", "64")
    memory = plan["gpu"]["memory_bytes"]
    for r in plan["strategies"]:
        mem, terms = r["memory_per_gpu"], r["terms"]
        assert mem["total"] == pytest.approx(mem["model_states"] + mem["activations"]
                                             + mem["buffers"])  # fmt: skip
        assert mem["buffers"] == pytest.approx(
            terms["buffers"]["logits"] + FIXED_OVERHEAD_BYTES
            + FRAGMENTATION * (mem["model_states"] + mem["activations"]
                               + terms["buffers"]["logits"])
        )  # fmt: skip
        if r["fits"]:
            assert mem["total"] <= memory
            assert r["grad_accum"] == math.ceil(16 / r["micro_batch"])  # 1024 seqs / 64 GPUs
    # With 64 GPUs every sharded strategy fits; its micro-batch is capped by the global batch.
    zero2 = next(r for r in plan["strategies"] if r["name"] == "zero2"
                 and r["activation_checkpointing"] and r["flash_attention"])  # fmt: skip
    assert zero2["fits"] and zero2["max_micro_batch"] >= 16 and zero2["micro_batch"] == 16


def test_zero_paper_figure_1_example():
    # Ψ = 7.5B, Nd = 64, K = 12: 120 GB, 31.4 GB, 16.6 GB, 1.9 GB per GPU.
    per_param = state_bytes("bf16-mixed", "adamw")
    expected = {"ddp": 120.0, "zero1": 31.4, "zero2": 16.6, "zero3": 1.9}
    for strategy, gb in expected.items():
        total = model_state_terms(strategy, 7.5e9, 64, per_param, 0)["total"]
        assert round(total / 1e9, 1) == gb


def deepspeed_zero2(total_params, num_gpus_per_node=1, num_nodes=1, cpu_offload=True,
                    additional_buffer_factor=1.5):  # fmt: skip
    """DeepSpeed's documented estimate_zero2_model_states_mem_needs: (cpu_mem, gpu_mem)."""
    total_gpus = num_nodes * num_gpus_per_node
    if cpu_offload:
        gpu_mem = 2 * total_params
        cpu_mem = total_params * max(4 * total_gpus, 16) * additional_buffer_factor
    else:
        gpu_mem = 4 * total_params + int(16 * total_params / total_gpus)
        cpu_mem = total_params * 4 * num_gpus_per_node * additional_buffer_factor
    return int(cpu_mem), int(gpu_mem)


def deepspeed_zero3(total_params, largest_layer_params, num_gpus_per_node=1, num_nodes=1,
                    cpu_offload=True, cpu_offload_params=True, zero_init=True,
                    additional_buffer_factor=1.5):  # fmt: skip
    """DeepSpeed's documented estimate_zero3_model_states_mem_needs (ZeRO-Init on)."""
    total_gpus = num_nodes * num_gpus_per_node
    gpus_factor = 1 / num_nodes
    largest_layer_memory = 4 * largest_layer_params
    if cpu_offload and cpu_offload_params:
        gpu_mem = largest_layer_memory
        cpu_mem = total_params * 18 * gpus_factor * additional_buffer_factor
    elif cpu_offload:
        gpu_mem = largest_layer_memory + int(2 * total_params / total_gpus)
        cpu_mem = total_params * 16 * gpus_factor * additional_buffer_factor
    else:
        gpu_mem = largest_layer_memory + int(18 * total_params / total_gpus)
        cpu_mem = largest_layer_params * 4 * num_gpus_per_node * additional_buffer_factor
    return int(cpu_mem), int(gpu_mem), largest_layer_memory


@pytest.mark.parametrize("params", [1.3e9, 6.74e9, 70e9])
@pytest.mark.parametrize(("per_node", "nodes"), [(1, 1), (8, 1), (8, 4), (4, 16)])
def test_deepspeed_accounting_matches_deepspeeds_estimators(params, per_node, nodes):
    largest = 12 * 4096**2  # one block of a 4096-wide model
    gpus = per_node * nodes
    per_param = state_bytes("bf16-mixed", "adamw", "deepspeed")

    def ours(strategy):
        return model_state_terms(strategy, params, gpus, per_param, largest, "deepspeed",
                                 gpus_per_node=per_node)  # fmt: skip

    _, gpu2 = deepspeed_zero2(params, per_node, nodes, cpu_offload=False)
    assert ours("zero2")["total"] == pytest.approx(gpu2, abs=1)
    _, gpu3, _ = deepspeed_zero3(params, largest, per_node, nodes, cpu_offload=False)
    assert ours("zero3")["total"] == pytest.approx(gpu3, abs=1)
    cpu3o, gpu3o, _ = deepspeed_zero3(params, largest, per_node, nodes)
    offload = ours("zero3_offload")
    assert offload["total"] == gpu3o
    # DeepSpeed pads the CPU side with its additional_buffer_factor of 1.5.
    assert offload["cpu_per_node"] * 1.5 == pytest.approx(cpu3o, abs=1)


def test_derived_shape_follows_the_stated_rule():
    shape, rule = derive_shape(6.74e9, seq_len=4096, vocab=32000)
    assert (shape.n_layer, shape.d_model, shape.n_head) == (33, 4096, 32)
    assert "128·N_non_embedding/12" in rule
    shape, _ = derive_shape(1.2e7, seq_len=256, vocab=256, non_embedding=True)
    # (128·1.2e7/12)^(1/3) = 504 → 512 wide; 1.2e7/(12·512²) = 3.8 → 4 layers
    assert (shape.n_layer, shape.d_model, shape.n_head) == (4, 512, 4)


def test_budget_gives_tokens_on_the_same_flops_per_token():
    plan = _plan("--params", "1e9", "--budget", "6e20", "--gpus", "8", "--gpu-hour-price", "2")
    assert plan["target"]["tokens"] == pytest.approx(1e11)
    assert plan["cost"] == pytest.approx(2 * plan["gpu_hours"])
    assert plan["check"]["verdict"] is None and plan["mfu"]["value"] == 0.40
    assert plan["mfu"]["source"].startswith("default 0.40")


def test_table_shows_the_arithmetic():
    result = call_cli("plan", *LLAMA2_7B, *LLAMA2_7B_SHAPE)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "weights 2 + grads 2 + master 4 + optimizer 8 = 16 bytes → 107.8 GB unsharded" in out
    assert "GPU-hours: 214,052" in out
    assert "recommended: zero3, no checkpointing, flash" in out
    rows = [ln for ln in out.splitlines() if re.match(r"(ddp|zero\w+) +(yes|no) +(yes|no) ", ln)]
    assert len(rows) == 20


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--params", "7e9", "--tokens", "1e12", "--gpu", "tpu9"], "unknown GPU 'tpu9'"),
        (["--params", "7e9"], "standalone: give --params and one of --tokens or --budget"),
        (["--params", "7e9", "--tokens", "1", "--budget", "1"], "one of --tokens or --budget"),
        (["--family", "f"], "needs both --experiment and --family"),
        (["--params", "7e9", "--tokens", "1e12", "--layers", "4"], "missing --d-model, --heads"),
        (["--params", "7e9", "--tokens", "1e12", "--precision", "fp32"], "needs --gpu-peak-flops"),
        (["--params", "7e9", "--tokens", "1e12", "--gpus", "5000"], "more than the 2048 sequences"),
        (["--params", "-1", "--tokens", "1e12"], "'-1' must be a positive finite number"),
        (["--params", "7e9", "--tokens", "1e12", "--mfu", "1.5"], "'1.5' must lie in (0, 1]"),
    ],
)
def test_bad_input_exits_2_with_one_line(args, message):
    result = call_cli("plan", *args)
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert message in lines[-1]
    assert len([ln for ln in lines if "error" in ln]) == 1


def test_a_gpu_outside_the_table_with_memory_and_peak():
    plan = _plan("--params", "1e9", "--tokens", "2e10", "--gpu", "mychip",
                 "--gpu-memory", "3.2e10", "--gpu-peak-flops", "1e14")  # fmt: skip
    assert plan["gpu"] == {"name": "mychip", "memory_bytes": 32_000_000_000,
                           "peak_flops": 1e14, "source": "given"}  # fmt: skip


def test_json_has_the_documented_keys():
    plan = _plan("--params", "1.3e9", "--tokens", "2.6e10")
    assert {"flops", "gpu_hours", "days", "mfu", "gpu", "check", "strategies"} <= set(plan)
    assert set(plan["mfu"]) == {"value", "source"}
    assert {"name", "memory_bytes", "peak_flops"} <= set(plan["gpu"])
    assert {"verdict", "criteria"} <= set(plan["check"])
    first = [(r["name"], r["activation_checkpointing"], r["flash_attention"])
             for r in plan["strategies"][:4]]  # fmt: skip
    assert first == [("ddp", False, False), ("ddp", False, True), ("ddp", True, False),
                     ("ddp", True, True)]  # fmt: skip
    for row in plan["strategies"]:
        assert {"name", "activation_checkpointing", "flash_attention", "memory_per_gpu", "fits",
                "max_micro_batch", "grad_accum", "min_gpus"} <= set(row)  # fmt: skip
        assert set(row["memory_per_gpu"]) == {"model_states", "activations", "buffers", "total"}


def _doc(verdict="pass") -> dict:
    sizes = (1e7, 3e7, 1e8, 3e8)
    return {
        "family": "<b>fam</b>",
        "experiment_name": "exp",
        "experiment_id": "1",
        "fit_run_id": "r1",
        "refit_number": 2,
        "check": {
            "verdict": verdict,
            "criteria": [
                {
                    "name": "backtest",
                    "value": 0.01,
                    "threshold": 0.03,
                    "passed": verdict == "pass",
                    "detail": "",
                }
            ],  # fmt: skip
            "prediction": {"N": 3e9, "D": 6e10, "tokens": "compute_optimal"},
        },
        "members": [{"N": n, "D": 20 * n, "C": 6 * n * 20 * n} for n in sizes],
    }


@pytest.mark.parametrize("total", [False, True], ids=["non-embedding", "total"])
def test_family_n_convention_decides_the_parameters_in_memory(total):
    from mlflow_scaling.planning.family import RunFacts
    from mlflow_scaling.planning.family_plan import plan_args, plan_from_doc

    facts = RunFacts(0.3, "measured: test", n_counts_embedding=total)
    plan = plan_from_doc(_doc(), plan_args(gpu="h200"), facts, ignore_check=False)
    shape = plan["shape"]
    embedding = shape["vocab"] * shape["d_model"]
    assert plan["target"]["params"] == 3e9 and plan["target"]["tokens"] == 6e10
    assert plan["target"]["params_in_memory"] == 3e9 + (0 if total else embedding)
    assert plan["flops_per_token"] == pytest.approx(6 * 3e9)  # the members' axis is 6N
    assert plan["mfu"] == {"value": 0.3, "source": "measured: test"}
    assert plan["check"]["source"] == "fit run r1, refit #2" and not plan["check"]["ignored"]


def test_plan_section_escapes_and_survives_a_broken_plan():
    from mlflow_scaling.planning.family import RunFacts
    from mlflow_scaling.planning.family_plan import plan_args, plan_from_doc
    from mlflow_scaling.planning.section import plan_section

    assert plan_section({}) == "" and plan_section(None) == ""
    facts = RunFacts(None, "no member run logged it <i>")
    plan = plan_from_doc(_doc("fail"), plan_args(), facts, ignore_check=True)
    html = plan_section({"plan": plan})
    assert "<h2>Cluster plan</h2>" in html and "The scaling check did not pass (backtest)" in html
    assert "<i>" not in html and "&lt;i&gt;" in html
    broken = plan_section({"plan": {"gpu": {"name": "<b>x</b>"}}})
    assert "could not be shown" in broken and "<b>x</b>" not in broken
