"""mlflow-scaling: neural scaling laws for MLflow and Lightning (see README.md and docs/)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("mlflow-scaling")
except PackageNotFoundError:  # imported from a source tree that was never installed
    __version__ = "0+unknown"
