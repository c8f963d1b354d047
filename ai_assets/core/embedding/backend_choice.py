"""What ``auto`` runs on this machine: the fastest of the lossless backends, measured once and cached.

CPU flags alone chose wrongly on one of three CPU kinds (an Intel Xeon with VNNI, no bf16: PyTorch
fp32 96 passages/s, the chosen fp32-onnx 84), so ``auto`` times its candidates on this machine on
first use and keeps the fastest. The decision is kept in a small JSON file on this machine (the
ONNX export's cache directory: a remote data dir is shared by machines of other CPUs), named by
what it depends on, so that another CPU, other library versions or another model measure again.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, ValidationError

logger = logging.getLogger(__name__)

# Libraries whose versions change a backend's speed (ONNX Runtime's kernels, PyTorch's oneDNN).
TIMED_LIBRARIES = ("torch", "onnxruntime", "transformers", "sentence-transformers", "numpy")
# Synthetic texts timed: token counts from a short passage to a full 254-token window (mean 140),
# since the backends' order can depend on length (attention grows with its square). A backend's
# speed does not depend on which tokens it reads, so random vocabulary ids represent any corpus.
TIMED_TOKEN_COUNTS = (40, 80, 140, 254)
TIMED_TEXTS = 64
TIMED_ROUNDS = 2  # candidates alternate; each keeps its best round (a shared machine's noise only slows)
# A later candidate replaces the first (fp32-onnx, which needs no PyTorch import in each step
# process) only when this much faster: closer than that is within a measurement's noise.
PREFERENCE_MARGIN = 0.05


class ChoiceKey(BaseModel):
    """What a measured decision depends on: when any of it changes, ``auto`` measures again."""

    model_config = ConfigDict(frozen=True)

    cpu: str  # the CPU's model name and flags, and how many cores this process may use
    libraries: dict[str, str]
    model: str  # the model files' identity (names, sizes, times, path)
    candidates: tuple[str, ...]

    def digest(self) -> str:
        return hashlib.sha256(self.model_dump_json().encode()).hexdigest()[:16]


class BackendChoice(BaseModel):
    """The backend ``auto`` runs here, with what was measured to choose it."""

    key: ChoiceKey
    chosen: str
    passages_per_second: dict[str, float]  # each candidate's best round
    texts: int
    mean_tokens: float
    measured_at: str

    def reason(self) -> str:
        """One line for the build's header and the asset's metadata."""
        speeds = ", ".join(f"{name} {rate:.1f}" for name, rate in sorted(self.passages_per_second.items(), key=lambda item: -item[1]))
        return (
            f"auto: fastest measured on this machine ({speeds} texts/s on {self.texts} texts of "
            f"{self.mean_tokens:.0f} tokens, {self.measured_at})"
        )


def cpu_identity(cpuinfo: Path) -> str:
    """The CPU's model name and flags (a VM may call different generations just "AMD EPYC") and the
    cores this process may use."""
    try:
        lines = cpuinfo.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        lines = []
    fields = {key.strip(): value.strip() for key, _, value in (line.partition(":") for line in lines) if value}
    flags = " ".join(sorted(fields.get("flags", "").split()))
    return f"{fields.get('model name', 'unknown CPU')} | {usable_cores()} cores | {flags}"


def usable_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def library_versions(names: Sequence[str] = TIMED_LIBRARIES) -> dict[str, str]:
    """Installed versions, read without importing the libraries."""
    versions = {}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "absent"
    return versions


def choice_path(directory: Path, key: ChoiceKey) -> Path:
    """One file per key: machines sharing a home directory, or one machine after an upgrade, keep
    each decision apart instead of overwriting one another's."""
    return directory / f"backend-choice-{key.digest()}.json"


def read_choice(path: Path, key: ChoiceKey) -> BackendChoice | None:
    """The cached decision for ``key``; None when there is none, it is unreadable, or was made for
    another key or candidates no longer offered (then ``auto`` measures again)."""
    try:
        choice = BackendChoice.model_validate_json(path.read_bytes())
    except (OSError, ValidationError, ValueError):
        return None
    if choice.key != key or choice.chosen not in key.candidates:
        return None
    return choice


def write_choice(path: Path, choice: BackendChoice) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f"{path.name}.{os.getpid()}.partial")  # renamed into place: never half-written
    partial.write_text(json.dumps(choice.model_dump(), indent=2), encoding="utf-8")
    os.replace(partial, path)


