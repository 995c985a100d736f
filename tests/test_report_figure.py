"""The fit figure as objects: labelled axes with units, log scales, a legend naming law and data."""

import numpy as np

from mlflow_scaling.jobs.analysis import RefitSettings, analyze_family
from mlflow_scaling.laws import ChinchillaLaw
from mlflow_scaling.report.figures import fit_figure
from mlflow_scaling.tracking.reading import MemberPoint

LAW = ChinchillaLaw(E=1.8, A=480.0, B=2100.0, alpha=0.35, beta=0.37)


def fit_document():
    rng = np.random.default_rng(0)
    members = []
    for i, n in enumerate(np.geomspace(2e7, 2e9, 5)):
        for budget in (1e18, 1e19, 1e20, 1e21):
            d = budget / (6 * n)
            loss = float(LAW.predict(n, d) * np.exp(rng.normal(scale=0.003)))
            members.append(MemberPoint(f"r{i}-{budget:g}", f"run {i}", n, d, 6 * n * d,
                                       "scaling.flops", loss, "val_loss", 0, None))  # fmt: skip
    analysis = analyze_family(members, RefitSettings(n_boot=50))
    analysis.pop("metrics")
    return {"family": "synthetic", "loss_metric": "val_loss",
            "members": [m.to_dict() for m in members], **analysis}  # fmt: skip


def test_fit_figure_axes_scales_and_legend():
    doc = fit_document()
    fig = fit_figure(doc)
    loss_ax, alloc_ax = fig.axes[:2]
    assert loss_ax.get_xscale() == "log" and loss_ax.get_yscale() == "log"
    assert "FLOPs" in loss_ax.get_xlabel()  # unit of compute
    assert "val_loss" in loss_ax.get_ylabel()
    assert alloc_ax.get_xscale() == "log"
    assert alloc_ax.get_xlabel() and alloc_ax.get_ylabel()
    labels = [t.get_text() for t in loss_ax.get_legend().get_texts()]
    assert any(t.startswith("member runs (20)") for t in labels)  # the data
    assert any("fitted law" in t for t in labels)  # the law
    assert any("compute-optimal" in t for t in labels)
    assert any("bootstrap band" in t for t in labels)  # the extrapolation's uncertainty
    assert "synthetic" in fig.get_suptitle()


def test_missing_exponent_is_labelled_not_fatal():
    """Approach 2 without an exponent (seen with an inf loss in a family) used to raise
    TypeError in the label and fail the whole family."""
    doc = fit_document()
    assert doc["approach2"]["applicable"] is True
    doc["approach2"]["a"] = None
    problems: list[str] = []
    fig = fit_figure(doc, problems)
    assert problems == []
    assert fig.axes[1].get_title().endswith("N_opt ∝ C^n/a")


def test_a_panel_that_cannot_be_drawn_is_reported():
    doc = fit_document()
    doc["approach2"]["profiles"] = "not a list of profiles"
    problems: list[str] = []
    fig = fit_figure(doc, problems)
    assert len(problems) == 1 and problems[0].startswith("allocation panel unavailable: ")
    assert "1 panel(s) unavailable" in fig.get_suptitle()
    texts = [t.get_text() for t in fig.axes[1].texts]
    assert any(t.startswith("allocation panel unavailable") for t in texts)
    assert fig.axes[0].get_legend() is not None  # the other panel is drawn as usual
