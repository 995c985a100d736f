"""The fit run's numbers and liveness: what step 1 of the publishing protocol claims
(:mod:`.fit_run` states the protocol), and whether a run is still active. Shared by
:mod:`.fit_run` and :mod:`.retention`."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from . import schema
from .published import numbered_params

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities import Run

IS_ACTIVE_ATTEMPTS = 3


def highest_taken(run: Run) -> int:
    """The highest refit number claimed or published on ``run`` (or in a legacy tag)."""
    params = run.data.params
    numbers = [0]
    numbers += numbered_params(params, schema.PARAM_REFIT_CLAIM_PREFIX)
    numbers += numbered_params(params, schema.PARAM_PUBLISHED_PREFIX)
    try:  # fit runs written before the protocol kept only this tag
        numbers.append(int(run.data.tags.get(schema.TAG_REFIT_NUMBER, "0")))
    except ValueError:
        pass
    return max(numbers)


def claim_value(token: str, at_ms: int) -> str:
    """The value of a claim param: the write's token and when it claimed (ms)."""
    return f"{token}@{at_ms}"


def claim_time(value: str) -> int:
    """When a claim (a :func:`claim_value`) was made; 0 for claims that did not say."""
    _, _, at = value.rpartition("@")
    return int(at) if at.isdigit() else 0


def is_active(client: MlflowClient, run_id: str) -> bool:
    """Whether the run still exists and is not deleted.

    Only the store's own answer counts: a deleted run (lifecycle ``deleted``) or one that no
    longer exists (``RESOURCE_DOES_NOT_EXIST``) is not active. Any other failure (the network,
    a 5xx the client's retries did not get past) is retried, then raised, never taken for a
    deletion.
    """
    from mlflow.exceptions import MlflowException

    for attempt in range(IS_ACTIVE_ATTEMPTS):
        try:
            return client.get_run(run_id).info.lifecycle_stage == "active"
        except MlflowException as exc:
            if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
                return False
            if attempt == IS_ACTIVE_ATTEMPTS - 1:
                raise
        except Exception:
            if attempt == IS_ACTIVE_ATTEMPTS - 1:
                raise
        time.sleep(0.5 * (attempt + 1))
    raise AssertionError("unreachable")
