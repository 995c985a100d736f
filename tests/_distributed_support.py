"""Two CPU processes over gloo for the callback's sharded and multi-rank tests.

:func:`run_ranks` starts ``fn(rank, *args)`` in fresh processes (``spawn``: no state inherited
from pytest), each with the environment Lightning and ``torch.distributed`` read, and fails the
test with the worker's traceback, or with a timeout instead of hanging. Workers report by
writing ``rank<N>.json`` into a folder the test reads.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.multiprocessing as mp
from conftest import free_port


def run_ranks(
    fn: Callable[..., None], out: Path, *args: Any, world_size: int = 2, timeout_s: float = 300.0
) -> list[dict[str, Any]]:
    """Run ``fn(rank, out, *args)`` on ``world_size`` ranks; return each rank's JSON report."""
    port = free_port()
    context = mp.start_processes(
        _enter,
        args=(fn, world_size, port, out, args),
        nprocs=world_size,
        join=False,
        start_method="spawn",
    )
    deadline = time.monotonic() + timeout_s
    while not context.join(timeout=1.0):  # raises with the traceback if a worker raised
        if time.monotonic() > deadline:
            for process in context.processes:
                if process.is_alive():
                    process.kill()
            raise AssertionError(f"{fn.__name__} on {world_size} ranks hung past {timeout_s:g} s")
    return [json.loads((out / f"rank{r}.json").read_text()) for r in range(world_size)]


def _enter(
    rank: int, fn: Callable[..., None], world_size: int, port: int, out: Path, args: tuple
) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        WORLD_SIZE=str(world_size),
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        NODE_RANK="0",
    )
    torch.set_num_threads(1)
    fn(rank, out, *args)
    # The work is done and reported. Interpreter teardown then destroys gloo's threads in an
    # order that now and then aborts the process ("terminate called without an active
    # exception", SIGABRT) after a finished run; leave without it. A worker that raised never
    # gets here: its traceback reaches the test as before.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def report(out: Path, rank: int, **values: Any) -> None:
    (out / f"rank{rank}.json").write_text(json.dumps(values))
