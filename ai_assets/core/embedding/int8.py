"""The local model with its matrix products in int8 (``AI_ASSETS_LOCAL_PRECISION=int8``), quantized
once from the cached fp32 ONNX export and kept beside it."""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict

from ai_assets.core.embedding.onnx import export_onnx_model, load_onnx_session

if TYPE_CHECKING:
    from onnxruntime import InferenceSession


class Int8Recipe(BaseModel):
    """How the fp32 graph is quantized: ONNX Runtime's dynamic quantization (weights int8 per output
    channel, activations quantized per batch from their own range, so no calibration set to keep
    representative) of the operator types named, less the nodes named."""

    model_config = ConfigDict(frozen=True)

    name: str
    op_types: tuple[str, ...] = ("MatMul",)  # empty: every type ONNX Runtime quantizes
    excluded_nodes: tuple[str, ...] = ()
    # 7-bit weights, which ONNX Runtime advises on CPUs without VNNI (their u8*s8 sums can saturate).
    reduce_range: bool = False

    def key(self) -> str:
        return hashlib.sha256(self.model_dump_json().encode()).hexdigest()[:12]


# The recipe of the project's int8 (bench/RESULTS.md, "int8"): the 18 MatMuls of the six layers'
# attention output and feed-forward layers, in full 8-bit range; the fused Attention operators
# (whose query/key/value products ONNX Runtime would quantize with the softmax inputs), the
# embeddings and the pooling stay in float.
INT8_RECIPE = Int8Recipe(name="dynamic-matmul")


def int8_onnx_model(model_path: str, recipe: Int8Recipe = INT8_RECIPE) -> Path:
    """The quantized model file, made once per fp32 export, ONNX Runtime version and recipe (a few
    seconds) and kept in the export's cache directory."""
    fp32 = export_onnx_model(model_path)
    ort_version = importlib.metadata.version("onnxruntime")
    key = hashlib.sha256(f"{fp32.name}|onnxruntime {ort_version}|{recipe.key()}".encode()).hexdigest()[:16]
    target = fp32.with_name(f"model-int8-{key}.onnx")
    if target.is_file():
        return target
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    partial = target.with_name(f"{target.name}.{os.getpid()}.partial")  # renamed into place: never half-written
    quantize_dynamic(
        str(fp32),
        str(partial),
        weight_type=QuantType.QInt8,
        per_channel=True,
        reduce_range=recipe.reduce_range,
        op_types_to_quantize=list(recipe.op_types) or None,
        nodes_to_exclude=list(recipe.excluded_nodes),
        # The fused graph's custom operators hide some tensors' types from shape inference.
        extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
    )
    os.replace(partial, target)
    return target


@lru_cache(maxsize=2)
def int8_session(model_path: str) -> InferenceSession:
    """A session over the project's int8 model. Unlike fp32-onnx there is no PyTorch fallback: a
    float vector must never land in the int8 table, so a failed quantization is an error."""
    return load_onnx_session(int8_onnx_model(model_path))
