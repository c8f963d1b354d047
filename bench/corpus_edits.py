"""The edit both ingestion benchmarks apply to a corpus (bench/ingest.py and its LlamaIndex peer)."""

from __future__ import annotations

import json
import random
from pathlib import Path

from ai_assets.core.documents.folders import LocalSourceFolders

EDIT_SUFFIX = " (edited for the benchmark)"


def edit_corpus_lines(corpus: Path, fraction: float, seed: int = 7) -> int:
    lines = corpus.read_text(encoding="utf-8").split("\n")
    records = [index for index, line in enumerate(lines) if line.strip()]
    chosen = random.Random(seed).sample(records, max(1, round(len(records) * fraction)))
    for index in chosen:
        record = json.loads(lines[index])
        record["text"] = record.get("text", "") + EDIT_SUFFIX
        lines[index] = json.dumps(record)
    corpus.write_text("\n".join(lines), encoding="utf-8")
    return len(chosen)


def edit_files(sources_dir: Path, fraction: float, seed: int = 7) -> int:
    folders = LocalSourceFolders(sources_dir)
    files = [sources_dir / source / file.relative for source in folders.source_names() for file in folders.listing(source).files]
    chosen = random.Random(seed).sample(files, max(1, round(len(files) * fraction)))
    for path in chosen:
        path.write_text(path.read_text(encoding="utf-8") + "\n\nThis page was" + EDIT_SUFFIX + ".\n", encoding="utf-8")
    return len(chosen)
