"""The served version as LanceDB tags on a real table: pinning readers, moving the pointer, and
compaction that never deletes a tagged version however old it is."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from pathlib import Path

import lancedb
import pytest
from lancedb.index import BTree
from lancedb.table import Table

from ai_assets.core.embedding.base import MINILM, Embedder
from ai_assets.core.embedding.registry import create_embedder
from ai_assets.core.retrieval.search import Searcher
from ai_assets.core.store.indexes import build_indexes
from ai_assets.core.store.tables import open_journal, open_table
from ai_assets.core.store.versions import (
    SERVED_HISTORY,
    NoServedVersion,
    ServingState,
    UnknownVersion,
    checkout,
    cleanup_window,
    existing_versions,
    extend_hold,
    mark_candidate,
    move_served,
    parse_version_selector,
    promotion_decision,
    serving_state,
    tagged_version_timestamps,
    version_to_evaluate,
)
from ai_assets.core.store.writes import sync_source_embeddings
from ai_assets_tests.core.store.test_store import chunks_of, documents


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return create_embedder("minilm")


def publish(table: Table, embedder: Embedder, variant: str, count: int = 3) -> int:
    """Write source alpha's documents (``variant`` in their text) and index them: a new candidate."""
    sync_source_embeddings(
        table, "alpha", chunks_of(documents("alpha", count, variant)), embedder, run_id=f"run-{variant}",
        journal=open_journal(table._conn, MINILM),
    )
    return build_indexes(table).version


def reopened(table: Table) -> Table:
    return open_table(table._conn, MINILM, create=False)


def test_readers_pin_the_served_version_while_writes_move_latest(tmp_path: Path, embedder: Embedder) -> None:
    table = open_table(lancedb.connect(str(tmp_path)), MINILM)
    first = publish(table, embedder, "zeppelin")
    with pytest.raises(NoServedVersion, match="run `ai-assets build`"):
        checkout(reopened(table), "served")
    move_served(table, first)

    second = publish(table, embedder, "quokka")
    mark_candidate(table, second)
    state = serving_state(table)
    assert (state.served, state.candidate, state.latest, state.pending) == (first, second, second, second)

    served = reopened(table)
    assert checkout(served, "served") == first == served.version
    searcher = Searcher(served, embedder)
    assert searcher.search("zeppelin", mode="fts", limit=3)  # the served text, through its FTS index
    assert not searcher.search("quokka", mode="fts", limit=3)  # the candidate's text is not served yet
    assert searcher.search("quokka schedules", mode="hybrid", limit=3)[0].run_id == "run-zeppelin"
    latest = reopened(table)
    assert checkout(latest, "latest") == second
    assert Searcher(latest, embedder).search("quokka", mode="fts", limit=3)

    pinned = reopened(table)
    assert checkout(pinned, first) == first
    with pytest.raises(UnknownVersion, match="has no version 999"):
        checkout(reopened(table), 999)


def test_rollback_holds_what_it_moved_away_from_and_history_is_bounded(tmp_path: Path, embedder: Embedder) -> None:
    table = open_table(lancedb.connect(str(tmp_path)), MINILM)
    served = []
    for number in range(SERVED_HISTORY + 2):
        version = publish(table, embedder, f"v{number}", count=1)
        mark_candidate(table, version)
        move_served(table, version)
        served.append(version)
    state = serving_state(table)
    assert state.served == served[-1]
    assert list(state.history) == sorted(served, reverse=True)[:SERVED_HISTORY]  # the oldest lost their tags
    assert state.previous_served() == served[-2]

    rolled = move_served(table, served[-2], hold_up_to=state.latest)
    assert (rolled.served, rolled.held, rolled.candidate) == (served[-2], served[-1], served[-1])
    assert rolled.pending is None  # the candidate it moved away from is held, not pending
    assert "held back by a rollback" in rolled.describe()

    # Index maintenance (no row changed since the hold) stays held; a write of new rows does not.
    table.create_index("chunk_index", config=BTree(), name="maintenance_idx")
    extend_hold(table, unchanged_since=rolled.latest)
    maintained = serving_state(table)
    assert maintained.held == maintained.latest > rolled.latest
    mark_candidate(table, maintained.latest)
    assert serving_state(table).pending is None

    newer = publish(table, embedder, "after-rollback", count=1)
    mark_candidate(table, newer)
    assert serving_state(table).pending == newer  # new writes make a new candidate, evaluated as usual
    assert move_served(table, newer).held is None  # serving past the hold lifts it


