"""Where an unexpected error's traceback goes: a file, so a user sees one line and its path.

Input problems are :class:`~mlflow_scaling.inputs.InputError` (one line, no traceback). Any
other exception is a bug: the command (and the refit job, per family) prints one line naming
the file that holds the full traceback, under ``$MLFLOW_SCALING_LOG_DIR`` (default: the
temporary folder's ``mlflow-scaling`` folder).
"""

from __future__ import annotations

import os
import tempfile
import time
import traceback
from pathlib import Path

ENV_LOG_DIR = "MLFLOW_SCALING_LOG_DIR"


def log_dir() -> Path:
    return Path(os.environ.get(ENV_LOG_DIR) or Path(tempfile.gettempdir()) / "mlflow-scaling")


def one_line(exc: BaseException) -> str:
    """``Type: first line of the message``."""
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0]}" if text else type(exc).__name__


def write_traceback(exc: BaseException, label: str) -> Path:
    """Write ``exc``'s full traceback to a new file and return its path."""
    folder = log_dir()
    folder.mkdir(parents=True, exist_ok=True)
    safe = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in label)[:40] or "error"
    path = folder / f"{safe}-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}-{id(exc):x}.txt"
    path.write_text("".join(traceback.format_exception(exc)), encoding="utf-8")
    return path
