"""What several commands share: errors for the user, the embedders, a searcher over a table."""

from __future__ import annotations

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


def open_searcher(settings: Settings, embedder_name: str | None):
    from ai_assets.core.retrieval.search import Searcher
    from ai_assets.resources import lancedb_from_settings

    check_storage(settings)
    embedder = embedders(settings).get(enabled_embedder(settings, embedder_name))
    table = lancedb_from_settings(settings).table(embedder.spec, create=False)
    return Searcher(table, embedder)


def print_leaderboard(rows: Sequence[Any]) -> None:
    from ai_assets.core.evaluation.leaderboard import leaderboard_markdown

    print(leaderboard_markdown(rows), end="")
