"""How the local model runs on this CPU: the precisions offered and what ``auto`` picks."""

from __future__ import annotations

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
# - int8: the fp32-onnx graph with its matrix products in int8 (ONNX Runtime's quantization, see
#   embedding/int8.py), several times faster on a CPU with VNNI, at a measured loss of retrieval
#   quality: opt-in only, and its vectors are kept in a table of their own (never mixed with float ones);
# - auto: the fastest of the lossless backends (auto_candidates), measured on this machine on first
#   use and cached (embedding/backend_choice.py): CPU flags alone chose wrongly on an Intel CPU with
#   VNNI, where PyTorch fp32 outran fp32-onnx. bf16 is faster still, but lost 0.0033 nDCG@10 on
#   dbpedia against fp32, past the 0.002 the default may lose (bench/RESULTS.md, "The local
#   encoder"); bf16-autocast lost 0.0012 / 0.0002. Without native bf16, bfloat16 is emulated
#   (bf16-autocast ran at 0.12x fp32 on an AVX2 CPU), so it is a candidate only where the CPU has it.
# bench/encoders.py measures them against each other (speed, cosine to fp32, nDCG@10).
LocalPrecision = Literal["auto", "fp32", "fp32-onnx", "bf16", "bf16-autocast", "int8"]
ResolvedPrecision = Literal["fp32", "fp32-onnx", "bf16", "bf16-autocast", "int8"]
LOCAL_PRECISIONS: tuple[str, ...] = get_args(LocalPrecision)

# The PyTorch weights each precision loads (fp32-onnx: those it falls back to); "bfloat16-linear"
# (only the Linear layers) runs under autocast only.
Weights = Literal["float32", "bfloat16", "bfloat16-linear"]
PRECISION_WEIGHTS: dict[ResolvedPrecision, Weights] = {
    "fp32": "float32",
    "fp32-onnx": "float32",
    "bf16": "bfloat16",
    "bf16-autocast": "bfloat16-linear",
    "int8": "float32",  # never loaded: int8 runs in ONNX Runtime only
}

CPUINFO = Path("/proc/cpuinfo")
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_has_bf16(cpuinfo: Path = CPUINFO) -> bool:
    """Whether the CPU computes bfloat16 natively (AVX-512 BF16 or AMX), where bfloat16 pays off.

    Read from the kernel's CPU flags (which also say whether the kernel lets processes use AMX);
    a CPU without them, or a system without that file, gets False: ``auto`` does not time bf16 there.
    """
    try:
        flags = cpuinfo.read_text(encoding="utf-8", errors="replace").split()
    except OSError:
        return False
    return any(flag in flags for flag in BF16_CPU_FLAGS)


def auto_candidates(cpuinfo: Path = CPUINFO) -> tuple[ResolvedPrecision, ...]:
    """The backends ``auto`` times, in order of preference on a tie: fp32-onnx first, since a
    process running it never imports PyTorch (~6 s per step process). A candidate this torch build
    cannot run (bf16 on some builds) is dropped when measured."""
    candidates: tuple[ResolvedPrecision, ...] = ("fp32-onnx", "fp32")
    return (*candidates, "bf16-autocast") if cpu_has_bf16(cpuinfo) else candidates


def resolve_precision(requested: LocalPrecision) -> ResolvedPrecision | None:
    """The precision a setting forces; None for ``auto`` (measured on first use)."""
    if requested == "auto":
        return None
    if requested not in LOCAL_PRECISIONS:
        raise ValueError(f"unknown local precision {requested!r}; choose one of {', '.join(LOCAL_PRECISIONS)}")
    return requested
