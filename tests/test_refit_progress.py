"""Progress of a refit pass: a status line on a terminal, one log line per family elsewhere."""

import io
import re

from mlflow_scaling.jobs.progress import RefitProgress
from mlflow_scaling.jobs.refit import FamilyOutcome


def outcome(family: str, status: str = "fitted") -> FamilyOutcome:
    return FamilyOutcome(experiment_id="1", experiment="e", family=family, status=status)


def test_log_lines_when_not_a_terminal():
    stream = io.StringIO()
    progress = RefitProgress(stream)  # a StringIO is not a terminal
    progress.start("a", 0, 2)
    progress.done(outcome("a"))
    progress.start("b", 1, 2)
    progress.done(outcome("b", "insufficient_data"))
    progress.done(outcome("never-started", "skipped"))  # skipped families show nothing
    lines = stream.getvalue().splitlines()
    stamp = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ "
    expected = [
        r"refit 1/2: family 'a' started",
        r"refit 1/2: family 'a' fitted \(\d+\.\d s\)",
        r"refit 2/2: family 'b' started",
        r"refit 2/2: family 'b' insufficient_data \(\d+\.\d s\)",
    ]
    assert len(lines) == len(expected)
    for line, pattern in zip(lines, expected, strict=True):
        assert re.fullmatch(stamp + pattern, line), line


def test_one_status_line_on_a_terminal():
    stream = io.StringIO()
    progress = RefitProgress(stream, terminal=True)
    progress.start("long-family-name", 0, 2)
    progress.done(outcome("long-family-name"))
    progress.start("b", 1, 2)
    progress.done(outcome("b"))
    text = stream.getvalue()
    assert "\n" not in text  # rewritten in place, never scrolling
    assert "refit 1/2 · family 'long-family-name'…" in text and "refit 2/2 · family 'b'…" in text
    # cleared after each family, so what the caller prints next starts on a clean line
    for shown in ("refit 1/2 · family 'long-family-name'…", "refit 2/2 · family 'b'…"):
        assert shown + "\r" + " " * len(shown) + "\r" in text
