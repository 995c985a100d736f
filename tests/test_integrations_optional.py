"""The counting core and the plain-loop counter import without ``transformers``."""

from __future__ import annotations

import subprocess
import sys

from conftest import ROOT

HIDE_TRANSFORMERS = """
import sys

class HideTransformers:  # as if transformers were not installed
    def find_spec(self, name, path=None, target=None):
        if name == "transformers" or name.startswith("transformers."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, HideTransformers())
import mlflow_scaling.integrations
from mlflow_scaling.integrations.torch import ScalingCounter
try:
    import mlflow_scaling.integrations.transformers
except ModuleNotFoundError as err:
    print("transformers module:", err)
frameworks = ("transformers", "lightning")
print("imported:", sorted(m for m in sys.modules if m.split(".")[0] in frameworks))
"""


def test_the_core_and_the_plain_counter_need_neither_transformers_nor_lightning() -> None:
    done = subprocess.run(
        [sys.executable, "-c", HIDE_TRANSFORMERS],
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.splitlines() == [
        "transformers module: No module named 'transformers'",
        "imported: []",
    ]
