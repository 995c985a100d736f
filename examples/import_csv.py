"""Import a CSV of past runs (N, D or C, loss) into MLflow as members of a scaling family.

Each row becomes a finished run with the data contract's tags and metrics, as if the Lightning
callback had logged it, so `mlflow-scaling refit` fits it like any other family. Re-importing
the same file adds nothing.

    python examples/import_csv.py runs.csv --family my-history [--c-col C] \\
        [--experiment scaling-demo] [--tracking-uri sqlite:///mlflow.db]
"""

from __future__ import annotations

import argparse
import sys

from mlflow_scaling.tabular import InputError, read_points
from mlflow_scaling.tracking.connection import connect
from mlflow_scaling.tracking.importing import import_points


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file")
    parser.add_argument("--family", required=True)
    parser.add_argument("--experiment", default="scaling-demo")
    parser.add_argument("--tracking-uri", default=None, help="default: $MLFLOW_TRACKING_URI")
    parser.add_argument("--n-col", default="N")
    parser.add_argument("--d-col", default="D")
    parser.add_argument("--c-col", default=None, help="compute column; D = C/(6N)")
    parser.add_argument("--loss-col", default="loss")
    args = parser.parse_args(argv)
    try:
        points = read_points(
            args.file, n_col=args.n_col, d_col=args.d_col, c_col=args.c_col,
            loss_col=args.loss_col,
        )  # fmt: skip
        client = connect(args.tracking_uri)
        result = import_points(
            client, points, family=args.family, experiment=args.experiment, source=args.file
        )
    except InputError as exc:
        print(f"import_csv: error: {exc}", file=sys.stderr)
        return 2
    print(
        f"{args.family}: {len(result.created)} runs imported into experiment "
        f"{args.experiment!r}, {result.skipped} already there"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