def timed_token_ids(vocabulary_size: int, cls_id: int, sep_id: int, texts: int = TIMED_TEXTS) -> list[list[int]]:
    """Deterministic texts of ``TIMED_TOKEN_COUNTS`` tokens (special tokens included) from ordinary
    vocabulary ids (past BERT's first 1,000: unused and special tokens)."""
    generator = np.random.default_rng(0)
    lengths = [TIMED_TOKEN_COUNTS[index % len(TIMED_TOKEN_COUNTS)] for index in range(texts)]
    return [[cls_id, *generator.integers(1000, vocabulary_size, length - 2).tolist(), sep_id] for length in lengths]


def measure_backends(
    run: dict[str, Callable[[list[list[int]]], object]], token_ids: list[list[int]], rounds: int = TIMED_ROUNDS
) -> dict[str, float]:
    """Texts per second of each backend on the same token ids, after one warm-up call each (model
    load, session creation); candidates alternate within each round and keep their best. A
    candidate that fails to run (a library missing, an export failing) gets 0 and a warning."""
    usable = {}
    for name, encode in run.items():
        try:
            encode(token_ids[:4])
        except Exception as error:  # noqa: BLE001 (any failure only removes a candidate)
            logger.warning("auto leaves out the %s backend: %s", name, error)
        else:
            usable[name] = encode
    best = dict.fromkeys(usable, float("inf"))
    names = list(usable)
    for round_index in range(rounds):
        shift = round_index % max(len(names), 1)
        for name in names[shift:] + names[:shift]:
            started = time.perf_counter()
            usable[name](token_ids)
            best[name] = min(best[name], time.perf_counter() - started)
    return {name: round(len(token_ids) / best[name], 1) if name in best else 0.0 for name in run}


def decide(key: ChoiceKey, measured: dict[str, float], token_ids: list[list[int]]) -> BackendChoice:
    """The fastest measured candidate, where it beats the first candidate by ``PREFERENCE_MARGIN``."""
    first = key.candidates[0]
    fastest = max(key.candidates, key=lambda name: measured.get(name, 0.0))
    beats_first = measured.get(fastest, 0.0) > measured.get(first, 0.0) * (1 + PREFERENCE_MARGIN)
    return BackendChoice(
        key=key,
        chosen=fastest if beats_first else first,
        passages_per_second=measured,
        texts=len(token_ids),
        mean_tokens=float(np.mean([len(ids) for ids in token_ids])),
        measured_at=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    )


def cached_or_measured(
    path: Path,
    key: ChoiceKey,
    token_ids: list[list[int]],
    run: Callable[[str], Callable[[list[list[int]]], object]],
) -> BackendChoice:
    """The decision cached at ``path`` for ``key``, or a new one measured now and cached there.
    Processes starting together (a build's parallel steps) measure once: the others wait on a lock
    and read its decision, so they neither slow that measurement nor choose differently. A cache
    directory that cannot be written only costs measuring again next time."""
    cached = read_choice(path, key)
    if cached is not None:
        return cached
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = open(path.with_suffix(".lock"), "a+b")  # noqa: SIM115 (held until the decision is written)
    except OSError as error:
        logger.warning("could not lock the local model's backend choice at %s: %s", path, error)
        return _measure_and_keep(path, key, token_ids, run)
    with lock:
        _lock_exclusively(lock.fileno())
        return read_choice(path, key) or _measure_and_keep(path, key, token_ids, run)


def _lock_exclusively(descriptor: int) -> None:
    try:
        import fcntl
    except ImportError:  # not POSIX: processes may measure side by side, the last one's file stays
        return
    fcntl.flock(descriptor, fcntl.LOCK_EX)  # released when the file closes


def _measure_and_keep(
    path: Path,
    key: ChoiceKey,
    token_ids: list[list[int]],
    run: Callable[[str], Callable[[list[list[int]]], object]],
) -> BackendChoice:
    started = time.perf_counter()
    choice = decide(key, measure_backends({name: run(name) for name in key.candidates}, token_ids), token_ids)
    logger.info("local model backend %s in %.1f s: %s", choice.chosen, time.perf_counter() - started, choice.reason())
    try:
        write_choice(path, choice)
    except OSError as error:
        logger.warning("could not cache the local model's backend choice at %s: %s", path, error)
    return choice
