"""fit.json's typed document (mlflow_scaling.tracking.fit_document): the committed JSON Schema is
the one the types generate, a refit's document validates and round-trips exactly, and a renamed
key fails where the document is made, naming the key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlflow_scaling.jobs.analysis import RefitSettings, analyze_family
from mlflow_scaling.jobs.artifacts import build_fit_document
from mlflow_scaling.tracking.fit_document import (
    FitDocumentError,
    json_schema,
    load_fit_document,
)
from mlflow_scaling.tracking.reading import ExcludedRun, ExperimentRef, Family, MemberPoint

SCHEMA_FILE = Path(__file__).resolve().parents[1] / "docs" / "fit.schema.json"


def _family(sizes) -> Family:
    points = [
        MemberPoint(f"r{i}{j}", f"run {i}{j}", n, 20 * n * j, 120 * n * n * j, "6ND",
                    1.8 + 400 / n**0.34 + 2000 / (20 * n * j) ** 0.37, "val_loss", 0, None)
        for i, n in enumerate(sizes) for j in (1, 2, 4)
    ]  # fmt: skip
    return Family(
        ExperimentRef("0", "e"), "f", points, [ExcludedRun("x", "x", "FAILED", "no loss")]
    )


@pytest.fixture(scope="module", params=["fitted", "insufficient_data"])
def fit_json(request) -> dict:
    sizes = (1e7, 3e7, 1e8, 3e8, 1e9) if request.param == "fitted" else (1e7,)
    family = _family(sizes)
    settings = RefitSettings(n_boot=0)
    analysis = analyze_family(family.members, settings, n_excluded=len(family.excluded))
    doc = build_fit_document(family, analysis, fit_run_id="run", refit_number=3, digest="in",
                             settings_doc=settings.to_dict(), settings_hash="set")  # fmt: skip
    assert doc["status"] == request.param
    return json.loads(json.dumps(doc))  # as a reader finds it in fit.json


def test_the_committed_schema_is_the_generated_one():
    assert json.loads(SCHEMA_FILE.read_text()) == json_schema(), (
        "regenerate: python -m mlflow_scaling.tracking.fit_document > docs/fit.schema.json"
    )


def test_a_refit_document_validates_and_round_trips(fit_json):
    assert load_fit_document(fit_json).to_dict() == fit_json
    schema = json.loads(SCHEMA_FILE.read_text())
    assert set(schema["required"]) <= set(fit_json) <= set(schema["properties"])
    member = schema["$defs"]["Member"]
    assert set(fit_json["members"][0]) == set(member["required"])
    # U is the one optional key: present only on runs that logged scaling.unique_tokens
    assert set(member["properties"]) == set(member["required"]) | {"unique_tokens"}


def test_a_renamed_key_fails_naming_both_keys(fit_json):
    doc = dict(fit_json)
    doc["phase_at_frontier"] = doc.pop("phase")
    with pytest.raises(FitDocumentError) as err:
        load_fit_document(doc, "fit run r1")
    assert str(err.value).startswith("fit run r1: not a fit document (")
    assert "phase: Field required" in str(err.value)
    assert "phase_at_frontier: Extra inputs are not permitted" in str(err.value)


def test_another_version_is_refused_by_name(fit_json):
    with pytest.raises(FitDocumentError, match=r"^fit.json: version 2, this mlflow-scaling "
                       r"reads version 1 \(refit the family"):  # fmt: skip
        load_fit_document({**fit_json, "version": 2})


def test_a_non_finite_number_is_nulled_and_listed_not_refused():
    """A law whose allocation is undefined (NaN) still makes a document: the field is null and
    ``non_finite`` names it (the refit of examples/hparam_sweep.py once failed here)."""
    family = _family((1e7, 3e7, 1e8, 3e8, 1e9))
    settings = RefitSettings(n_boot=0)
    analysis = analyze_family(family.members, settings, n_excluded=len(family.excluded))
    analysis["approach3"] = {**analysis["approach3"], "allocation": {"G": float("nan")}}
    doc = build_fit_document(family, analysis, fit_run_id="run", refit_number=3, digest="in",
                             settings_doc=settings.to_dict(), settings_hash="set")  # fmt: skip
    assert doc["approach3"]["allocation"] == {"G": None}
    assert doc["non_finite"] == [
        {"field": "approach3.allocation.G", "value": "nan",
         "reason": "not a finite number (an overflow or an undefined quantity)"}
    ]  # fmt: skip
    assert load_fit_document(json.loads(json.dumps(doc))).to_dict() == doc
