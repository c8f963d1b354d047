"""The local encoder's backends: agreement with fp32, run-time CPU detection, the window check."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from ai_assets.core.embedding import local, onnx, torch_model
from ai_assets.core.embedding.base import InputTooLong
from ai_assets.core.embedding.onnx import export_onnx_model, onnx_session
from ai_assets.core.embedding.precision import (
    LOCAL_PRECISIONS,
    auto_candidates,
    cpu_has_bf16,
    resolve_precision,
)
from ai_assets.core.embedding.registry import create_embedder
from ai_assets.core.embedding.tokenizer import minilm_model_path, minilm_tokenizer
from ai_assets.core.embedding.torch_model import read_sentence_transformer

TEXTS = [
    "what is a dagster sensor",
    "A sensor is a definition that lets you trigger runs based on an external state change.",
    "Software-defined assets declare the data they produce and the upstream assets they read.",
    "LanceDB stores vectors next to their rows and builds HNSW indexes for approximate search.",
    "x",
]


@pytest.fixture(scope="module")
def fp32_vectors() -> np.ndarray:
    return create_embedder("minilm", precision="fp32").embed(TEXTS)


@pytest.mark.parametrize("precision", ["bf16", "bf16-autocast"])
def test_bf16_backends_match_fp32(precision: str, fp32_vectors: np.ndarray) -> None:
    embedder = create_embedder("minilm", precision=precision)  # type: ignore[arg-type]
    assert embedder.precision == precision
    vectors = embedder.embed(TEXTS)
    assert vectors.dtype == np.float32 and vectors.shape == (len(TEXTS), 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert float(np.min(np.sum(vectors * fp32_vectors, axis=1))) >= 0.999


def test_fp32_vectors_have_unit_norm_and_do_not_depend_on_the_batch(fp32_vectors: np.ndarray) -> None:
    assert np.allclose(np.linalg.norm(fp32_vectors, axis=1), 1.0, atol=1e-5)
    alone = create_embedder("minilm", precision="fp32").embed(TEXTS[:1])
    assert float(np.sum(alone[0] * fp32_vectors[0])) >= 0.99999


@pytest.mark.parametrize("precision", LOCAL_PRECISIONS)
def test_a_query_encoded_alone_matches_the_batched_vector(precision: str, fp32_vectors: np.ndarray) -> None:
    """A query goes through ONNX Runtime in fp32, texts (even one) through ``embed`` in the precision's backend:
    for texts of every length here (1 to ~20 tokens) a query's vector is the fp32 one."""
    assert onnx_session(str(minilm_model_path())) is not None  # not the PyTorch fallback
    embedder = create_embedder("minilm", precision=precision)  # type: ignore[arg-type]
    queries = np.vstack([embedder.embed_query(text) for text in TEXTS])
    assert queries.dtype == np.float32 and np.allclose(np.linalg.norm(queries, axis=1), 1.0, atol=1e-5)
    # int8's queries run in its own graph, as its texts (test_int8.py); every other one's in fp32.
    assert float(np.min(np.sum(queries * fp32_vectors, axis=1))) >= (0.98 if precision == "int8" else 0.99999)
    # A bf16 backend's own batched vectors are within 0.999 of fp32 (test_bf16_backends_match_fp32);
    # int8 quantizes each batch's activations on that batch's range, so a text alone differs a
    # little from the same text in a batch ("x": 0.981).
    fp32 = embedder.precision in ("fp32", "fp32-onnx")
    least = 0.99999 if fp32 else 0.98 if precision == "int8" else 0.999
    assert float(np.min(np.sum(queries * embedder.embed(TEXTS), axis=1))) >= least
    assert embedder.embed_query("word " * 254).shape == (384,)  # the window exactly: accepted
    with pytest.raises(InputTooLong, match="has 255 tokens"):
        embedder.embed_query("word " * 255)


