"""The local model exported once to ONNX and run by ONNX Runtime (cached under ``$XDG_CACHE_HOME/ai_assets``)."""

from __future__ import annotations

import hashlib
import logging
import os
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ai_assets.core.embedding.torch_model import read_sentence_transformer

if TYPE_CHECKING:
    from onnxruntime import InferenceSession

logger = logging.getLogger(__name__)


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
    return session.run(None, {name: inputs[name] for name in session_inputs(session)})[0]


def session_inputs(session: InferenceSession) -> list[str]:
    return [model_input.name for model_input in session.get_inputs()]


def model_files_key(model_path: str) -> str:
    """What identifies the model's files without reading them: their path, names, sizes and times."""
    files = sorted(path for path in Path(model_path).iterdir() if path.is_file())
    return repr([(path.name, path.stat().st_size, path.stat().st_mtime_ns) for path in files]) + str(
        Path(model_path).resolve()
    )


def export_onnx_model(model_path: str) -> Path:
    """The model's modules in order (transformer, pooling, normalization) as one ONNX graph, with
    the attention and layer norms fused by ONNX Runtime's BERT optimizer. Inputs: token ids, mask
    and types of any shape; output: the sentence embedding. Exported once per model files and
    torch version."""
    import importlib.metadata
    import tempfile
    import warnings

    torch_version = importlib.metadata.version("torch")  # without importing it: a cached export needs no PyTorch
    key = hashlib.sha256(
        f"{model_files_key(model_path)}|torch {torch_version}|opset {ONNX_OPSET}|fused".encode()
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
