"""What CI demands of the tests: under ``CI=true`` a missing service fails, and so does a skip.

``.ci/run`` starts PostgreSQL and installs Chromium; a test that needs either calls
:func:`skip_or_fail`, which skips on a developer's machine (with the reason) and fails under
``CI=true``, where the service must be there. The conftest plugin lists every skipped test with
its reason at the end of the run and, under ``CI=true``, fails the run on any skip that is not in
:data:`ALLOWED_SKIPS`.
"""

from __future__ import annotations

import os

import pytest

IN_CI = os.environ.get("CI", "").strip().lower() == "true"

ALLOWED_SKIPS = {
    "tests/test_callback_cuda.py": "needs a CUDA device; CI machines are CPU-only",
}
"""Test files whose skips CI accepts, with why."""


def allowed_skip(nodeid: str) -> bool:
    return any(nodeid == f or nodeid.startswith(f + "::") for f in ALLOWED_SKIPS)


def skip_or_fail(reason: str) -> None:
    """Skip a test whose service is missing; under ``CI=true`` fail it instead."""
    if IN_CI:
        pytest.fail(f"{reason} [CI=true: a service the tests need must be there]", pytrace=False)
    pytest.skip(reason)
