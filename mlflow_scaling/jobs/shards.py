"""Splitting the families between N refit processes: ``refit --shard I/N``.

A family (experiment id, family name) belongs to shard ``h mod N``, where ``h`` is the first 8
bytes of SHA-256 over ``experiment id NUL family name``, read as an unsigned integer. The hash is
stable across processes, machines and Python versions (unlike ``hash()``), so N pods of a
Kubernetes Indexed Job started with ``--shard $INDEX/N`` (INDEX = 0 .. N-1) split the families:
every family is in exactly one shard, and is written by exactly one pod.
"""

from __future__ import annotations

import argparse
import hashlib
from dataclasses import dataclass


def shard_of(experiment_id: str, family: str, count: int) -> int:
    """The shard (0 .. count-1) that owns the family."""
    key = f"{experiment_id}\0{family}".encode()
    return int.from_bytes(hashlib.sha256(key).digest()[:8], "big") % count


@dataclass(frozen=True)
class Shard:
    index: int
    count: int

    def owns(self, experiment_id: str, family: str) -> bool:
        return shard_of(experiment_id, family, self.count) == self.index

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def parse_shard(text: str) -> Shard:
    """``I/N`` with 0 <= I < N (argparse type: a bad value is one clear message)."""
    index, sep, count = text.partition("/")
    try:
        shard = Shard(int(index), int(count))
    except ValueError:
        shard = None
    if not sep or shard is None or shard.count < 1 or not 0 <= shard.index < shard.count:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a shard I/N with 0 <= I < N (e.g. 0/4 ... 3/4)"
        )
    return shard
