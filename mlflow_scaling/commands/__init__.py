"""The command line's subcommands: one module each, with ``register(subparsers)`` and ``run``."""
