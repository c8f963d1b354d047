"""What several commands share: errors for the user, the embedders, a searcher over a table."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from ai_assets.settings import Settings


class CliError(Exception):
    """An error the user can fix; printed without a traceback."""


def check_storage(settings: Settings) -> None:
    """Fail before any run, naming the setting, when a bucket or its endpoint cannot be used."""
    from ai_assets.core.storage import check_reachable

    check_reachable(settings.data_dir, "AI_ASSETS_DATA_DIR")
    for setting, location in (
        ("AI_ASSETS_SOURCES_URI", settings.sources_uri),
        ("AI_ASSETS_EVAL_URI", settings.eval_uri),
        ("AI_ASSETS_CHUNKS_URI", settings.chunks_uri),
        ("AI_ASSETS_LANCEDB_URI", settings.lancedb_uri),
    ):
        if location:
            check_reachable(location, setting)


def embedders(settings: Settings):
    from ai_assets.resources import embedders_from_settings

    # Resolves dg.EnvVar("OPENAI_API_KEY") the way a run does; the key stays out of any output.
    return embedders_from_settings(settings).process_config_and_initialize()


def enabled_embedder(settings: Settings, name: str | None) -> str:
    name = name or settings.embedders[0]
    if name not in settings.embedders:
        raise CliError(f"embedder {name!r} is not enabled (AI_ASSETS_EMBEDDERS={','.join(settings.embedders)})")
    return name


def query_text(value: str) -> str:
    """An argparse type: a query must hold words (a blank one would return arbitrary chunks)."""
    if not value.strip():
        raise argparse.ArgumentTypeError("the query is empty: give the words to search for")
    return value


def open_searcher(settings: Settings, embedder_name: str | None, sources: Sequence[str] | None = None):
    """A searcher over the embedder's table; every source asked for must be in it."""
    from ai_assets.core.retrieval.search import Searcher
    from ai_assets.core.store.tables import source_row_counts, sql_literal
    from ai_assets.resources import lancedb_from_settings

    check_storage(settings)
    embedder = embedders(settings).get(enabled_embedder(settings, embedder_name))
    table = lancedb_from_settings(settings).table(embedder.spec, create=False)
    missing = [source for source in sources or [] if not table.count_rows(f"source = {sql_literal(source)}")]
    if missing:
        # Only on this error path is the whole source column read, to list what there is.
        known = ", ".join(sorted(source_row_counts(table))) or "none yet (run `ai-assets build`)"
        raise CliError(f"no source {', '.join(map(repr, missing))} in table {table.name}; known sources: {known}")
    return Searcher(table, embedder)


def print_leaderboard(rows: Sequence[Any]) -> None:
    from ai_assets.core.evaluation.leaderboard import leaderboard_markdown

    print(leaderboard_markdown(rows), end="")
