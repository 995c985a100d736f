"""Accuracy of ``detect_phases`` on synthetic families with a known phase.

For every kind (scaling, plateau, cold start, all at the uniform-guess loss), noise level and
seed, draw a family of 6-12 points over 2-3 decades, run ``detect_phases`` and compare with
the phase the family was built to have. Prints accuracy per kind and noise level, the
confusions, and the time per call.

    python benchmarks/phase_accuracy.py                # 50 seeds, noise 1 % and 3 %
    python benchmarks/phase_accuracy.py --seeds 200 --noise 0.01 0.03 0.05 --chance
"""

from __future__ import annotations

import argparse
import collections
import time

import numpy as np
from synthetic_phases import PHASE_KINDS, sample_phase_family  # beside this script

from mlflow_scaling.laws.phases import detect_phases


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=50)
    parser.add_argument("--noise", type=float, nargs="+", default=[0.01, 0.03])
    parser.add_argument("--min-points", type=int, default=6)
    parser.add_argument("--max-points", type=int, default=12)
    parser.add_argument("--chance", action="store_true", help="pass chance_loss=log(vocab)")
    args = parser.parse_args(argv)

    correct: dict[tuple[str, float], int] = collections.Counter()
    confusions: dict[tuple[str, float], collections.Counter] = collections.defaultdict(
        collections.Counter
    )
    models: collections.Counter = collections.Counter()
    by_points: dict[int, list[int]] = collections.defaultdict(lambda: [0, 0])
    elapsed, calls = 0.0, 0
    for noise in args.noise:
        for kind in PHASE_KINDS:
            for seed in range(args.seeds):
                rng = np.random.default_rng([seed, PHASE_KINDS.index(kind), int(noise * 1e4)])
                n_points = int(rng.integers(args.min_points, args.max_points + 1))
                span = float(rng.uniform(2.0, 3.0))
                fam = sample_phase_family(
                    kind, rng, n_points=n_points, noise=noise, span_decades=span
                )
                start = time.perf_counter()
                rep = detect_phases(
                    fam.x, fam.loss, chance_loss=fam.chance_loss if args.chance else None
                )
                elapsed += time.perf_counter() - start
                calls += 1
                models[rep.model] += 1
                by_points[n_points][1] += 1
                by_points[n_points][0] += rep.phase == fam.expected_phase
                if rep.phase == fam.expected_phase:
                    correct[kind, noise] += 1
                else:
                    confusions[kind, noise][f"{rep.phase} (n={n_points})"] += 1

    header = f"{'kind':<15}" + "".join(f"  noise {100 * nz:>3.0f} %" for nz in args.noise)
    print(f"phase accuracy over {args.seeds} seeds, {args.min_points}-{args.max_points} points, "
          f"2-3 decades, chance_loss {'given' if args.chance else 'not given'}")  # fmt: skip
    print(header)
    for kind in PHASE_KINDS:
        cells = "".join(f"  {correct[kind, nz] / args.seeds:>10.0%}" for nz in args.noise)
        print(f"{kind:<15}{cells}")
    overall = sum(correct.values()) / (args.seeds * len(PHASE_KINDS) * len(args.noise))
    print(f"{'overall':<15}  {overall:>10.1%}")
    print(f"mean time per detect_phases call: {1e3 * elapsed / calls:.0f} ms")
    print(
        "accuracy by number of points:",
        ", ".join(f"{n}: {ok / total:.0%}" for n, (ok, total) in sorted(by_points.items())),
    )
    print("models chosen:", dict(models.most_common()))
    for (kind, noise), counter in sorted(confusions.items()):
        print(f"  {kind} @ {100 * noise:.0f} % misread as: {dict(counter.most_common())}")


if __name__ == "__main__":
    main()
