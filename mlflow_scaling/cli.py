"""`mlflow-scaling`'s entry point: ``python -m mlflow_scaling.cli`` and the console script.

The parser and the subcommands live in :mod:`.commands`.
"""

from __future__ import annotations

import sys

from .commands import build_parser, main

__all__ = ["build_parser", "main"]

if __name__ == "__main__":
    sys.exit(main())
