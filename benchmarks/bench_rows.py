"""Time and peak memory of `mlflow-scaling fit`, `check` and `phases` against the number of rows.

Writes CSVs of a synthetic family (Epoch's Chinchilla law, 1 % log-normal noise; sizes and
token counts spread over three decades each) and runs every command on every size in a fresh
process, printing wall and CPU seconds (on a shared machine CPU seconds compare better), peak
resident memory (``ru_maxrss``) and the exit status. Each child gets an address-space limit
(``--memory-limit-gb``) so that a run which would exhaust the machine ends with a MemoryError.

Run it on another checkout (e.g. main, for the numbers before a change) with PYTHONPATH set
to that checkout.

    python benchmarks/bench_rows.py [--rows 1000 10000 100000] [--bootstrap 0]

Targets (issue 15): 100,000 rows in <= 2 GB resident and <= 60 s per command.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

EPOCH = {"E": 1.8172, "A": 477.8, "B": 2143.0, "alpha": 0.3473, "beta": 0.3672}


def write_family(path: Path, rows: int, seed: int = 0) -> None:
    """``rows`` runs (N, D, loss): sizes 1e7..1e10, 20..2000 tokens per parameter."""
    rng = np.random.default_rng(seed)
    n = 10 ** rng.uniform(7, 10, rows)
    d = n * 10 ** rng.uniform(np.log10(20), np.log10(2000), rows)
    loss = EPOCH["E"] + EPOCH["A"] / n ** EPOCH["alpha"] + EPOCH["B"] / d ** EPOCH["beta"]
    loss *= np.exp(rng.normal(0, 0.01, rows))
    np.savetxt(path, np.column_stack([n, d, loss]), delimiter=",", header="N,D,loss",
               comments="", fmt="%.8g")  # fmt: skip


def _child(argv: list[str], limit_gb: float) -> int:
    """Run the CLI in this process and report its peak RSS on stderr's last line."""
    limit = int(limit_gb * 2**30)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    from mlflow_scaling.cli import main

    try:
        rc = main(argv)
    except MemoryError:
        rc = 137
    usage = resource.getrusage(resource.RUSAGE_SELF)
    peak = usage.ru_maxrss / 2**20  # kB -> GB
    print(f"PEAK_GB {peak:.3f} {usage.ru_utime + usage.ru_stime:.2f}", file=sys.stderr)
    return rc


def measure(argv: list[str], limit_gb: float, timeout: float):
    """(wall seconds, CPU seconds, peak GB, exit status, first message line) of one command."""
    start = time.perf_counter()
    try:
        out = subprocess.run(
            [sys.executable, __file__, "--child", str(limit_gb), *argv],
            capture_output=True, text=True, timeout=timeout,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        return time.perf_counter() - start, np.nan, np.nan, -1, f"timed out after {timeout:.0f} s"
    seconds = time.perf_counter() - start
    lines = out.stderr.strip().splitlines()
    peak, cpu = np.nan, np.nan
    if lines and lines[-1].startswith("PEAK_GB"):
        peak, cpu = (float(v) for v in lines[-1].split()[1:3])
    message = next((line for line in lines if not line.startswith("PEAK_GB")), "")
    if out.returncode not in (0, 1, 2):
        message = lines[-2] if len(lines) > 1 else message
    return seconds, cpu, peak, out.returncode, message[:110]


def main() -> int:
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        return _child(sys.argv[3:], float(sys.argv[2]))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument("--commands", nargs="+", default=["fit", "check", "phases"])
    parser.add_argument("--bootstrap", type=int, default=0, help="replicates for fit and check")
    parser.add_argument("--memory-limit-gb", type=float, default=6.0)
    parser.add_argument("--timeout", type=float, default=300.0)
    args = parser.parse_args()
    extra = {
        "fit": ["--bootstrap", str(args.bootstrap)],
        "check": ["--target-params", "1e11", "--bootstrap", str(args.bootstrap)],
        "phases": [],
    }
    print(f"{'command':<8}{'rows':>9}{'wall s':>9}{'CPU s':>9}{'peak GB':>9}{'exit':>6}  message")
    with tempfile.TemporaryDirectory() as tmp:
        for rows in args.rows:
            path = Path(tmp) / f"rows_{rows}.csv"
            write_family(path, rows)
            for command in args.commands:
                seconds, cpu, peak, rc, message = measure(
                    [command, str(path), *extra[command]], args.memory_limit_gb, args.timeout
                )
                row = f"{command:<8}{rows:>9}{seconds:>9.1f}{cpu:>9.1f}{peak:>9.2f}{rc:>6}"
                print(f"{row}  {message}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
