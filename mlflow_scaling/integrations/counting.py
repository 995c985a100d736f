"""Parameter counts of a model and token counts of a batch.

Parameters: every distinct parameter tensor counts once (shared/tied tensors are not counted
twice), trainable or frozen. Embedding parameters are the weights of ``nn.Embedding`` and
``nn.EmbeddingBag`` modules (token and position tables). A linear output head whose weight *is*
the token embedding's (a tied head) is that same tensor, so it counts once, as embedding, and
is absent from the non-embedding count (the nanoGPT / Hugging Face convention). Sharded
parameters (FSDP2, FSDP1, DeepSpeed ZeRO-3) count at their full size: see
:func:`count_parameters`.

Tokens: three counts per batch, each either a Python ``int`` (known from shapes, free) or a
0-dim integer tensor on the batch's device (from a mask; summed later without a host sync):

* ``total``: every position of the input, padding included;
* ``non_padding``: positions whose ``attention_mask`` is non-zero (``total`` without a mask);
* ``loss``: positions whose label is not ``ignore_index`` (``non_padding`` without labels).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from .errors import TokenCountError

Count = int | Tensor
"""A token count: a Python int, or a 0-dim integer tensor that may live on an accelerator."""

PARAMS_CONVENTION = (
    "non_embedding = all distinct parameters (trainable and frozen) minus nn.Embedding and "
    "nn.EmbeddingBag weights (token and position tables); a head tied to the token embedding "
    "is that embedding tensor and counts once, as embedding; sharded parameters (FSDP, "
    "DeepSpeed ZeRO-3) count at their full, unsharded size"
)


@dataclass(frozen=True)
class ParamCounts:
    """Parameter counts of a model; ``tied_head`` is the size of a head tied to an embedding.

    ``sharding`` names how the parameters were found sharded (``None`` for plain tensors)."""

    total: int
    embedding: int
    tied_head: int = 0
    sharding: str | None = None

    @property
    def non_embedding(self) -> int:
        return self.total - self.embedding


SHARDING_FSDP2 = "FSDP2 (DTensor parameters, global shapes)"
SHARDING_FSDP1 = "FSDP1 (FlatParameter metadata)"
SHARDING_ZERO3 = "DeepSpeed ZeRO-3 (ds_numel)"


@dataclass
class _Logical:
    """One parameter of the model as written: its full size and the (module, name) places it
    is registered under (several when shared)."""

    numel: int
    places: list[tuple[nn.Module, str]]


def count_parameters(model: nn.Module) -> ParamCounts:
    """Total, embedding and tied-head parameter counts of ``model`` (see the module docstring).

    Counts are of the full model whatever the sharding, and equal on every rank:

    * FSDP2 (``fully_shard``) and tensor parallelism: parameters are ``DTensor``s, whose shape
      is the global one;
    * FSDP1 (``FullyShardedDataParallel``): with ``use_orig_params=False`` the module holds
      flat 1-D shards (``FlatParameter``) and the original parameters are gone; with
      ``use_orig_params=True`` the original parameters are 1-D views of this rank's shard. Both
      are counted from the ``FlatParameter``'s record of the original parameters (full sizes,
      owning modules, shared ones), so embeddings and a tied head are still recognised;
    * DeepSpeed ZeRO-3: a partitioned parameter holds an empty tensor and its full size in
      ``ds_numel``.
    """
    logical: dict[Any, _Logical] = {}
    covered: set[int] = set()  # parameter objects accounted for by an FSDP1 flat parameter
    sharding: set[str] = set()
    for flat in _flat_parameters(model):
        sharding.add(SHARDING_FSDP1)
        covered.add(id(flat))
        covered.update(id(p) for p in (flat._params or []) + (flat._shared_params or []))
        for info, numel in zip(flat._param_infos, flat._numels, strict=True):
            key = (id(info.module), info.param_name)
            logical[key] = _Logical(int(numel), [(info.module, info.param_name)])
        for shared in flat._shared_param_infos:
            prim = logical.get((id(shared.prim_module), shared.prim_param_name))
            if prim is not None:
                prim.places.append((shared.module, shared.param_name))
    for module in model.modules():
        for name, p in module._parameters.items():
            if p is None or id(p) in covered:
                continue
            entry = logical.get(id(p))
            if entry is None:
                numel, kind = _full_numel(p)
                if kind is not None:
                    sharding.add(kind)
                logical[id(p)] = entry = _Logical(numel, [])
            entry.places.append((module, name))

    total = embedding = tied_head = 0
    for entry in logical.values():
        total += entry.numel
        if any(_is_embedding_weight(m, name) for m, name in entry.places):
            embedding += entry.numel
            if any(isinstance(m, nn.Linear) and name == "weight" for m, name in entry.places):
                tied_head += entry.numel
    return ParamCounts(total, embedding, tied_head, " + ".join(sorted(sharding)) or None)


def _is_embedding_weight(module: nn.Module, name: str) -> bool:
    return isinstance(module, nn.Embedding | nn.EmbeddingBag) and name == "weight"


def _full_numel(p: Tensor) -> tuple[int, str | None]:
    """The unsharded size of a parameter, and the sharding it was read through."""
    ds_numel = getattr(p, "ds_numel", None)
    if ds_numel is not None:  # DeepSpeed ZeRO-3: ``p`` may hold an empty tensor
        return int(ds_numel), SHARDING_ZERO3
    # ``shape`` of a DTensor is its global shape; of a plain tensor, its shape.
    kind = SHARDING_FSDP2 if _is_dtensor(p) else None
    return int(torch.Size(p.shape).numel()), kind


def _is_dtensor(p: Tensor) -> bool:
    try:
        from torch.distributed.tensor import DTensor
    except ImportError:  # torch built without distributed
        return False
    return isinstance(p, DTensor)


def _flat_parameters(model: nn.Module) -> list[Any]:
    """The FSDP1 ``FlatParameter``s of ``model``: registered parameters with
    ``use_orig_params=False``, attributes of the FSDP modules with ``use_orig_params=True``."""
    found: dict[int, Any] = {}
    for module in model.modules():
        candidates = list(module._parameters.values())
        candidates.append(getattr(module, "_flat_param", None))
        for p in candidates:
            if getattr(p, "_is_flat_param", False) and hasattr(p, "_param_infos"):
                found[id(p)] = p
    return list(found.values())


class TokenCounts(NamedTuple):
    """Token counts of one batch (see the module docstring for the meaning of each)."""

    total: Count
    non_padding: Count
    loss: Count


TokenCounter = Callable[[Any], "TokenCounts | Count"]
"""A user function from a batch to its :class:`TokenCounts` (or to one count used for all three)."""

_INPUT_KEYS = ("input_ids", "tokens", "idx")
_MASK_KEYS = ("attention_mask",)
_LABEL_KEYS = ("labels", "targets", "target")


def default_token_counts(batch: Any, ignore_index: int = -100) -> TokenCounts:
    """Token counts of ``batch`` without any user function.

    Understood layouts:

    * a mapping with ``input_ids`` (or ``tokens``/``idx``), optional ``attention_mask`` and
      optional ``labels`` (or ``targets``/``target``), like Hugging Face batches;
    * a tuple or list ``(input_ids, labels, ...)`` of integer tensors, like ``TensorDataset``;
    * a single integer tensor of token ids;
    * for inputs that are not token ids (a floating point tensor first), each sample counts as
      one token (``total = non_padding = loss = batch size``).
    """
    total, non_padding, loss, _ = count_batch(batch, ignore_index)
    return TokenCounts(total, non_padding, loss)


def count_batch(batch: Any, ignore_index: int = -100) -> tuple[Count, Count, Count, int | None]:
    """``(total, non_padding, loss, sequence length)`` of ``batch``: :func:`default_token_counts`
    and :func:`sequence_length` in one pass."""
    inputs, mask, labels = locate(batch)
    if inputs is None:
        raise no_inputs(batch)
    return count_tensors(inputs, mask, labels, ignore_index)


def count_tensors(
    inputs: Tensor, mask: Tensor | None, labels: Tensor | None, ignore_index: int
) -> tuple[Count, Count, Count, int | None]:
    """:func:`count_batch` of a batch already located: two small device kernels at most (one
    per mask, one per label tensor), no host copy."""
    if not is_token_ids(inputs):  # features, not token ids: one sample counts as one token
        n = int(inputs.shape[0]) if inputs.dim() > 0 else 1
        return n, n, n, None
    shape = inputs.shape
    total = shape.numel()
    # count_nonzero: one kernel, and the cheapest reduction to dispatch after a training step
    non_padding: Count = total if mask is None else torch.count_nonzero(mask)
    loss: Count = non_padding if labels is None else torch.count_nonzero(labels != ignore_index)
    return total, non_padding, loss, (int(shape[-1]) if len(shape) >= 2 else None)


def no_inputs(batch: Any) -> TokenCountError:
    if isinstance(batch, Mapping):
        return TokenCountError(
            f"cannot count tokens of a batch mapping with keys {sorted(map(str, batch))}: "
            f"none of {list(_INPUT_KEYS)} is a tensor; pass token_counter=..."
        )
    return TokenCountError(
        f"cannot count tokens of a batch of type {type(batch).__name__}; the default counter "
        "understands mappings with 'input_ids', tuples (input_ids, labels) and tensors. Pass "
        "token_counter=..."
    )


def locate(batch: Any) -> tuple[Tensor | None, Tensor | None, Tensor | None]:
    """``(inputs, attention_mask, labels)`` of a batch; ``inputs`` is None when not found (see
    :func:`default_token_counts` for the layouts understood).

    Plain dicts, tuples and lists take the fast paths: this runs on every training batch."""
    kind = type(batch)
    if kind is dict:  # the usual keys first, with no loop
        inputs, mask, labels = (
            batch.get("input_ids"),
            batch.get("attention_mask"),
            batch.get("labels"),
        )
        return (
            inputs if isinstance(inputs, Tensor) else _first_key(batch, _INPUT_KEYS),
            mask if isinstance(mask, Tensor) else None,
            labels if isinstance(labels, Tensor) else _first_key(batch, _LABEL_KEYS),
        )
    if (
        kind is tuple
        or kind is list
        or (not isinstance(batch, Mapping | Tensor | str | bytes) and isinstance(batch, Sequence))
    ):
        if not batch:
            return None, None, None
        first = batch[0]
        if isinstance(first, Tensor):
            second = batch[1] if len(batch) > 1 else None
            labels = second if isinstance(second, Tensor) and is_token_ids(second) else None
            return first, None, labels
        if isinstance(first, Mapping) and len(batch) == 2 and isinstance(batch[1], Tensor):
            return locate(first)  # (features, target) with a mapping of features
        return None, None, None
    if isinstance(batch, Mapping):
        return (
            _first_key(batch, _INPUT_KEYS),
            _first_key(batch, _MASK_KEYS),
            _first_key(batch, _LABEL_KEYS),
        )
    if isinstance(batch, Tensor):
        return batch, None, None
    return None, None, None


def _first_key(batch: Mapping[Any, Any], keys: Sequence[str]) -> Tensor | None:
    for key in keys:
        value = batch.get(key)
        if isinstance(value, Tensor):
            return value
    return None


_TOKEN_ID_DTYPES: dict[torch.dtype, bool] = {}


def is_token_ids(t: Tensor) -> bool:
    """Integer tensors (not bool) hold token ids; the answer is kept per dtype."""
    dtype = t.dtype
    known = _TOKEN_ID_DTYPES.get(dtype)
    if known is None:
        known = not (dtype.is_floating_point or dtype.is_complex) and dtype != torch.bool
        _TOKEN_ID_DTYPES[dtype] = known
    return known


def as_token_counts(value: Any, source: str) -> TokenCounts:
    """Normalise what a user token counter returned; ``source`` names it in errors."""
    if isinstance(value, tuple) and len(value) == 3:  # a TokenCounts too
        return TokenCounts(*(_check_count(v, source) for v in value))
    if isinstance(value, Mapping):
        try:
            return TokenCounts(
                *(_check_count(value[k], source) for k in ("total", "non_padding", "loss"))
            )
        except KeyError as err:
            raise TypeError(
                f"{source} returned a mapping without key {err.args[0]!r}; expected keys "
                "'total', 'non_padding' and 'loss'"
            ) from None
    count = _check_count(value, source)
    return TokenCounts(count, count, count)


def _check_count(value: Any, source: str) -> Count:
    if isinstance(value, bool):
        raise TypeError(f"{source} returned a bool ({value!r}) where a token count was expected")
    if isinstance(value, int):
        return value
    if isinstance(value, Tensor) and value.numel() == 1:  # as PendingCounts keeps them
        return value.reshape(()).to(torch.int64)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise TypeError(
        f"{source} returned {value!r} (type {type(value).__name__}); expected an int, a 0-dim "
        "tensor, a TokenCounts, a 3-tuple or a mapping with total/non_padding/loss"
    )


def sequence_length(batch: Any) -> int | None:
    """Length of the sequences in ``batch`` (the last dimension of its token ids), if any."""
    inputs = locate(batch)[0]
    if inputs is not None and inputs.dim() >= 2 and is_token_ids(inputs):
        return int(inputs.shape[-1])
    return None


_FOLD_AT = 256


class PendingCounts:
    """Token and FLOP counts since the last synchronisation, kept where they were produced.

    Host-known counts are added as Python ints; device counts (0-dim ``int64`` tensors, as
    :func:`count_tensors` and :func:`as_token_counts` give them) are kept in lists, so adding
    never copies to the host nor launches a kernel. Counts are grouped by the FLOPs per token
    ``f`` they were added with, and FLOPs are formed once, at :meth:`drain`:

        flops          = sum over f of f * (non-padding tokens added with f)   (the law's C)
        flops_hardware = sum over f of f * (all positions added with f)        (padding included)

    :meth:`drain` returns ``[total, non_padding, loss, flops, flops_hardware]`` with a single
    device-to-host copy, and resets.
    """

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self._host = [0, 0, 0]  # total, non_padding, loss
        self._host_flops = [0.0, 0.0]  # flops, flops_hardware of host counts before the mark
        self._fpt: float | None = None  # the FLOPs per token of host counts after the mark
        self._mark = (0, 0)  # host (total, non_padding) when ``_fpt`` became current
        self._by_fpt: dict[float, list[list[Tensor]]] = {}  # f -> device [total, np, loss]
        self._device: list[list[Tensor]] = [[], [], []]  # the lists of the current ``_fpt``

    def add(self, counts: TokenCounts, flops_per_token: float) -> None:
        self.add_counts(*counts, flops_per_token)

    def add_counts(self, total: Count, non_padding: Count, loss: Count, fpt: float) -> None:
        """:meth:`add` with the three counts apart (no tuple on every batch)."""
        if fpt != self._fpt:
            self._switch(fpt)
        host, device = self._host, self._device
        if isinstance(total, Tensor):
            _append(device[0], total)
        else:
            host[0] += total
        if isinstance(non_padding, Tensor):
            _append(device[1], non_padding)
        else:
            host[1] += non_padding
        if isinstance(loss, Tensor):
            _append(device[2], loss)
        else:
            host[2] += loss

    def _switch(self, flops_per_token: float | None) -> None:
        """Close the host counts of the current FLOPs per token; make ``flops_per_token``
        current (``None``: none, before draining)."""
        host, (total_mark, non_padding_mark) = self._host, self._mark
        if self._fpt is not None:
            self._host_flops[0] += self._fpt * (host[1] - non_padding_mark)
            self._host_flops[1] += self._fpt * (host[0] - total_mark)
        self._fpt, self._mark = flops_per_token, (host[0], host[1])
        if flops_per_token is not None:
            self._device = self._by_fpt.setdefault(flops_per_token, [[], [], []])

    def drain(self) -> list[float]:
        self._switch(None)
        groups = [(fpt, i, g) for fpt, lists in self._by_fpt.items() for i, g in enumerate(lists)]
        groups = [(fpt, i, g) for fpt, i, g in groups if g]
        counts, flops = list(self._host), list(self._host_flops)
        if groups:
            sums = torch.stack([torch.stack(g).sum() for _, _, g in groups])
            for (fpt, i, _), n in zip(groups, sums.tolist(), strict=True):  # one host copy
                counts[i] += int(n)
                if i < 2:  # non-padding: the law's FLOPs; all positions: hardware FLOPs
                    flops[1 - i] += fpt * n
        self._reset()
        return [float(c) for c in counts] + flops


def _append(group: list[Tensor], count: Tensor) -> None:
    group.append(count)
    if len(group) >= _FOLD_AT:  # bound memory: fold into one tensor, still on the device
        group[:] = [torch.stack(group).sum()]


def as_batch(inputs: Tensor, mask: Tensor | None, labels: Tensor | None) -> dict[str, Tensor]:
    """A batch mapping of the three tensors (what FLOPs planning and measuring read)."""
    batch = {"input_ids": inputs}
    if mask is not None:
        batch["attention_mask"] = mask
    if labels is not None:
        batch["labels"] = labels
    return batch


def as_learning_rate(lr: Any) -> float | None:
    """A parameter group's ``lr`` as a float; ``None`` when it is not a number."""
    if isinstance(lr, Tensor):
        return float(lr.detach().max())  # a tensor learning rate: one small host copy
    if isinstance(lr, int | float):
        return float(lr)
    return None


@dataclass
class Totals:
    """Run totals over all ranks since the start of training (resumes included)."""

    tokens_total: int = 0
    tokens: int = 0
    tokens_loss: int = 0
    flops: float = 0.0
    flops_hardware: float = 0.0
    """FLOPs per token over every processed position, padding included (``flops``: non-padding
    tokens only, the law's C)."""

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> Totals:
        """The totals of a checkpoint's state (``ScalingCore.state_dict``, versions 1 and 2)."""
        flops = float(state.get("flops", 0.0))
        return cls(
            tokens_total=int(state.get("tokens_total", 0)),
            tokens=int(state.get("tokens", 0)),
            tokens_loss=int(state.get("tokens_loss", 0)),
            flops=flops,
            # version 1 did not count padding: from the resume on, it is counted
            flops_hardware=float(state.get("flops_hardware", flops)),
        )
