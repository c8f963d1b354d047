"""What several commands share: errors for the user, the embedders, a searcher over a table version."""

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


def add_version_argument(parser) -> None:
    parser.add_argument(
        "--version", default="served", metavar="served|latest|N",
        help="table version to read: the served one (default), the latest written, or a version number",
    )


def add_where_argument(parser) -> None:
    parser.add_argument(
        "--where", action="append", default=[], metavar="FIELD=VALUE",
        help=(
            "only chunks matching, applied inside the query (repeatable): source=NAME, doc_key_prefix=PREFIX, "
            "page_from=N, page_to=N, pages=N-M"
        ),
    )


def where_condition(terms: Sequence[str]) -> str | None:
    """``--where`` terms as the LanceDB condition the search applies (``SearchFilters``)."""
    from pydantic import ValidationError

    from ai_assets.core.retrieval.filters import parse_where

    try:
        return parse_where(terms).where()
    except ValidationError as error:
        raise CliError(f"--where: {error.errors()[0]['msg'].removeprefix('Value error, ')}") from None


def open_searcher(
    settings: Settings, embedder_name: str | None, version: str = "served", sources: Sequence[str] | None = None
):
    """A searcher over the embedder's table pinned to ``version`` (see ``add_version_argument``);
    every source asked for must be in it."""
    from ai_assets.core.retrieval.search import Searcher
    from ai_assets.core.store.tables import source_row_counts, sql_literal
    from ai_assets.core.store.versions import NoServedVersion, parse_version_selector
    from ai_assets.resources import lancedb_from_settings

    selector = parse_version_selector(version)
    check_storage(settings)
    embedder = embedders(settings).get(enabled_embedder(settings, embedder_name))
    try:
        table = lancedb_from_settings(settings).table_at(embedder.spec, selector)
    except NoServedVersion as error:
        raise CliError(str(error)) from None
    missing = [source for source in sources or [] if not table.count_rows(f"source = {sql_literal(source)}")]
    if missing:
        # Only on this error path is the whole source column read, to list what there is.
        known = ", ".join(sorted(source_row_counts(table))) or "none yet (run `ai-assets build`)"
        raise CliError(f"no source {', '.join(map(repr, missing))} in table {table.name}; known sources: {known}")
    return Searcher(table, embedder)


def serving_note(settings: Settings, searcher) -> str | None:
    """A line for stderr when what is read is not everything written: a candidate not served yet,
    or another version than the served one."""
    from ai_assets.core.store.versions import serving_state
    from ai_assets.resources import lancedb_from_settings

    state = serving_state(lancedb_from_settings(settings).table(searcher.embedder.spec, create=False))
    read = searcher.table.version
    if read != state.served:
        served = f"v{state.served}" if state.served is not None else "nothing"
        return f"note: reading {state.table} v{read}, which is not the served version (serving {served})"
    if state.candidate is not None and state.candidate != state.served:
        return f"note: {state.describe()}; `ai-assets promote --list` says why"
    return None


def print_leaderboard(rows: Sequence[Any]) -> None:
    from ai_assets.core.evaluation.leaderboard import leaderboard_markdown

    print(leaderboard_markdown(rows), end="")
