"""Progress of a refit pass, family by family.

On a terminal one status line is rewritten in place (``refit 2/5 · family 'x'…``) and cleared
at the end; elsewhere (cron, a CI log, a pipe) each family gets one timestamped line when it
starts and one when it is done, so a long pass leaves a readable trace. Hook it into
:func:`refit_pass` with ``on_family_start=progress.start`` and call :meth:`done` from
``on_outcome``.
"""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from .outcome import FamilyOutcome


class RefitProgress:
    """Shows which family a pass is fitting and how many are left."""

    def __init__(self, stream: TextIO | None = None, terminal: bool | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        if terminal is None:
            isatty = getattr(self.stream, "isatty", None)
            terminal = bool(isatty and isatty())
        self.terminal = terminal
        self._width = 0
        self._current: tuple[str, int, int, float] | None = None

    def start(self, family: str, index: int, total: int) -> None:
        """A family's analysis starts (``index`` from 0 of ``total`` families to fit)."""
        self._current = (family, index, total, time.monotonic())
        if self.terminal:
            self._rewrite(f"refit {index + 1}/{total} · family {family!r}…")
        else:
            self._line(f"refit {index + 1}/{total}: family {family!r} started")

    def done(self, outcome: FamilyOutcome) -> None:
        """A family's outcome arrived (skipped families never started; they show nothing)."""
        if self._current is None or self._current[0] != outcome.family:
            return
        family, index, total, started = self._current
        self._current = None
        if self.terminal:
            self.close()  # the caller may print the outcome next; the next start redraws
            return
        seconds = time.monotonic() - started
        self._line(
            f"refit {index + 1}/{total}: family {family!r} {outcome.status} ({seconds:.1f} s)"
        )

    def close(self) -> None:
        """Clear the status line (on a terminal)."""
        if self.terminal and self._width:
            self.stream.write("\r" + " " * self._width + "\r")
            self.stream.flush()
            self._width = 0

    def _rewrite(self, text: str) -> None:
        self.stream.write("\r" + text.ljust(self._width))
        self.stream.flush()
        self._width = max(self._width, len(text))

    def _line(self, text: str) -> None:
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        self.stream.write(f"{stamp} {text}\n")
        self.stream.flush()
