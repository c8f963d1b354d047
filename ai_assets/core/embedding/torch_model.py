"""Loading the local model's PyTorch weights (sentence-transformers) without any hub access."""

from __future__ import annotations

import os
from functools import lru_cache
from typing import TYPE_CHECKING, Literal

from ai_assets.core.embedding.precision import Weights

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

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
