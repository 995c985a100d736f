"""Findings of the hostile-input probe (issue 15), each reproduced and pinned.

Every bad input ends in one line on stderr naming the culprit and exit 2; finite data gives
finite numbers or that one line; JSON output is strict JSON.
"""

import json
import re

import numpy as np
import pytest
from test_cli_fit import run_cli

from mlflow_scaling import strict_json
from mlflow_scaling.laws import bootstrap_chinchilla, fit_chinchilla, fitting
from mlflow_scaling.laws.isoflop import cluster_log_values, fit_isoflop
from mlflow_scaling.laws.phases import detect_phases
from mlflow_scaling.tabular import InputError, read_points


def strict_loads(text: str):
    """json.loads that refuses NaN and Infinity, as strict parsers do."""

    def refuse(token):
        raise ValueError(f"not JSON: {token}")

    return json.loads(text, parse_constant=refuse)


def write(tmp_path, text, name="runs.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def one_error_line(out) -> str:
    assert out.returncode == 2, (out.stdout, out.stderr)
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    return lines[0]


# --- rows against the header ---------------------------------------------------------------


def test_header_shorter_than_its_rows_is_an_error_naming_the_line(tmp_path):
    # Before: pandas took the first field as an index and fitted D as N (alpha 1.20), exit 0.
    rows = "".join(f"{n:g},{20 * n:g},{120 * n * n:g},{3 - i / 10}\n" for i, n in
                   enumerate(np.geomspace(1e7, 1e9, 6)))  # fmt: skip
    path = write(tmp_path, "N,D,loss\n" + rows)
    line = one_error_line(run_cli("fit", path, "--bootstrap", "0"))
    assert f"{path}: line 2 has 4 fields but the header has 3 (N, D, loss)" in line


def test_row_with_fewer_fields_is_an_error_naming_the_line(tmp_path):
    path = write(tmp_path, "N,D,loss\n1e8,1e9,3.0\n2e8,1e9\n3e8,1e9,2.8\n")
    with pytest.raises(InputError, match="line 3 has 2 fields but the header has 3"):
        read_points(path)


def test_trailing_commas_are_tolerated(tmp_path):
    clean = write(tmp_path, "N,D,loss\n1e8,1e9,3.0\n2e8,1e9,2.9\n", "clean.csv")
    trailing = write(tmp_path, "N,D,loss,\n1e8,1e9,3.0,\n2e8,1e9,2.9\n", "trailing.csv")
    a, b = read_points(clean), read_points(trailing)
    np.testing.assert_array_equal(a.n, b.n)
    np.testing.assert_array_equal(a.d, b.d)
    np.testing.assert_array_equal(a.loss, b.loss)
    assert b.n.tolist() == [1e8, 2e8]


def test_error_lines_count_blank_lines_and_quoted_newlines(tmp_path):
    path = write(tmp_path, 'note,N,D,loss\n"a\nb",1e8,1e9,3.0\n\nx,2e8,1e9,-1\n')
    with pytest.raises(InputError, match=r"column 'loss', row 2 \(line 5\): must be positive"):
        read_points(path)


def test_duplicate_column_names_are_an_error(tmp_path):
    path = write(tmp_path, "N,D,N,loss\n1e8,1e9,2e8,3.0\n")
    with pytest.raises(InputError, match="column 'N' appears twice in the header"):
        read_points(path)


def test_a_directory_is_not_reported_missing(tmp_path):
    line = one_error_line(run_cli("fit", tmp_path, "--bootstrap", "0"))
    assert line.endswith(f"{tmp_path}: is a directory, not a CSV file")


def test_bytes_that_are_not_utf8_are_named(tmp_path):
    path = tmp_path / "binary.csv"
    path.write_bytes(b"N,D,loss\n1e8,\xff\xfe,3\n")
    with pytest.raises(InputError, match=r"not UTF-8 text \(byte 13 is 0xff\)"):
        read_points(path)


def test_a_value_at_the_float_limit_is_an_infinity(tmp_path):
    # MLflow's SQL store keeps inf as the largest double; it must not become a point.
    path = write(tmp_path, "N,D,loss\n1e8,1e9,3.0\n2e8,1e9,1.7976931348623157e308\n")
    with pytest.raises(InputError, match=r"column 'loss', row 2 \(line 3\): value is not finite"):
        read_points(path)


def test_duplicate_rows_are_kept_with_a_warning_naming_them(tmp_path):
    rows = ["1e8,1e9,3.0", "2e8,1e9,2.9", "1e8,1e9,3.0", "3e8,1e9,2.8", "2e8,1e9,2.9"]
    points = read_points(write(tmp_path, "N,D,loss\n" + "\n".join(rows) + "\n"))
    assert points.n.size == 5
    (warning,) = points.warnings
    assert "2 rows repeat an earlier row exactly, at line 4 (= line 2), 6 (= line 3)" in warning
    distinct = read_points(write(tmp_path, "N,D,loss\n1e8,1e9,3.0\n1e8,1e9,3.1\n", "seeds.csv"))
    assert distinct.warnings == ()


# --- options that blamed the wrong thing -----------------------------------------------------


@pytest.fixture(scope="module")
def family_csv(tmp_path_factory):
    rng = np.random.default_rng(0)
    n = np.repeat(np.geomspace(1e7, 1e9, 5), 4)
    d = n * np.tile([10.0, 30.0, 100.0, 300.0], 5)
    loss = (1.8 + 480 / n**0.35 + 2100 / d**0.37) * np.exp(rng.normal(0, 0.005, n.size))
    path = tmp_path_factory.mktemp("hostile") / "family.csv"
    body = "".join(f"{a:g},{b:g},{c:.6f}\n" for a, b, c in zip(n, d, loss, strict=True))
    path.write_text("N,D,loss\n" + body)
    return path


def test_too_few_bootstrap_replicates_are_refused(family_csv):
    # Before: --bootstrap 1 printed a "95 % interval" that excluded the estimate.
    out = run_cli("fit", family_csv, "--bootstrap", "1")
    assert out.returncode == 2
    assert "argument --bootstrap: 1 replicates are too few for a 95 % interval" in out.stderr


def test_absurd_bootstrap_blames_the_option_not_the_file(family_csv):
    out = run_cli("check", family_csv, "--target-params", "1e10", "--bootstrap", str(10**12))
    assert out.returncode == 2
    assert "argument --bootstrap: 1000000000000 replicates is more than 100,000" in out.stderr
    assert str(family_csv) not in out.stderr


def test_bootstrap_work_beyond_a_minute_says_what_to_do(tmp_path):
    n = np.geomspace(1e7, 1e9, 6000)
    path = write(tmp_path, "N,D,loss\n" + "".join(f"{v:.8g},{20 * v:.8g},3\n" for v in n))
    line = one_error_line(run_cli("fit", path, "--bootstrap", "1000"))
    assert "--bootstrap 1000 on 6,000 points is 6e+06 point-refits" in line
    assert "use --bootstrap 833 or fewer, or aggregate per run first" in line


def test_one_size_family_says_it_needs_two_sizes(tmp_path):
    # Before: "allocation needs alpha + beta > 0, got -617036092049.07 + 0.35".
    rows = "".join(f"1e8,{d:g},{2 + 50 / d**0.3:.6f}\n" for d in np.geomspace(1e9, 1e11, 6))
    line = one_error_line(run_cli("fit", write(tmp_path, "N,D,loss\n" + rows), "--bootstrap", "0"))
    assert "needs at least 2 distinct model sizes; every point has N=1e+08" in line
    assert "alpha + beta" not in line


# --- overflow ------------------------------------------------------------------------------


def test_losses_near_1e300_fit_the_law_they_follow():
    # Before: E came out at 1.2e275 (objective 1e-3): the grid's starts never reached 1e300.
    n = np.repeat(np.geomspace(1e7, 1e10, 6), 5)
    d = n * np.tile(np.geomspace(10, 1000, 5), 6)
    loss = 1e300 * (1.8 + 400 / n**0.34 + 2000 / d**0.37)
    fit = fit_chinchilla(n, d, loss)
    assert fit.law.E == pytest.approx(1.8e300, rel=1e-3)
    assert (fit.law.alpha, fit.law.beta) == pytest.approx((0.34, 0.37), abs=1e-3)


def test_a_law_that_overflows_its_units_is_one_clear_error(tmp_path):
    # Before: "A inf (nan, nan)" and a budget row of NaN, exit 0.
    n = np.repeat(np.geomspace(1e295, 1e300, 6), 5)
    d = n * np.tile(np.geomspace(1, 100, 5), 6) / 1e5
    loss = 1e290 * (3.0 * (n / 1e295) ** np.log10(0.75) + 0.3 * (d / 1e290) ** -0.3)
    body = "".join(f"{a:.6g},{b:.6g},{c:.6g}\n" for a, b, c in zip(n, d, loss, strict=True))
    path = write(tmp_path, "N,D,loss\n" + body)
    line = one_error_line(run_cli("fit", path, "--bootstrap", "50", "--budget", "1e300"))
    assert "the fitted A = e^753.7 overflows double precision in these units" in line
    phases = run_cli("phases", path, "--format", "json")
    assert phases.returncode == 0, phases.stderr
    doc = strict_loads(phases.stdout)
    assert doc["phase"] == "scaling"
    assert doc["frontier_drop_per_decade"] == pytest.approx(0.25, abs=0.005)
    assert doc["law_units"] == {"x": 1e298, "loss": 1e290}


def test_phases_near_the_float_limit_reads_the_drop_per_decade():
    x = np.geomspace(1e296, 1e300, 12)
    report = detect_phases(x, 1e300 * 0.75 ** (np.log10(x) - 296))
    assert report.phase == "scaling"
    assert report.segments[-1].drop_per_decade == pytest.approx(0.25, abs=1e-3)
    assert all(np.isfinite(v) for v in report.law.to_dict().values())
    assert report.segments[0].x_min == pytest.approx(1e296, rel=1e-9)


def test_strict_json_nulls_non_finite_numbers_and_says_which():
    text = strict_json.dumps({"params": {"A": float("inf"), "E": 2.0}, "ci": [np.float64("nan")]})
    doc = strict_loads(text)
    assert doc["params"] == {"A": None, "E": 2.0} and doc["ci"] == [None]
    assert [(e["field"], e["value"]) for e in doc["non_finite"]] == [
        ("params.A", "inf"),
        ("ci[0]", "nan"),
    ]


# --- rows: memory and time ------------------------------------------------------------------


def test_clustering_many_values_needs_no_values_by_values_matrix():
    # Before: 100,000 values asked for a 100,000 × 100,000 matrix (3.57 TiB for 700,000).
    rng = np.random.default_rng(0)
    planned = 10.0 ** np.arange(18, 22, 0.5)
    values = np.repeat(planned, 25_000) * np.exp(rng.normal(0, 0.01, 200_000))
    labels = cluster_log_values(values, 0.05)
    np.testing.assert_array_equal(labels, np.repeat(np.arange(8), 25_000))


def test_chunked_and_subsampled_fit_matches_the_plain_fit(monkeypatch):
    rng = np.random.default_rng(1)
    n = 10 ** rng.uniform(7, 10, 300)
    d = n * 10 ** rng.uniform(1, 3, 300)
    loss = (1.8 + 480 / n**0.35 + 2100 / d**0.37) * np.exp(rng.normal(0, 0.003, 300))
    plain = fit_chinchilla(n, d, loss)
    monkeypatch.setattr(fitting, "CHUNK_PAIRS", 4096)
    monkeypatch.setattr(fitting, "EXPLORE_MAX_POINTS", 100)
    chunked = fit_chinchilla(n, d, loss)
    assert chunked.objective == pytest.approx(plain.objective, rel=1e-6)
    assert chunked.law.alpha == pytest.approx(plain.law.alpha, abs=1e-4)
    boot_plain = bootstrap_chinchilla(n, d, loss, n_boot=8, fit=plain)
    monkeypatch.setattr(fitting, "CHUNK_PAIRS", 64)  # blocks of 1 replicate
    boot_blocked = bootstrap_chinchilla(n, d, loss, n_boot=8, fit=plain)
    np.testing.assert_allclose(boot_blocked.thetas, boot_plain.thetas, rtol=1e-9)


def test_an_isoflop_vertex_beyond_any_size_is_excluded_not_infinite():
    # Before: exp(vertex) overflowed to inf and made Approach 2's exponent NaN (a noisy budget
    # of 20,000 rows in benchmarks/bench_rows.py printed the overflow warning).
    n = np.array([1e7, 2e7, 4e7] * 3)
    flops = np.repeat([1e17, 1e18, 1e19], 3)
    log_n = np.log(n[:3])
    loss = np.concatenate([3 - 1e-6 * log_n + 1e-11 * log_n**2, [2.9, 2.8, 2.85, 2.6, 2.5, 2.55]])
    iso = fit_isoflop(n, flops, loss)
    # the vertex of a parabola this flat is round-off (5e4 or 5.001e4 with other BLAS builds)
    (excluded,) = iso.excluded
    assert re.fullmatch(r"the minimum lies at N = e\^5(\.00\d)?e\+04, beyond any size",
                        excluded["reason"]), excluded  # fmt: skip
    assert len(iso.profiles) == 2 and np.isfinite(iso.a)
