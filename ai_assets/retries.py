"""What steps that call a model or a remote store share: retries, which errors not to retry, a pool."""

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg

# Exponential backoff (2 s, 4 s, 8 s) with jitter, so parallel partitions that failed together
# (a rate limit, a store hiccup) do not retry in lockstep.
MODEL_CALL_RETRY = dg.RetryPolicy(max_retries=3, delay=2, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS)

# The Dagster concurrency pool of every step that runs a model (embedding, query encoding, chat):
# the instance's limit on it (`concurrency: pools:` in dagster.yaml, or `dagster instance
# concurrency set model_calls N`) caps such steps across all runs, so parallel source partitions
# neither overrun a remote API's rate limit nor fight over the CPU for the local model.
MODEL_POOL = "model_calls"


@contextmanager
def permanent_errors_fail_once() -> Iterator[None]:
    """Turn errors that a retry cannot fix into a Failure that is not retried.

    Bad configuration, a table written by another model, a text over the model window or a
    malformed eval set are ValueErrors here; network, timeout and server errors are not, so
    they keep their retries.
    """
    try:
        yield
    except ValueError as error:
        raise dg.Failure(description=f"{type(error).__name__}: {error}", allow_retries=False) from error