def state(served: int | None, candidate: int, held: int | None = None) -> ServingState:
    return ServingState(table="t", latest=candidate, served=served, candidate=candidate, held=held, history=())


@pytest.mark.parametrize(
    ("serving", "failures", "override", "promote", "reason"),
    [
        (state(None, 3), [], False, True, "passed every blocking check"),
        (state(3, 5), [], False, True, "passed every blocking check"),
        (state(3, 5), ["docs_qa/hybrid ndcg@10 below the floor"], False, False, "quality gate failed"),
        (state(None, 5), ["below the floor"], False, False, "nothing is served yet"),
        (state(5, 5), [], False, False, "already served"),
        (state(3, 5, held=5), [], False, False, "held: a rollback"),
        (state(3, 5, held=5), [], True, True, "passed every blocking check"),
        (state(3, 6, held=5), [], False, True, "passed every blocking check"),
        (state(7, 5), [], False, False, "a newer version (v7) is already served"),
    ],
)
def test_promotion_decision(serving: ServingState, failures: list[str], override: bool, promote: bool, reason: str) -> None:
    decision = promotion_decision(serving, serving.candidate or 0, failures, override_hold=override)
    assert decision.promote is promote and reason in decision.reason


def test_version_selector_parsing() -> None:
    assert parse_version_selector("served") == "served"
    assert parse_version_selector("latest") == "latest"
    assert parse_version_selector("12") == 12
    with pytest.raises(ValueError, match="--version must be served, latest or a version number"):
        parse_version_selector("yesterday")


def test_cleanup_window_keeps_every_tagged_version_younger_than_the_cutoff() -> None:
    now = datetime(2026, 12, 1, 12, 0)
    week = timedelta(days=7)
    assert cleanup_window([], week, now=now) == week
    assert cleanup_window([now - timedelta(days=1)], week, now=now) == week
    margin = timedelta(hours=1)
    assert cleanup_window([now - timedelta(days=30), now - timedelta(days=2)], week, now=now, margin=margin) == (
        timedelta(days=30) + margin
    )


def test_compaction_never_deletes_a_tagged_version_however_old(tmp_path: Path, embedder: Embedder) -> None:
    table = open_table(lancedb.connect(str(tmp_path)), MINILM)
    early = publish(table, embedder, "early")  # untagged: compaction may delete it
    time.sleep(1.2)
    served = publish(table, embedder, "zeppelin")
    move_served(table, served)
    time.sleep(1.2)
    publish(table, embedder, "quokka")

    # LanceDB's own prune refuses to run past a tagged version: every later compaction would fail.
    with pytest.raises(RuntimeError, match="tagged version"):
        table.optimize(cleanup_older_than=timedelta(seconds=1))
    # The window build_indexes uses keeps it; with a short margin, the early untagged version goes.
    table.optimize(
        cleanup_older_than=cleanup_window(tagged_version_timestamps(table), timedelta(0), margin=timedelta(milliseconds=600))
    )
    versions = existing_versions(table)
    assert early not in versions and served in versions
    pinned = reopened(table)
    checkout(pinned, "served")
    assert Searcher(pinned, embedder).search("zeppelin", mode="fts", limit=3)

    # build_indexes itself, told to keep nothing: no error, and the served version still reads.
    publish(table, embedder, "again")
    build_indexes(table, version_retention=timedelta(0))
    again = reopened(table)
    checkout(again, "served")
    assert Searcher(again, embedder).search("zeppelin", mode="fts", limit=3)[0].run_id == "run-zeppelin"


def test_a_held_candidate_is_not_evaluated_the_served_version_is() -> None:
    held = state(3, 5, held=5)
    assert version_to_evaluate(held) == 3 and version_to_evaluate(held, override_hold=True) == 5
    decision = promotion_decision(held, version_to_evaluate(held), [])
    assert not decision.promote
    assert "v3 is already served; candidate v5 is held back by a rollback (`ai-assets promote`" in decision.reason
    assert version_to_evaluate(state(3, 6, held=5)) == 6
