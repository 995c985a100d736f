"""Scaling pages inside the MLflow server: ``mlflow server --app-name scaling``.

Optional: only ``mlflow server`` imports this package (through the ``mlflow.app`` entry points
``scaling`` and ``scaling-auth``); nothing else in ``mlflow_scaling`` depends on it.
"""
