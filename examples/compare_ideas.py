"""Does the idea scale? Two small trained families compared by `mlflow-scaling compare`.

The idea here is a learning rate: the baseline family trains with the default learning rates
of ``train_family.py``, the candidate with twice those. Both train the quick grid's two smaller
compute budgets (7 byte-level GPTs each: 3-4 sizes per budget, every run logging N, D and C
through ``ScalingLawCallback``), so the whole script takes under 5 minutes on 2 CPU cores. Then

    mlflow-scaling compare --experiment compare-ideas --baseline lr-1x --candidate lr-2x

fits both families, compares their measured frontiers over the budgets both trained and then
their laws' compute-optimal frontiers (one shift multiplier or a slope difference, the
multiplier per budget with its bootstrap interval, the crossover) and writes a comparison run to the
candidate's experiment, with ``scaling/compare.json`` and ``scaling/compare.png``.

    python examples/compare_ideas.py [--tracking-uri sqlite:///mlflow.db]

Re-running reuses finished runs.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from train_family import train_family  # noqa: E402

EXPERIMENT = "compare-ideas"
BASELINE, CANDIDATE = "lr-1x", "lr-2x"
FAMILIES = ((BASELINE, 1.0), (CANDIDATE, 2.0))


# The quick grid's two smaller budgets (7 runs a family): the example stays within 5 minutes.
COMPARE_BUDGETS = (8e10, 1.6e11)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracking-uri", default="sqlite:///mlflow.db")
    parser.add_argument("--experiment", default=EXPERIMENT)
    parser.add_argument("--bootstrap", type=int, default=200)
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    started = time.perf_counter()
    for family, lr_scale in FAMILIES:
        train_family(
            tracking_uri=args.tracking_uri, experiment=args.experiment, family=family,
            quick=True, progress=not args.no_progress, lr_scale=lr_scale,
            budgets=COMPARE_BUDGETS,
        )  # fmt: skip

    from mlflow_scaling.cli import main as cli

    command = [
        "compare", "--tracking-uri", args.tracking_uri, "--experiment", args.experiment,
        "--baseline", BASELINE, "--candidate", CANDIDATE, "--bootstrap", str(args.bootstrap),
        "--format", "json",
    ]  # fmt: skip
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = cli(command)
    if code != 0:
        return code
    doc = json.loads(out.getvalue())
    print(f"\n$ mlflow-scaling {' '.join(command[:-2])}")
    from mlflow_scaling.commands.compare import format_compare_table

    print(format_compare_table(doc))
    target = doc["budgets"][-1]
    print(
        f"\nverdict over the trained range: {doc['verdict']}; the laws say "
        f"{doc['slope_test']['decision']}, and at {target['flops']:.3g} FLOPs the {CANDIDATE} "
        f"family is worth {target['multiplier']:.2f}x the compute of {BASELINE} "
        f"({target['lo']:.2f}–{target['hi']:.2f}); done in {time.perf_counter() - started:.0f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
