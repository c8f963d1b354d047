"""How the local model runs on this CPU: the precisions offered and what ``auto`` picks."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal, get_args

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
#   (bench/RESULTS.md, "The local encoder"); bf16-autocast lost 0.0012 / 0.0002. Without native bf16,
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
