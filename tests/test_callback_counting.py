"""Token counting from batches, pending sums, arguments, and host syncs of the hot path."""

from __future__ import annotations

import warnings
from typing import Any

import pytest
import torch
from _scaling_support import SEQ_LEN, PaddedBytes, tiny_gpt, token_loader, trainer
from torch.utils.data import DataLoader

from lightning_callbacks import ScalingLawCallback, ScalingLawWarning, TokenCounts
from mlflow_scaling.integrations.counting import (
    PendingCounts,
    TokenCountError,
    as_token_counts,
    default_token_counts,
)


def _ints(counts: TokenCounts) -> tuple[int, int, int]:
    return tuple(int(c) for c in counts)  # type: ignore[return-value]


def test_default_counts_of_the_usual_batch_layouts() -> None:
    ids = torch.ones(3, 8, dtype=torch.long)
    mask = torch.ones(3, 8, dtype=torch.long)
    mask[0, 5:] = 0
    labels = ids.clone()
    labels[0, 4:] = -100
    labels[:, -1] = -100
    assert _ints(default_token_counts(ids)) == (24, 24, 24)
    assert _ints(default_token_counts({"input_ids": ids})) == (24, 24, 24)
    assert _ints(default_token_counts({"input_ids": ids, "attention_mask": mask})) == (24, 21, 21)
    batch = {"input_ids": ids, "attention_mask": mask.bool(), "labels": labels}
    assert _ints(default_token_counts(batch)) == (24, 21, 24 - 4 - 2)
    assert _ints(default_token_counts((ids, labels))) == (24, 24, 18)
    assert _ints(default_token_counts([ids, labels], ignore_index=1)) == (24, 24, 6)
    # features rather than token ids: one sample, one token
    assert _ints(default_token_counts((torch.randn(5, 3), torch.zeros(5)))) == (5, 5, 5)
    # shapes alone give the totals: plain ints, no device work
    counts = default_token_counts({"input_ids": ids, "attention_mask": mask})
    assert isinstance(counts.total, int) and isinstance(counts.non_padding, torch.Tensor)


def test_a_batch_the_default_cannot_read_is_named_in_the_error() -> None:
    with pytest.raises(TokenCountError, match=r"keys \['pixels'\].*token_counter"):
        default_token_counts({"pixels": torch.zeros(2, 3)})
    with pytest.raises(TokenCountError, match="of type str"):
        default_token_counts("text")
    samples = [{"input_ids": torch.ones(4, dtype=torch.long)}] * 2  # not collated
    with pytest.raises(TokenCountError, match="of type list"):
        default_token_counts(samples)
    features = {"input_ids": torch.ones(2, 4, dtype=torch.long)}
    assert _ints(default_token_counts((features, torch.zeros(2)))) == (8, 8, 8)


def test_user_counter_results_are_normalised_or_rejected_by_name() -> None:
    assert as_token_counts(7, "f") == TokenCounts(7, 7, 7)
    assert as_token_counts((3, 2, 1), "f") == TokenCounts(3, 2, 1)
    assert as_token_counts({"total": 3, "non_padding": 2, "loss": 1}, "f") == (3, 2, 1)
    assert int(as_token_counts(torch.tensor([5]), "f").loss) == 5
    with pytest.raises(TypeError, match="my_counter returned 'x'"):
        as_token_counts("x", "my_counter")
    with pytest.raises(TypeError, match="without key 'loss'"):
        as_token_counts({"total": 1, "non_padding": 1}, "f")


def test_pending_counts_sum_host_and_device_parts() -> None:
    pending = PendingCounts()
    for i in range(300):  # past the folding threshold
        pending.add(TokenCounts(10, torch.tensor(i % 7), 4), flops_per_token=2.0)
    pending.add(TokenCounts(10, 10, 10), flops_per_token=3.0)
    non_padding = sum(i % 7 for i in range(300))
    hardware = 2.0 * 300 * 10 + 3.0 * 10  # every position, padding included
    assert pending.drain() == [
        3010.0,
        non_padding + 10.0,
        1210.0,
        2.0 * non_padding + 30.0,
        hardware,
    ]
    assert pending.drain() == [0.0] * 5
    # a user counter may give every count as a tensor: FLOPs still per their FLOPs per token
    pending.add(TokenCounts(torch.tensor(8), torch.tensor(5), torch.tensor(4)), 3.0)
    pending.add(TokenCounts(torch.tensor(8), torch.tensor(6), 6), 5.0)
    assert pending.drain() == [16.0, 11.0, 10.0, 3.0 * 5 + 5.0 * 6, 3.0 * 8 + 5.0 * 8]


