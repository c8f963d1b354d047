"""Retry policies for steps that call a model or a remote store."""

import dagster as dg

# Exponential backoff (2 s, 4 s, 8 s) with jitter, so parallel partitions that failed together
# (a rate limit, a store hiccup) do not retry in lockstep.
MODEL_CALL_RETRY = dg.RetryPolicy(max_retries=3, delay=2, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS)
