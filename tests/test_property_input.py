"""Property-based tests (Hypothesis) for the CSV reader, the CLI's error path and the fitter.

Random bytes, huge and tiny numbers, ragged rows, duplicate or unicode column names: the
reader returns finite positive points or raises one :class:`InputError`, and the CLI prints one
error line and exits 2. Random valid families: the fitter returns finite parameters or raises
a ``ValueError`` with a message, and the JSON summary is strict JSON.
"""

import contextlib
import csv
import io
import json
import math

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlflow_scaling.cli import main
from mlflow_scaling.laws import fit_chinchilla
from mlflow_scaling.strict_json import dumps
from mlflow_scaling.summary import summarize_chinchilla
from mlflow_scaling.tabular import InputError, read_points

FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def read_or_error(tmp_path_factory, data: bytes):
    path = tmp_path_factory.mktemp("prop") / "runs.csv"
    path.write_bytes(data)
    try:
        return path, read_points(path)
    except InputError as exc:
        return path, exc


def cli_error(path) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        rc = main(["fit", str(path), "--bootstrap", "0"])
    return rc, err.getvalue()


def assert_points_or_one_line(result):
    if isinstance(result, InputError):
        assert str(result) and "\n" not in str(result)
        return
    for arr in (result.n, result.d, result.loss):
        assert np.all(np.isfinite(arr)) and np.all(arr > 0) and np.all(arr < 1.7e308)


@FAST
@given(data=st.binary(max_size=300))
def test_random_bytes_are_points_or_one_error(tmp_path_factory, data):
    path, result = read_or_error(tmp_path_factory, data)
    assert_points_or_one_line(result)
    if isinstance(result, InputError):
        rc, stderr = cli_error(path)
        assert rc == 2 and len(stderr.strip().splitlines()) == 1, stderr


numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["1e400", "-1e400", "1e-400", "1.7976931348623157e308", "0", "", " ", "x"]),
    st.floats(min_value=1e-300, max_value=1e300).map(lambda v: f"{v:.17g}"),
)


@settings(max_examples=40, deadline=None)
@given(
    header=st.lists(
        st.one_of(st.sampled_from(["N", "D", "loss"]), st.text(min_size=0, max_size=6)),
        min_size=1,
        max_size=5,
    ),
    rows=st.lists(st.lists(numbers, min_size=0, max_size=6), min_size=0, max_size=4),
)
def test_ragged_huge_tiny_and_odd_names_give_one_error_line_and_exit_2(
    tmp_path_factory, header, rows
):
    # At most 4 rows: never enough for a fit, so every file is an error and the CLI stays fast.
    out = io.StringIO()
    csv.writer(out).writerows([header, *rows])
    path, result = read_or_error(tmp_path_factory, out.getvalue().encode("utf-8"))
    assert_points_or_one_line(result)
    rc, stderr = cli_error(path)
    assert rc == 2
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mlflow-scaling fit: error: "), stderr


@st.composite
def families(draw):
    """A Chinchilla-like family: 2-6 sizes spanning 1-3 decades, 2-4 token counts each."""
    n_sizes = draw(st.integers(2, 6))
    per_size = draw(st.integers(2, 4))
    low = draw(st.floats(3.0, 12.0))
    span = draw(st.floats(0.3, 3.0))
    sizes = 10 ** np.linspace(low, low + span, n_sizes)
    ratio = 10 ** np.linspace(0.5, draw(st.floats(1.0, 3.0)), per_size)
    n = np.repeat(sizes, per_size)
    d = n * np.tile(ratio, n_sizes)
    E, A, B = draw(st.floats(0.1, 5)), draw(st.floats(1, 1e4)), draw(st.floats(1, 1e4))
    alpha, beta = draw(st.floats(0.05, 1.0)), draw(st.floats(0.05, 1.0))
    noise = draw(st.sampled_from([0.0, 0.01, 0.05]))
    seed = draw(st.integers(0, 2**16))
    loss = (E + A / n**alpha + B / d**beta) * np.exp(
        np.random.default_rng(seed).normal(0, noise, n.size)
    )
    return n, d, loss


@settings(max_examples=6, deadline=None)
@given(family=families())
def test_random_families_give_finite_parameters_or_a_clear_error(family):
    n, d, loss = family
    try:
        fit = fit_chinchilla(n, d, loss)
    except ValueError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    params = fit.law.to_dict()
    assert all(math.isfinite(v) for v in params.values()), params
    try:
        summary, _ = summarize_chinchilla(n, d, loss, n_boot=0, budgets=[1e20], fit=fit)
    except ValueError as exc:  # e.g. exponents that allow no allocation: said, not NaN
        assert str(exc)
        return
    json.loads(dumps(summary), parse_constant=lambda token: (_ for _ in ()).throw(ValueError))
