"""`ai-assets`: build, search, import BEIR datasets, and report evaluations from the terminal.

Honours ``AI_ASSETS_DATA_DIR`` (default ``./data``) and ``DAGSTER_HOME`` (default
``<data dir>/dagster_home``), so runs started here are the ones the Dagster UI shows.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ai_assets.core.openai_errors import ServiceUnavailable
from ai_assets.core.retrieval import SEARCH_MODES
from ai_assets.settings import Settings, SettingsError, load_settings

INSTANCE_YAML = """\
# Written by `ai-assets build`; see the README for a Postgres-backed production instance.
telemetry:
  enabled: false
# Freshness policies (search_index, evaluations) are evaluated by the daemon only when enabled.
freshness:
  enabled: true
# The model_calls pool (embedding and evaluation steps) runs one step at a time across all
# runs: the local model already uses every core. Raise it for a remote API.
concurrency:
  pools:
    default_limit: 1
"""


class CliError(Exception):
    """An error the user can fix; printed without a traceback."""


def main(argv: Sequence[str] | None = None) -> int:
    # Dagster flags beta/preview APIs at import; that is for developers, not for this terminal.
    warnings.filterwarnings("ignore", module="dagster")
    warnings.filterwarnings("ignore", message=".*is currently in (beta|preview).*")
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
        return int(args.handler(args, settings) or 0)
    except (CliError, SettingsError, ServiceUnavailable, FileExistsError, FileNotFoundError, ValueError) as error:
        print(f"ai-assets: error: {error}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ai-assets", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    build = commands.add_parser(
        "build", help="materialize what is missing or stale, for every source and embedder"
    )
    build.add_argument("--source", action="append", help="only this source (repeatable)")
    build.add_argument(
        "--force", action="store_true", help="run every step, even those whose assets are up to date"
    )
    build.set_defaults(handler=_build)

    search = commands.add_parser("search", help="search the index")
    search.add_argument("query")
    search.add_argument("--mode", choices=SEARCH_MODES, default="hybrid")
    search.add_argument("--k", type=int, default=10, help="number of chunks (default 10)")
    search.add_argument("--embedder", help="embedder name (default: the first enabled)")
    search.add_argument("--source", action="append", help="only chunks of this source (repeatable)")
    search.add_argument("--json", action="store_true", help="print JSON")
    search.set_defaults(handler=_search)

    trace = commands.add_parser("trace", help="where each retrieved chunk came from")
    trace.add_argument("query", nargs="?", help="question to retrieve chunks for")
    trace.add_argument("--chunk", help="trace one chunk by id instead of a query")
    trace.add_argument("--mode", choices=SEARCH_MODES, default="hybrid")
    trace.add_argument("--k", type=int, default=5, help="number of chunks (default 5)")
    trace.add_argument("--embedder", help="embedder name (default: the first enabled)")
    trace.add_argument("--source", action="append", help="only chunks of this source (repeatable)")
    trace.add_argument("--json", action="store_true", help="print JSON")
    trace.set_defaults(handler=_trace)

    rollback = commands.add_parser("rollback", help="restore an embedder's table to an earlier version")
    rollback.add_argument("--embedder", help="embedder name (default: the first enabled)")
    target = rollback.add_mutually_exclusive_group(required=True)
    target.add_argument("--to", type=int, metavar="VERSION", help="table version to restore")
    target.add_argument("--list", action="store_true", help="list the table's versions")
    rollback.set_defaults(handler=_rollback)

    beir = commands.add_parser("import-beir", help="turn a BEIR dataset folder into a source and an eval set")
    beir.add_argument("directory", type=Path)
    beir.add_argument("--name", required=True, help="source and eval set name")
    beir.add_argument("--overwrite", action="store_true", help="replace an existing source/eval set")
    beir.set_defaults(handler=_import_beir)

    report = commands.add_parser("report", help="print the latest retrieval evaluation")
    report.add_argument("--json", action="store_true", help="print JSON")
    report.set_defaults(handler=_report)
    return parser


def dagster_instance(settings: Settings, create: bool):
    """The persistent Dagster instance; DAGSTER_HOME defaults to <data dir>/dagster_home."""
    import dagster as dg

    home = Path(os.environ.get("DAGSTER_HOME") or settings.data_dir / "dagster_home").resolve()
    if not home.is_dir():
        if not create:
            raise CliError(f"no Dagster instance at {home}: run `ai-assets build` first (or set DAGSTER_HOME)")
        home.mkdir(parents=True)
    config = home / "dagster.yaml"
    if create and not config.exists():
        config.write_text(INSTANCE_YAML, encoding="utf-8")
    os.environ["DAGSTER_HOME"] = str(home)
    return dg.DagsterInstance.get()


def _build(args: argparse.Namespace, settings: Settings) -> int:
    from ai_assets.build import run_build
    from ai_assets.definitions import build_definitions
    from ai_assets.history import evaluation_leaderboard

    instance = dagster_instance(settings, create=True)
    print(f"data: {settings.data_dir.resolve()}  lancedb: {settings.resolved_lancedb_uri}")
    print(f"dagster instance: {os.environ['DAGSTER_HOME']}  embedders: {', '.join(settings.embedders)}")
    report = run_build(build_definitions(settings), instance, settings.embedders, args.source, force=args.force)
    if not report.ok:
        print(f"build failed: {len(report.failures)} of {len(report.runs)} runs failed:", file=sys.stderr)
        for failure in report.failures:
            print(f"  - {failure}", file=sys.stderr)
        return 1
    print(f"build complete: {len(report.runs)} runs succeeded, {len(report.up_to_date)} steps up to date")
    _print_leaderboard(evaluation_leaderboard(instance, settings.embedders))
    return 0


def _embedders(settings: Settings):
    from ai_assets.resources import embedders_from_settings

    # Resolves dg.EnvVar("OPENAI_API_KEY") the way a run does; the key stays out of any output.
    return embedders_from_settings(settings).process_config_and_initialize()


def _searcher(settings: Settings, embedder_name: str | None):
    from ai_assets.core.retrieval import Searcher
    from ai_assets.resources import lancedb_from_settings

    embedder = _embedders(settings).get(_enabled_embedder(settings, embedder_name))
    table = lancedb_from_settings(settings).table(embedder.spec, create=False)
    return Searcher(table, embedder)


def _enabled_embedder(settings: Settings, name: str | None) -> str:
    name = name or settings.embedders[0]
    if name not in settings.embedders:
        raise CliError(f"embedder {name!r} is not enabled (AI_ASSETS_EMBEDDERS={','.join(settings.embedders)})")
    return name


def _search(args: argparse.Namespace, settings: Settings) -> int:
    if args.k < 1:
        raise CliError("--k must be at least 1")
    hits = _searcher(settings, args.embedder).search(args.query, mode=args.mode, limit=args.k, sources=args.source)
    if args.json:
        print(json.dumps([hit.model_dump() for hit in hits], indent=2))
        return 0
    if not hits:
        print("no results")
    for rank, hit in enumerate(hits, start=1):
        snippet = " ".join(hit.text.split())[:200]
        print(f"{rank:>2}. {hit.score:.4f}  {hit.doc_key}  (chunk {hit.chunk_index}, {hit.chunk_id[:12]})")
        print(f"    {hit.doc_title}: {snippet}")
    return 0


def _trace(args: argparse.Namespace, settings: Settings) -> int:
    from ai_assets.core.lineage import trace_hits
    from ai_assets.core.retrieval import fetch_chunk

    if bool(args.query) == bool(args.chunk):
        raise CliError("give either a QUERY or --chunk CHUNK_ID")
    searcher = _searcher(settings, args.embedder)
    if args.chunk:
        hit = fetch_chunk(searcher.table, args.chunk)
        if hit is None:
            raise CliError(f"no chunk {args.chunk!r} in table {searcher.table.name}")
        hits = [hit]
    else:
        hits = searcher.search(args.query, mode=args.mode, limit=args.k, sources=args.source)
    traces = trace_hits(
        hits,
        settings.sources_dir,
        settings.max_document_bytes,
        table=searcher.table.name,
        table_version=searcher.table.version,
        ui_url=settings.dagster_ui_url,
        scored=not args.chunk,
    )
    if args.json:
        print(json.dumps([trace.model_dump() for trace in traces], indent=2))
        return 0
    for trace in traces:
        score = f"{trace.score:.4f}" if trace.score is not None else "-"
        print(f"{trace.rank:>2}. score {score}  chunk {trace.chunk_id}")
        print(f"    document  {trace.doc_key}  ({trace.file})")
        print(
            f"    version   indexed {trace.indexed_content_hash}, now {trace.current_content_hash or '-'}"
            f"  -> {trace.document_status}"
        )
        print(f"    written   by run {trace.run_id}  {trace.run_url}")
        print(f"    index     {trace.table} version {trace.table_version}")
        print(f"    text      {' '.join(trace.text.split())[:160]}")
    return 0


def _rollback(args: argparse.Namespace, settings: Settings) -> int:
    from ai_assets.resources import lancedb_from_settings

    spec = _embedders(settings).spec(_enabled_embedder(settings, args.embedder))
    table = lancedb_from_settings(settings).table(spec, create=False)
    versions = {entry["version"]: entry for entry in table.list_versions()}
    if args.list:
        for version, entry in sorted(versions.items()):
            current = "  (current)" if version == table.version else ""
            print(f"{version:>5}  {entry['timestamp']:%Y-%m-%d %H:%M:%S}  rows {entry['metadata'].get('total_rows', '?')}{current}")
        return 0
    if args.to not in versions:
        raise CliError(f"table {table.name} has no version {args.to}; versions: {min(versions)}..{max(versions)}")
    before = table.version
    table.restore(args.to)
    print(
        f"restored {table.name} to the contents of version {args.to} (was version {before}; "
        f"now version {table.version} with {table.count_rows()} rows). "
        "The next `ai-assets build` brings it forward to the current sources again."
    )
    return 0


def _import_beir(args: argparse.Namespace, settings: Settings) -> int:
    from ai_assets.core.beir import import_beir

    result = import_beir(args.directory, settings.data_dir, args.name, overwrite=args.overwrite)
    print(
        f"imported {result.documents} documents into {result.source_dir} and "
        f"{result.queries} judged queries ({result.judgments} judgments) into {result.eval_dir}; "
        "run `ai-assets build` to index and evaluate it"
    )
    return 0


def _report(args: argparse.Namespace, settings: Settings) -> int:
    from ai_assets.history import evaluation_leaderboard

    rows = evaluation_leaderboard(dagster_instance(settings, create=False), settings.embedders)
    if args.json:
        print(json.dumps([row.model_dump(by_alias=True) for row in rows], indent=2))
    elif rows:
        _print_leaderboard(rows)
    else:
        print("no retrieval evaluation yet: run `ai-assets build`")
    return 0


def _print_leaderboard(rows: Sequence[Any]) -> None:
    from ai_assets.core.leaderboard import leaderboard_markdown

    print(leaderboard_markdown(rows), end="")


if __name__ == "__main__":
    raise SystemExit(main())
