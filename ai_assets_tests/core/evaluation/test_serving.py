"""One evaluation decides what is served: the candidate scored beside the served version, with each
query embedded once, on a real table with the real model."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import lancedb
import numpy as np
import pytest
from lancedb.table import Table

from ai_assets.core.chunking.chunker import ChunkerConfig, chunk_document
from ai_assets.core.documents.model import Document, content_hash
from ai_assets.core.embedding.base import MINILM, Embedder
from ai_assets.core.embedding.registry import create_embedder
from ai_assets.core.embedding.tokenizer import minilm_tokenizer
from ai_assets.core.evaluation.beir import EvalSet
from ai_assets.core.evaluation.serving import NoCandidate, evaluate_and_serve
from ai_assets.core.store.indexes import build_indexes
from ai_assets.core.store.tables import open_journal, open_table
from ai_assets.core.store.versions import checkout, mark_candidate, serving_state
from ai_assets.core.store.writes import sync_source_embeddings

PAGES = {
    "retries.md": "A run retry starts the whole run again after a failure; set max_retries to bound them.",
    "schedules.md": "A schedule launches a job at fixed times, written as a cron expression.",
    "sensors.md": "A sensor polls for new files; its cursor remembers what it has already seen.",
}
EVAL_SET = EvalSet(
    name="mini",
    path="",
    queries={"q1": "how often is a failed run retried", "q2": "cron expression for a job", "q3": "sensor cursor"},
    qrels={"q1": {"docs/retries.md": 1}, "q2": {"docs/schedules.md": 1}, "q3": {"docs/sensors.md": 1}},
    sources=["docs"],
)


class CountingEmbedder(Embedder):
    """The real model, counting every text it encodes."""

    def __init__(self, real: Embedder) -> None:
        self.spec, self.real, self.texts = real.spec, real, []

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return self.real.count_tokens(texts)

    def _encode(self, texts: list[str], token_counts: Sequence[int]) -> np.ndarray:
        self.texts.extend(texts)
        return self.real.embed(texts)


@pytest.fixture(scope="module")
def model() -> Embedder:
    return create_embedder("minilm")


def publish(table: Table, embedder: Embedder, pages: dict[str, str]) -> None:
    documents = [
        Document(
            doc_key=f"docs/{path}", source="docs", path=path, title=path, text=text,
            content_hash=content_hash(path, text), size_bytes=len(text), mtime=0.0,
        )
        for path, text in pages.items()
    ]
    config = ChunkerConfig(tokenizer=MINILM.model, max_tokens=64, overlap_tokens=8)
    chunks = [chunk for document in documents for chunk in chunk_document(document, minilm_tokenizer(), config)]
    sync_source_embeddings(table, "docs", chunks, embedder, run_id="run", journal=open_journal(table._conn, MINILM))
    mark_candidate(table, build_indexes(table).version)


def test_the_candidate_is_served_only_when_it_scores_as_well_as_the_served_version(tmp_path: Path, model: Embedder) -> None:
    db = lancedb.connect(str(tmp_path))
    table = open_table(db, MINILM)

    def at(version: int) -> Table:
        pinned = open_table(db, MINILM, create=False)
        checkout(pinned, version)
        return pinned

    with pytest.raises(NoCandidate, match="materialize search_index first"):
        evaluate_and_serve(table, at, model, [EVAL_SET], floor=0.1, max_drop=0.02)
    publish(table, model, PAGES)
    first = evaluate_and_serve(table, at, model, [EVAL_SET], floor=0.1, max_drop=0.02)
    assert first.decision.promote and first.after.served == first.evaluated and first.before.served is None
    assert first.served_scores == [] and first.served_now == first.scores.candidate

    # The retries page loses its text: the candidate is worse than the served version.
    publish(table, model, {**PAGES, "retries.md": "Notes about zebrafish tanks and their filters."})
    counting = CountingEmbedder(model)
    worse = evaluate_and_serve(table, at, counting, [EVAL_SET], floor=0.1, max_drop=0.02)
    assert sorted(counting.texts) == sorted(EVAL_SET.queries.values())  # once each, for both versions and modes
    assert not worse.decision.promote and worse.after.served == first.evaluated
    assert {(s.mode, s.eval_set) for s in worse.scores.served} == {(s.mode, "mini") for s in worse.scores.candidate}
    assert worse.served_now == worse.served_scores == worse.scores.served
    description = worse.gate_description()
    assert description and description.startswith(f"candidate v{worse.evaluated} not promoted: mini/")
    assert f"below the served version (v{first.evaluated})" in description

    # A gate that allows the drop serves it; scores then are the candidate's.
    allowed = evaluate_and_serve(table, at, model, [EVAL_SET], floor=0.1, max_drop=1.0)
    assert allowed.decision.promote and serving_state(table).served == allowed.evaluated == worse.evaluated
    assert allowed.served_now == allowed.scores.candidate and allowed.gate_description() is None
