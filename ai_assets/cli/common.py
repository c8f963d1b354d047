"""What several commands share: errors for the user, the embedders, a searcher over a table version."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ai_assets.settings import Settings


class CliError(Exception):
    """An error the user can fix; printed without a traceback."""


def embedders(settings: Settings):
    from ai_assets.resources import embedders_from_settings

    # Resolves dg.EnvVar("OPENAI_API_KEY") the way a run does; the key stays out of any output.
    return embedders_from_settings(settings).process_config_and_initialize()


def enabled_embedder(settings: Settings, name: str | None) -> str:
    name = name or settings.embedders[0]
    if name not in settings.embedders:
        raise CliError(f"embedder {name!r} is not enabled (AI_ASSETS_EMBEDDERS={','.join(settings.embedders)})")
    return name


def add_version_argument(parser) -> None:
    parser.add_argument(
        "--version", default="served", metavar="served|latest|N",
        help="table version to read: the served one (default), the latest written, or a version number",
    )


def open_searcher(settings: Settings, embedder_name: str | None, version: str = "served"):
    """A searcher over the embedder's table pinned to ``version`` (see ``add_version_argument``)."""
    from ai_assets.core.retrieval.search import Searcher
    from ai_assets.core.store.versions import NoServedVersion, parse_version_selector
    from ai_assets.resources import lancedb_from_settings

    selector = parse_version_selector(version)
    embedder = embedders(settings).get(enabled_embedder(settings, embedder_name))
    try:
        table = lancedb_from_settings(settings).table_at(embedder.spec, selector)
    except NoServedVersion as error:
        raise CliError(str(error)) from None
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
