"""``mlflow-scaling watch``: refit passes on a schedule, for a single machine.

One pass at a time: the next pass starts ``interval`` after the previous one *started* (or at
once, when a pass took longer than the interval). SIGTERM or SIGINT stops the loop gracefully:
a pass in progress finishes its current family's write and the loop exits without starting
another. An error that stops a whole pass (the server is down) is logged and the loop goes on;
errors within a family never stop the others (see :func:`refit_pass`).
"""

from __future__ import annotations

import logging
import re
import signal
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..tracking.reading import CurveCache

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from .outcome import FamilyOutcome

log = logging.getLogger(__name__)

_UNITS = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
MAX_INTERVAL_S = 366 * 86400.0
"""The longest interval between passes: a year (longer ones overflow the timer's wait)."""
_INTERVAL = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([smhd]?)\s*", re.IGNORECASE)


def parse_interval(text: str, allow_zero: bool = False) -> float:
    """Seconds in an interval such as ``30s``, ``15m``, ``1h``, ``1d``, ``1h30m`` or ``90``
    (``0s`` too with ``allow_zero``)."""
    text = str(text)
    pos, total = 0, 0.0
    while pos < len(text):
        m = _INTERVAL.match(text, pos)
        if not m or m.end() == pos:
            break
        total += float(m.group(1)) * _UNITS[m.group(2).lower()]
        pos = m.end()
    if pos != len(text) or not text.strip():
        raise ValueError(
            f"interval {text!r} is not like 30s, 15m, 1h, 1d or 1h30m (a number alone is seconds)"
        )
    if total < 0 or (total == 0 and not allow_zero):
        raise ValueError(f"interval {text!r} must be longer than zero")
    if total > MAX_INTERVAL_S:
        raise ValueError(f"interval {text!r} is longer than {MAX_INTERVAL_S / 86400:g} days")
    return total


class StopFlag:
    """Set by SIGTERM/SIGINT (once installed) or by :meth:`set`; waits wake up when set."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.signal_name: str | None = None

    def set(self, name: str = "stop") -> None:
        self.signal_name = self.signal_name or name
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()

    def wait(self, seconds: float) -> bool:
        return self._event.wait(max(0.0, seconds))

    def install(self) -> None:
        """Handle SIGTERM and SIGINT (main thread only)."""
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda signum, _frame: self.set(signal.Signals(signum).name))


def watch(
    client_factory: Callable[[], MlflowClient],
    run_pass: Callable[[MlflowClient, CurveCache], list[FamilyOutcome]],
    *,
    interval_s: float,
    stop: StopFlag,
    max_passes: int | None = None,
    on_pass: Callable[[int, list[FamilyOutcome] | None, BaseException | None], None] | None = None,
) -> int:
    """Run ``run_pass`` every ``interval_s`` seconds until ``stop`` is set; the passes run.

    ``client_factory`` is called before each pass until it succeeds (so a server that is down
    at start-up is simply tried again). ``on_pass(number, outcomes, error)`` reports each pass.
    The curve cache lives across passes, so unchanged training curves are read once.
    """
    cache = CurveCache()
    client = None
    passes = 0
    while not stop.is_set() and (max_passes is None or passes < max_passes):
        started = time.monotonic()
        passes += 1
        outcomes, error = None, None
        try:
            if client is None:
                client = client_factory()
            outcomes = run_pass(client, cache)
        except Exception as exc:  # the pass as a whole failed; try again next time
            error = exc
            log.error("refit pass %d failed: %s", passes, exc)
        if on_pass is not None:
            on_pass(passes, outcomes, error)
        if stop.is_set() or (max_passes is not None and passes >= max_passes):
            break
        stop.wait(interval_s - (time.monotonic() - started))
    return passes
