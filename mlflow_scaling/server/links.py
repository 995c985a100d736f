"""URLs of the scaling pages and of the normal MLflow UI, under the server's static prefix."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote, urlencode

from ..tracking import schema


def _has_unsafe_path_parts(name: str) -> bool:
    parts = name.split("/")
    return name.startswith("/") or "" in parts[:-1] or any(p in (".", "..") for p in parts)


@dataclass(frozen=True)
class Links:
    """URLs of the pages and of the normal MLflow UI, under the server's static prefix."""

    prefix: str = ""

    def home(self) -> str:
        return f"{self.prefix}/"

    def index(self) -> str:
        return f"{self.prefix}/scaling/"

    def index_page(self, **args: str | int | None) -> str:
        """The index with these query args (None and empty ones left out), URL-encoded."""
        given = {name: value for name, value in args.items() if value not in (None, "")}
        return f"{self.index()}?{urlencode(given)}" if given else self.index()

    def family(self, experiment_id: str, family: str) -> str:
        exp = quote(str(experiment_id), safe="")
        if _has_unsafe_path_parts(family):  # a path the browser or router would normalise
            return f"{self.prefix}/scaling/family/{exp}?name={quote(family, safe='')}"
        return f"{self.prefix}/scaling/family/{exp}/{quote(family, safe='')}"

    def artifact(self, run_id: str, path: str) -> str:
        return f"{self.prefix}/scaling/artifact/{quote(run_id, safe='')}/{quote(path)}"

    def ui_experiment(self, experiment_id: str) -> str:
        return f"{self.prefix}/#/experiments/{quote(str(experiment_id), safe='')}"

    def ui_run(self, experiment_id: str, run_id: str) -> str:
        exp, run = quote(str(experiment_id), safe=""), quote(run_id, safe="")
        return f"{self.prefix}/#/experiments/{exp}/runs/{run}"

    def ui_members(self, experiment_id: str, family: str) -> str:
        filt = f"{schema.family_filter(family)} and tags.`{schema.TAG_ROLE}` IS NULL"
        return f"{self.ui_experiment(experiment_id)}?searchFilter={quote(filt, safe='')}"
