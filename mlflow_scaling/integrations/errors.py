"""The warning category and error types of the callback."""

from __future__ import annotations


class ScalingLawWarning(UserWarning):
    """Warnings of the scaling-law callback (filter them with this category)."""


class TokenCountError(TypeError):
    """The default token counter does not understand a batch."""
