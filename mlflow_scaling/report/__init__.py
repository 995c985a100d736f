"""What a refit posts back to MLflow for people to look at: the figure, the report page and the
predictions table, each drawn from the fit document (``scaling/fit.json``)."""
