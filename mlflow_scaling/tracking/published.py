"""The published fit of a fit run, and where its files are: the one way to read a fit.

A refit writes its files under a folder of its own (``scaling/fits/<n>-<token>/``) and then
publishes them with the param ``scaling.published.<n>``: a JSON record naming the folder, the
input and settings digests the files were made from, the phase, the check verdict and the
fitted values, and the time its pass read the runs (``read_ms``). Params never change once
written, so a record and the files it names always belong together. Which record is *the*
published fit is decided by :func:`current_record`, the one rule stated with the protocol's
other invariants in :mod:`.fit_run`.

Everything that reads a fit (the refit job's skip test and curve cache, the pages, the demo,
the CLI) goes through :func:`published_fit` and :func:`published_artifact_path` /
:func:`read_published_artifact`; no reader builds an artifact path by itself.
"""

from __future__ import annotations

import json
import math
import posixpath
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import schema

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities import Run


MAX_PARAM_VALUE = 6000
"""MLflow's limit on a param value."""


@dataclass(frozen=True)
class PublishedFit:
    """One published refit of a fit run (the param ``scaling.published.<number>``)."""

    number: int
    path: str
    input_digest: str
    settings_digest: str
    read_ms: int = 0
    """When the pass that wrote it started reading the family's runs (its clock, ms; 0 in
    records written before read times were kept)."""
    phase: str | None = None
    check: str | None = None
    status: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    """Further mirror tags (a comparison run's verdict, for instance)."""

    def to_param(self) -> str:
        """The record as the param value (compact JSON within MLflow's 6000 characters: when
        many metrics would not fit, they are left out; readers then use the run's metrics)."""
        doc = {
            "path": self.path,
            "input_digest": self.input_digest,
            "settings_digest": self.settings_digest,
            "read_ms": self.read_ms,
            "phase": self.phase,
            "check": self.check,
            "status": self.status,
            "metrics": {k: v for k, v in self.metrics.items() if math.isfinite(v)},
            "tags": dict(self.tags),
        }
        text = json.dumps(doc, separators=(",", ":"), sort_keys=True)
        if len(text) > MAX_PARAM_VALUE:
            doc["metrics"] = {}
            text = json.dumps(doc, separators=(",", ":"), sort_keys=True)
        return text

    @classmethod
    def from_param(cls, number: int, value: str) -> PublishedFit | None:
        try:
            doc = json.loads(value)
        except ValueError:
            return None
        if not isinstance(doc, dict) or not isinstance(doc.get("path"), str):
            return None
        metrics = doc.get("metrics") if isinstance(doc.get("metrics"), dict) else {}
        tags = doc.get("tags") if isinstance(doc.get("tags"), dict) else {}
        read_ms = doc.get("read_ms")
        return cls(
            number=number,
            path=doc["path"],
            input_digest=str(doc.get("input_digest") or ""),
            settings_digest=str(doc.get("settings_digest") or ""),
            read_ms=read_ms if isinstance(read_ms, int) and not isinstance(read_ms, bool) else 0,
            phase=doc.get("phase"),
            check=doc.get("check"),
            status=doc.get("status"),
            metrics={
                str(k): float(v)
                for k, v in metrics.items()
                if isinstance(v, int | float) and not isinstance(v, bool)
            },
            tags={str(k): str(v) for k, v in tags.items()},
        )

    def mirror_tags(self) -> dict[str, str]:
        """The tags that repeat this record for the MLflow UI and searches."""
        out = {
            schema.TAG_REFIT_NUMBER: str(self.number),
            schema.TAG_INPUT_DIGEST: self.input_digest,
            schema.TAG_SETTINGS_DIGEST: self.settings_digest,
            schema.TAG_PUBLISHED_PATH: self.path,
        }
        if self.phase is not None:
            out[schema.TAG_PHASE] = self.phase
        if self.check is not None:
            out[schema.TAG_CHECK] = self.check
        return {**out, **self.tags}


def numbered_params(params: dict[str, str], prefix: str) -> dict[int, str]:
    """``{n: value}`` of the params named ``<prefix><n>``."""
    out = {}
    for key, value in params.items():
        if key.startswith(prefix) and key[len(prefix) :].isdigit():
            out[int(key[len(prefix) :])] = value
    return out


def published_fits(run: Run) -> list[PublishedFit]:
    """Every readable record of the run, oldest refit first."""
    found = numbered_params(run.data.params, schema.PARAM_PUBLISHED_PREFIX)
    fits = [PublishedFit.from_param(n, v) for n, v in sorted(found.items())]
    return [f for f in fits if f is not None]


def current_record(fits: Sequence[PublishedFit]) -> PublishedFit | None:
    """The published fit among ``fits``: the latest read time, then the highest number
    (invariant 1 of :mod:`.fit_run`)."""
    return max(fits, key=lambda f: (f.read_ms, f.number), default=None)


def published_fit(run: Run | None) -> PublishedFit | None:
    """The run's published fit (:func:`current_record` of its records), or None."""
    return None if run is None else current_record(published_fits(run))


def published_metrics(run: Run) -> dict[str, float]:
    """The metrics of the run's published fit: its record's, else the run's own (a record too
    long for a param keeps none; the run's metrics at that step are the same values)."""
    fit = published_fit(run)
    return fit.metrics if fit is not None and fit.metrics else dict(run.data.metrics)


def artifact_name(name: str) -> str:
    """``fit.json`` for ``fit.json`` or ``scaling/fit.json`` (:mod:`.schema`'s names)."""
    return posixpath.basename(name)


def published_artifact_path(run: Run | None, name: str) -> str | None:
    """Where the published fit's file ``name`` (``fit.json`` or ``scaling/fit.json``) is."""
    fit = published_fit(run)
    if fit is None:
        return None
    return f"{fit.path}/{artifact_name(name)}"


def read_published_artifact(client: MlflowClient, run: Run | None, name: str) -> bytes | None:
    """The bytes of the published fit's file ``name``, or None when there is no such file."""
    path = published_artifact_path(run, name)
    if path is None or run is None:
        return None
    with tempfile.TemporaryDirectory(prefix="mlflow-scaling-") as tmp:
        try:
            local = client.download_artifacts(run.info.run_id, path, tmp)
        except Exception as exc:
            if is_missing(exc):
                return None
            raise
        return Path(local).read_bytes()


def read_published_json(client: MlflowClient, run: Run | None, name: str) -> Any:
    """:func:`read_published_artifact` parsed as JSON (None when absent)."""
    raw = read_published_artifact(client, run, name)
    return None if raw is None else json.loads(raw.decode("utf-8"))


def is_missing(exc: BaseException) -> bool:
    """Whether a download failed because the file is not there (not the server or network)."""
    code = getattr(exc, "error_code", None)
    if code == "RESOURCE_DOES_NOT_EXIST":
        return True
    if isinstance(exc, FileNotFoundError):
        return True
    text = str(exc)
    return "404" in text or "No such file" in text or "does not exist" in text
