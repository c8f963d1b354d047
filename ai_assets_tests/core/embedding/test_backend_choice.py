"""``auto``'s measured backend choice: what invalidates the cached decision, how it is made, one real run."""

from __future__ import annotations

import time
from functools import partial
from pathlib import Path

import pytest

from ai_assets.core.embedding import backend_choice, local
from ai_assets.core.embedding.backend_choice import (
    BackendChoice,
    ChoiceKey,
    cached_or_measured,
    choice_path,
    cpu_identity,
    decide,
    measure_backends,
    read_choice,
    timed_token_ids,
    write_choice,
)
from ai_assets.core.embedding.base import MINILM
from ai_assets.core.embedding.local import SentenceTransformerEmbedder
from ai_assets.core.embedding.tokenizer import minilm_model_path

KEY = ChoiceKey(
    cpu="AMD EPYC | 2 cores | avx2 avx512_vnni",
    libraries={"torch": "2.13.0", "onnxruntime": "1.32.0"},
    model="model-a",
    candidates=("fp32-onnx", "fp32", "bf16-autocast"),
)
IDS = [[101, 2000, 102], [101, 2001, 2002, 102]]


def choice(key: ChoiceKey = KEY, chosen: str = "fp32") -> BackendChoice:
    return decide(key, {"fp32-onnx": 50.0, "fp32": 60.0, "bf16-autocast": 40.0}, IDS).model_copy(update={"chosen": chosen})


@pytest.mark.parametrize(
    "change",
    [
        {"cpu": "Intel Xeon | 2 cores | avx2 avx512_vnni"},
        {"cpu": "AMD EPYC | 4 cores | avx2 avx512_vnni"},
        {"libraries": {"torch": "2.14.0", "onnxruntime": "1.32.0"}},
        {"libraries": {"torch": "2.13.0", "onnxruntime": "1.33.0"}},
        {"model": "model-b"},
        {"candidates": ("fp32-onnx", "fp32")},
    ],
)
def test_a_changed_cpu_library_model_or_candidate_list_measures_again(tmp_path: Path, change: dict) -> None:
    write_choice(choice_path(tmp_path, KEY), choice())
    assert read_choice(choice_path(tmp_path, KEY), KEY) == choice()
    changed = KEY.model_copy(update=change)
    assert choice_path(tmp_path, changed) != choice_path(tmp_path, KEY)
    assert read_choice(choice_path(tmp_path, changed), changed) is None
    # Even a file found under the old name is not taken for the new key.
    assert read_choice(choice_path(tmp_path, KEY), changed) is None


def test_an_unreadable_or_foreign_decision_is_measured_again(tmp_path: Path) -> None:
    path = choice_path(tmp_path, KEY)
    assert read_choice(path, KEY) is None  # none yet
    path.write_text("{not json", encoding="utf-8")
    assert read_choice(path, KEY) is None
    path.write_text('{"chosen": "fp32"}', encoding="utf-8")  # fields missing
    assert read_choice(path, KEY) is None
    write_choice(path, choice(chosen="int8"))  # a backend auto does not offer
    assert read_choice(path, KEY) is None


def test_the_fastest_wins_only_by_more_than_the_noise_margin() -> None:
    assert decide(KEY, {"fp32-onnx": 50.0, "fp32": 60.0, "bf16-autocast": 40.0}, IDS).chosen == "fp32"
    assert decide(KEY, {"fp32-onnx": 58.0, "fp32": 60.0, "bf16-autocast": 40.0}, IDS).chosen == "fp32-onnx"
    assert decide(KEY, {"fp32-onnx": 0.0, "fp32": 0.0, "bf16-autocast": 0.0}, IDS).chosen == "fp32-onnx"
    made = decide(KEY, {"fp32-onnx": 50.0, "fp32": 60.0, "bf16-autocast": 40.0}, IDS)
    assert made.texts == 2 and made.mean_tokens == 3.5
    assert made.reason().startswith("auto: fastest measured on this machine (fp32 60.0, fp32-onnx 50.0, bf16-autocast 40.0")


def test_measuring_times_every_candidate_on_the_same_texts_and_drops_one_that_fails() -> None:
    seen: list[tuple[str, int]] = []

    def backend(name: str, seconds: float, ids: list[list[int]]) -> None:
        seen.append((name, len(ids)))
        time.sleep(seconds * len(ids))

    def broken(ids: list[list[int]]) -> None:
        raise RuntimeError("no bf16 here")

    ids = IDS * 4
    rates = measure_backends({"slow": partial(backend, "slow", 0.004), "fast": partial(backend, "fast", 0.001), "broken": broken}, ids)
    assert rates["broken"] == 0.0 and rates["fast"] > rates["slow"] > 0
    assert seen.count(("slow", len(ids))) == seen.count(("fast", len(ids))) == 2  # two rounds each, after a warm-up


def test_a_cached_decision_is_not_measured_again(tmp_path: Path) -> None:
    runs: list[str] = []

    def run(name: str):
        runs.append(name)
        return lambda ids: None

    path = choice_path(tmp_path, KEY)
    first = cached_or_measured(path, KEY, IDS, run)
    assert sorted(runs) == sorted(KEY.candidates) and path.is_file()
    assert cached_or_measured(path, KEY, IDS, run) == first
    assert len(runs) == len(KEY.candidates)


def test_the_cpu_identity_has_its_model_flags_and_usable_cores(tmp_path: Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: avx2 avx512_vnni avx512f\n\n")
    identity = cpu_identity(cpuinfo)
    assert identity.startswith("AMD EPYC | ") and identity.endswith("avx2 avx512_vnni avx512f")
    assert cpu_identity(tmp_path / "missing").startswith("unknown CPU")


def test_timed_texts_are_deterministic_and_of_the_intended_lengths() -> None:
    ids = timed_token_ids(30522, 101, 102, texts=8)
    assert ids == timed_token_ids(30522, 101, 102, texts=8)
    assert [len(text) for text in ids] == list(backend_choice.TIMED_TOKEN_COUNTS) * 2
    assert all(text[0] == 101 and text[-1] == 102 and 1000 <= min(text[1:-1]) for text in ids)


def test_auto_measures_once_and_says_what_runs_and_why(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The real model on a few texts: the decision is cached and a new embedder reads it."""
    monkeypatch.setattr(local, "onnx_cache_dir", lambda: tmp_path)
    # Two backends that need no PyTorch model load (auto never offers int8: the mechanism is the same).
    monkeypatch.setattr(local, "auto_candidates", lambda: ("fp32-onnx", "int8"))
    monkeypatch.setattr(local, "timed_token_ids", partial(timed_token_ids, texts=4))
    embedder = SentenceTransformerEmbedder(MINILM, minilm_model_path())
    assert embedder.precision in ("fp32-onnx", "int8")
    made = embedder.backend_choice
    assert made is not None and set(made.passages_per_second) == {"fp32-onnx", "int8"}
    assert all(rate > 0 for rate in made.passages_per_second.values())
    assert embedder.precision_reason == made.reason()
    assert [path.name for path in tmp_path.glob("backend-choice-*.json")] == [choice_path(tmp_path, made.key).name]
    again = SentenceTransformerEmbedder(MINILM, minilm_model_path())
    assert again.precision == embedder.precision and again.backend_choice == made  # read, not measured
    forced = SentenceTransformerEmbedder(MINILM, minilm_model_path(), precision="fp32")
    assert forced.precision == "fp32" and forced.precision_reason == "set by AI_ASSETS_LOCAL_PRECISION"