@pytest.mark.parametrize(
    ("precision", "min_cosine"),
    [("fp32", 0.99999), ("fp32-onnx", 0.99999), ("bf16", 0.9999), ("bf16-autocast", 0.9999)],
)
def test_texts_tokenized_once_get_sentence_transformers_vectors(precision: str, min_cosine: float) -> None:
    """``embed`` feeds the model the ids it counted, batched by token count: the vectors are
    sentence-transformers' own ``encode`` of the model, in the caller's order (bf16 sums differ
    a little with the padding of the batch a text lands in). For bf16-autocast the reference is
    the float32 model under autocast: converting the Linear weights once at load changes nothing.
    fp32-onnx runs the exported graph in ONNX Runtime, against the same float32 PyTorch model."""
    embedder = create_embedder("minilm", batch_size=2, precision=precision)  # type: ignore[arg-type]
    texts = [*TEXTS, "  surrounded by spaces\n", "word " * 254, "a longer text " * 20]
    vectors, counts = embedder.embed_counted(texts)
    assert counts == embedder.count_tokens(texts)
    assert embedder.precision == precision  # fp32-onnx did not fall back to PyTorch
    autocast = precision == "bf16-autocast"
    if autocast:  # converted at load, not by autocast on every pass
        linear = [module for module in embedder.model().modules() if isinstance(module, torch.nn.Linear)]
        assert linear and all(module.weight.dtype == torch.bfloat16 for module in linear)
    model = read_sentence_transformer(str(minilm_model_path())) if autocast else embedder.model()
    with embedder.forward_context():  # autocast for bf16-autocast
        reference = model.encode(texts, batch_size=2, show_progress_bar=False).astype(np.float32)
    reference /= np.linalg.norm(reference, axis=1, keepdims=True)  # in fp32, as embed normalizes
    assert float(np.min(np.sum(vectors * reference, axis=1))) >= min_cosine


def test_a_query_is_tokenized_once_for_the_model_and_the_window_check() -> None:
    tokenizer = minilm_tokenizer()
    for text in [*TEXTS, "word " * 300, ""]:
        inputs, token_count = tokenizer.model_inputs(text)
        assert token_count == tokenizer.count_tokens([text])[0]
        assert {name: array.shape for name, array in inputs.items()} == {
            name: (1, token_count + 2) for name in ("input_ids", "attention_mask", "token_type_ids")
        }  # [CLS] and [SEP] added, nothing padded


def test_a_failed_onnx_export_falls_back_to_pytorch(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture, fp32_vectors: np.ndarray
) -> None:
    def refuse(model_path: str) -> Path:
        raise RuntimeError("exporter refused")

    monkeypatch.setattr(onnx, "export_onnx_model", refuse)
    onnx.onnx_session.cache_clear()
    try:
        assert onnx.onnx_session(str(minilm_model_path())) is None
        assert "exporting" in caplog.text and "exporter refused" in caplog.text
        vector = create_embedder("minilm", precision="fp32").embed_query(TEXTS[0])
        assert float(np.dot(vector, fp32_vectors[0])) >= 0.99999
        # Texts too: fp32-onnx runs the same float32 model in PyTorch, and says so.
        embedder = create_embedder("minilm", precision="fp32-onnx")
        assert float(np.min(np.sum(embedder.embed(TEXTS) * fp32_vectors, axis=1))) >= 0.99999
        assert embedder.precision == "fp32"
    finally:
        onnx.onnx_session.cache_clear()


