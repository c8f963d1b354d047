"""Embedding models behind one small interface, and the specs of the named embedders.

Each named embedder (``minilm``, ...) has its own LanceDB table; its spec (model, dimensions,
normalization, input window) is written into that table's schema metadata so that vectors
of different models can never be mixed silently.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict


class EmbedderSpec(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    provider: Literal["sentence-transformers", "openai"]
    model: str
    dimensions: int
    max_input_tokens: int  # the model's window, special tokens included
    normalized: bool
    # "int8": the local model's matrix products in int8, whose vectors differ from the float
    # backends' (nDCG@10 loss measured in bench/RESULTS.md): another embedder configuration, kept in
    # tables of its own. None for every float backend (fp32, fp32-onnx, bf16-autocast: one table).
    quantization: Literal["int8"] | None = None

    @property
    def storage_name(self) -> str:
        """The name the embedder's tables carry: a quantized configuration's vectors never share a
        table with the float ones, and each keeps its vectors while the other runs."""
        return f"{self.name}__{self.quantization}" if self.quantization else self.name


MINILM = EmbedderSpec(
    name="minilm",
    provider="sentence-transformers",
    model="sentence-transformers/all-MiniLM-L6-v2",
    dimensions=384,
    max_input_tokens=256,
    normalized=True,
)

# Enabled when OPENAI_API_KEY or OPENAI_BASE_URL is set. Its 8191-token window is far above
# the chunk size, which the local model's 256-token window sets.
OPENAI_SMALL = EmbedderSpec(
    name="openai-small",
    provider="openai",
    model="text-embedding-3-small",
    dimensions=1536,
    max_input_tokens=8191,
    normalized=True,
)

EMBEDDER_SPECS: dict[str, EmbedderSpec] = {spec.name: spec for spec in (MINILM, OPENAI_SMALL)}


class UnknownEmbedder(ValueError):
    pass


class InputTooLong(ValueError):
    """A text longer than the model's window: refused rather than silently truncated."""


def embedder_spec(name: str, openai_dimensions: int | None = None) -> EmbedderSpec:
    """The named embedder's spec; OpenAI's text-embedding-3 models can return shorter vectors."""
    try:
        spec = EMBEDDER_SPECS[name]
    except KeyError:
        known = ", ".join(sorted(EMBEDDER_SPECS))
        raise UnknownEmbedder(f"unknown embedder {name!r}; known embedders: {known}") from None
    if spec.provider == "openai" and openai_dimensions:
        return spec.model_copy(update={"dimensions": openai_dimensions})
    return spec


def spec_for_precision(spec: EmbedderSpec, local_precision: str) -> EmbedderSpec:
    """The spec as configured with ``AI_ASSETS_LOCAL_PRECISION``: int8 is a configuration of its
    own for the local model (``auto`` only ever picks a float backend)."""
    if spec.provider == "sentence-transformers" and local_precision == "int8":
        return spec.model_copy(update={"quantization": "int8"})
    return spec


class Embedder(ABC):
    """Turns texts into float32 vectors of ``spec.dimensions``."""

    spec: EmbedderSpec
    precision: str = "fp32"  # numeric precision of the forward pass, reported with each materialization
    precision_reason: str = ""  # why that precision runs, when it was chosen

    @abstractmethod
    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Tokens of each text as the model counts them, special tokens excluded."""

    @abstractmethod
    def _encode(self, texts: list[str], token_counts: Sequence[int]) -> np.ndarray:
        """Vectors of texts already checked against the window (their token counts given)."""

    @property
    def max_text_tokens(self) -> int:
        """Longest text the model reads whole (its window less [CLS] and [SEP])."""
        return self.spec.max_input_tokens - 2

    def take_usage_metadata(self) -> dict[str, float | int]:
        """Paid-API usage since the last call, as asset metadata; a local model has none."""
        return {}

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Vectors for ``texts``; refuses any text the model would truncate."""
        return self.embed_counted(texts)[0]

    def embed_counted(self, texts: Sequence[str]) -> tuple[np.ndarray, list[int]]:
        """Vectors and the token count of each text (counted once, for the window check and usage)."""
        if not texts:
            return np.zeros((0, self.spec.dimensions), dtype=np.float32), []
        counts = self._window_checked_counts(texts)
        return self._checked_shape(self._encode(list(texts), counts), len(texts)), counts

    def embed_query(self, text: str) -> np.ndarray:
        """The vector of one search query, ``embed([text])[0]``; a backend with a faster path for a
        lone short text overrides this."""
        return self.embed([text])[0]

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        """The vectors of several search queries at once (a server's concurrent requests), each the
        vector ``embed_query`` gives it; a backend whose lone-query path differs overrides this."""
        return self.embed(list(texts))

    def _window_checked_counts(self, texts: Sequence[str]) -> list[int]:
        counts = self.count_tokens(texts)
        self._refuse_too_long(counts)
        return counts

    def _refuse_too_long(self, counts: Sequence[int]) -> None:
        too_long = [(index, count) for index, count in enumerate(counts) if count > self.max_text_tokens]
        if too_long:
            index, count = too_long[0]
            raise InputTooLong(
                f"{len(too_long)} text(s) exceed the {self.spec.model} window of "
                f"{self.max_text_tokens} tokens (first: text #{index} has {count} tokens); "
                "rechunk with a smaller AI_ASSETS_CHUNK_MAX_TOKENS"
            )

    def _checked_shape(self, vectors: np.ndarray, texts: int) -> np.ndarray:
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.shape != (texts, self.spec.dimensions):
            raise ValueError(
                f"{self.spec.name} returned vectors of shape {vectors.shape}, expected ({texts}, {self.spec.dimensions})"
            )
        return vectors