def test_user_token_counter_is_used() -> None:
    cb = ScalingLawCallback(family="f", token_counter=lambda batch: batch[0].shape[0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ScalingLawWarning)
        trainer(callbacks=[cb], max_steps=3).fit(tiny_gpt(), token_loader(3, 2))
    assert cb.totals.tokens == 3 * 2


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"family": ""}, "family must be a non-empty string, got ''"),
        ({"family": "f", "log_every_n_steps": 0}, "log_every_n_steps must be a positive integer"),
        ({"family": "f", "log_every_n_steps": 2.5}, "got 2.5"),
        ({"family": "f", "log_every_seconds": -1}, "log_every_seconds must be a positive number"),
        ({"family": "f", "flops_per_token": 0}, "flops_per_token must be a positive number"),
        ({"family": "f", "params_for_law": "all"}, "params_for_law must be 'non_embedding'"),
        ({"family": "f", "flops_tolerance": -0.1}, "flops_tolerance must be a number >= 0"),
    ],
)
def test_bad_arguments_are_named(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(".", r"\.")):
        ScalingLawCallback(**kwargs)


class _HostSyncSpy:
    """Counts tensor-to-host conversions made inside the callback's per-batch hook."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, cb: ScalingLawCallback) -> None:
        self.inside = False
        self.calls: list[tuple[int, str]] = []
        self.step = -1
        for name in ("item", "tolist", "__int__", "__float__", "__bool__", "cpu", "numpy"):
            original = getattr(torch.Tensor, name)
            monkeypatch.setattr(torch.Tensor, name, self._wrap(name, original))
        hook = cb.on_train_batch_end

        def spied(trainer: Any, *args: Any, **kwargs: Any) -> None:
            self.inside = True
            try:
                hook(trainer, *args, **kwargs)
            finally:
                self.inside = False
                self.step = trainer.global_step

        monkeypatch.setattr(cb, "on_train_batch_end", spied)

    def _wrap(self, name: str, original: Any) -> Any:
        spy = self

        def wrapper(tensor: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
            if spy.inside:
                spy.calls.append((spy.step + 1, name))
            return original(tensor, *args, **kwargs)

        return wrapper


def test_no_host_sync_on_steps_that_do_not_log(monkeypatch: pytest.MonkeyPatch) -> None:
    lengths = [1 + (5 * i) % SEQ_LEN for i in range(24)]
    cb = ScalingLawCallback(family="sync", log_every_n_steps=4, log_every_seconds=None)
    spy = _HostSyncSpy(monkeypatch, cb)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ScalingLawWarning)
        trainer(callbacks=[cb], max_steps=12).fit(
            tiny_gpt(), DataLoader(PaddedBytes(lengths), batch_size=2)
        )
    steps_with_syncs = {step for step, _ in spy.calls}
    assert steps_with_syncs == {4, 8, 12}, spy.calls  # the logging steps only
    assert cb.totals.tokens == sum(lengths)


def test_tiny_gpt_byte_windows_are_next_byte_pairs() -> None:
    from examples.tiny_gpt import ByteWindows

    data = ByteWindows(b"abcdefghij", seq_len=4)
    assert len(data) == 2
    x, y = data[1]
    assert bytes(x.tolist()) == b"efgh" and bytes(y.tolist()) == b"fghi"
    assert _ints(default_token_counts((x[None], y[None]))) == (4, 4, 4)
    with pytest.raises(ValueError, match="3 bytes are too few for one window of seq_len=4"):
        ByteWindows(b"abc", seq_len=4)