def test_a_cached_onnx_export_runs_without_pytorch(tmp_path: Path) -> None:
    """A process whose model is already exported embeds with fp32-onnx without importing PyTorch
    (~0.4 s to the first vector here, against ~6 s to load sentence-transformers' model)."""
    export_onnx_model(str(minilm_model_path()))  # the cache the subprocess finds
    script = (
        "import sys; from ai_assets.core.embedding.registry import create_embedder\n"
        "embedder = create_embedder('minilm', precision='fp32-onnx')\n"
        "vectors = embedder.embed(['a sensor triggers runs', 'x'])\n"
        "print(embedder.precision, vectors.shape, 'torch' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert result.stdout.split("\n")[0] == "fp32-onnx (2, 384) False"


@pytest.mark.parametrize(
    ("lengths", "max_texts", "max_tokens", "expected"),
    [
        ([3, 9, 5, 7], 2, None, [[1, 3], [2, 0]]),  # most tokens first, max_texts each
        ([3, 9, 5, 7], 64, 16, [[1], [3, 2], [0]]),  # 9: one text; 7 + 5 padded to 14 <= 16; then 3
        ([40, 4, 4], 64, 16, [[0], [1, 2]]),  # a text over the budget still gets a batch of its own
        ([], 4, 16, []),
    ],
)
def test_padded_batches_respect_texts_and_tokens(
    lengths: list[int], max_texts: int, max_tokens: int | None, expected: list[list[int]]
) -> None:
    token_ids = [[index + 1] * length for index, length in enumerate(lengths)]
    batches = list(local.padded_batches(token_ids, max_texts, pad_id=0, max_tokens=max_tokens))
    assert [batch for batch, _, _ in batches] == expected
    for batch, input_ids, attention_mask in batches:
        longest = max(lengths[index] for index in batch)
        assert input_ids.shape == attention_mask.shape == (len(batch), longest)
        for row, index in enumerate(batch):
            assert input_ids[row].tolist() == [index + 1] * lengths[index] + [0] * (longest - lengths[index])
            assert attention_mask[row].tolist() == [1] * lengths[index] + [0] * (longest - lengths[index])


def test_the_onnx_export_is_kept_between_processes(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    exported = export_onnx_model(str(minilm_model_path()))
    assert exported.parent == tmp_path / "ai_assets" and exported.is_file()
    assert [path.name for path in exported.parent.iterdir()] == [exported.name]  # no partial file left behind
    written = exported.stat().st_mtime_ns
    assert export_onnx_model(str(minilm_model_path())) == exported and exported.stat().st_mtime_ns == written


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ("fpu sse avx2 avx512f avx512_bf16", ("fp32-onnx", "fp32", "bf16-autocast")),
        ("fpu sse avx2 avx512f amx_tile amx_bf16 amx_int8", ("fp32-onnx", "fp32", "bf16-autocast")),
        ("fpu sse avx2 avx512f avx512_vnni", ("fp32-onnx", "fp32")),
        ("fpu sse avx2", ("fp32-onnx", "fp32")),
    ],
)
def test_auto_times_bf16_only_where_the_cpu_has_it(tmp_path: Path, flags: str, expected: tuple[str, ...]) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\nflags\t\t: {flags}\n\nprocessor\t: 1\nflags\t\t: {flags}\n")
    assert auto_candidates(cpuinfo) == expected


def test_auto_times_the_float32_backends_without_cpu_information(tmp_path: Path) -> None:
    assert not cpu_has_bf16(tmp_path / "missing")
    assert auto_candidates(tmp_path / "missing") == ("fp32-onnx", "fp32")


def test_explicit_precisions_are_kept_and_unknown_ones_refused() -> None:
    assert resolve_precision("auto") is None  # measured on first use (test_backend_choice.py)
    for precision in LOCAL_PRECISIONS:
        if precision != "auto":
            assert resolve_precision(precision) == precision  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown local precision 'int4'"):
        resolve_precision("int4")  # type: ignore[arg-type]


def test_a_text_longer_than_the_window_is_refused() -> None:
    embedder = create_embedder("minilm", precision="auto")
    long_text = "word " * 300
    assert embedder.count_tokens([long_text]) == [300]
    with pytest.raises(InputTooLong, match="text #1 has 300 tokens"):
        embedder.embed(["short", long_text])
    vectors, counts = embedder.embed_counted(["short", "word " * 254])
    assert vectors.shape == (2, 384) and counts == [1, 254]


def test_glibc_is_told_to_keep_freed_memory_for_the_next_batch() -> None:
    import platform

    if platform.libc_ver()[0] != "glibc":
        pytest.skip("mallopt is glibc's")
    # Loading the PyTorch model applies it (fp32-onnx, auto's choice without bf16, never loads it:
    # ONNX Runtime keeps its own memory arena).
    create_embedder("minilm", precision="fp32").embed(TEXTS[:1])
    assert torch_model.keep_freed_memory_for_reuse.cache_info().currsize == 1
    assert torch_model.keep_freed_memory_for_reuse()
