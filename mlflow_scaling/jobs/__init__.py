"""The refit job: one idempotent pass over the scaling families (:mod:`.refit`), the analysis
it runs per family (:mod:`.analysis`), a scheduler loop around it (:mod:`.watch`) and the
``families``/``refit``/``watch`` subcommands (:mod:`.commands`)."""
