"""`ai-assets search` and `ai-assets trace`: query the index, and say where each hit came from."""

from __future__ import annotations

import argparse
import json
import sys

from ai_assets.cli.common import CliError, add_version_argument, open_searcher, query_text, serving_note
from ai_assets.cli.plain_text import plain
from ai_assets.core.retrieval.fusion import DEFAULT_FUSION
from ai_assets.core.retrieval.modes import SEARCH_MODES
from ai_assets.settings import Settings


# What a hit's score is, by search mode: only the order within one query is comparable.
SCORE_MEANING = {
    "dense": "cosine similarity of the question and the passage (1 = the same direction)",
    "fts": "BM25 weight of the question's words in the passage (unbounded)",
    "hybrid": (
        f"{DEFAULT_FUSION.dense_weight:g} x cosine + {1 - DEFAULT_FUSION.dense_weight:g} x BM25, each scaled so "
        "the best candidate's is 1"
        if DEFAULT_FUSION.method == "convex"
        else "reciprocal-rank fusion of the cosine and BM25 rankings"
    ),
}


def register(commands: argparse._SubParsersAction) -> None:
    search = commands.add_parser("search", help="search the index")
    search.add_argument("query", type=query_text)
    search.add_argument("--mode", choices=SEARCH_MODES, default="hybrid")
    search.add_argument("--k", type=int, default=10, help="number of chunks (default 10)")
    search.add_argument("--embedder", help="embedder name (default: the first enabled)")
    search.add_argument("--source", action="append", help="only chunks of this source (repeatable)")
    search.add_argument("--json", action="store_true", help="print JSON")
    add_version_argument(search)
    search.set_defaults(handler=search_command)

    trace = commands.add_parser("trace", help="where each retrieved chunk came from")
    trace.add_argument("query", nargs="?", type=query_text, help="question to retrieve chunks for")
    trace.add_argument("--chunk", help="trace one chunk by id instead of a query")
    trace.add_argument("--mode", choices=SEARCH_MODES, default="hybrid")
    trace.add_argument("--k", type=int, default=5, help="number of chunks (default 5)")
    trace.add_argument("--embedder", help="embedder name (default: the first enabled)")
    trace.add_argument("--source", action="append", help="only chunks of this source (repeatable)")
    trace.add_argument("--json", action="store_true", help="print JSON")
    add_version_argument(trace)
    trace.set_defaults(handler=trace_command)


def search_command(args: argparse.Namespace, settings: Settings) -> int:
    if args.k < 1:
        raise CliError("--k must be at least 1")
    searcher = open_searcher(settings, args.embedder, args.version, args.source)
    hits = searcher.search(args.query, mode=args.mode, limit=args.k, sources=args.source)
    note = serving_note(settings, searcher)
    if note:
        print(note, file=sys.stderr)
    if args.json:
        print(json.dumps([hit.model_dump() for hit in hits], indent=2))
        return 0
    if not hits:
        print("no results")
    else:
        print(f"score: {SCORE_MEANING[args.mode]}; in brackets, the gap to the first hit")
    for rank, hit in enumerate(hits, start=1):
        snippet = " ".join(plain(hit.text).split())[:200]
        gap = f" ({hit.score - hits[0].score:+.3f})" if rank > 1 else ""
        print(f"{rank:>2}. {hit.score:.3f}{gap}  {hit.citation}")
        print(f"    {hit.doc_key}, chunk {hit.chunk_index} ({hit.chunk_id[:12]}): {snippet}")
    return 0


def trace_command(args: argparse.Namespace, settings: Settings) -> int:
    from ai_assets.core.documents.loading import ParseSettings
    from ai_assets.core.documents.object_folders import source_folders_at
    from ai_assets.core.lineage import trace_hits
    from ai_assets.core.retrieval.search import fetch_chunk

    if (args.query is None) == (args.chunk is None):
        raise CliError("give either a QUERY or --chunk CHUNK_ID")
    searcher = open_searcher(settings, args.embedder, args.version, args.source)
    if args.chunk:
        hit = fetch_chunk(searcher.table, args.chunk)
        if hit is None:
            raise CliError(f"no chunk {args.chunk!r} in table {searcher.table.name}")
        hits = [hit]
    else:
        hits = searcher.search(args.query, mode=args.mode, limit=args.k, sources=args.source)
    traces = trace_hits(
        hits,
        source_folders_at(settings.sources_location),
        settings.max_document_bytes,
        table=searcher.table.name,
        table_version=searcher.table.version,
        ui_url=settings.dagster_ui_url,
        scored=not args.chunk,
        parsing=ParseSettings(
            workers=1, timeout_seconds=settings.parse_timeout_seconds, max_file_bytes=settings.max_file_bytes
        ),
    )
    if args.json:
        print(json.dumps([trace.model_dump() for trace in traces], indent=2))
        return 0
    for trace in traces:
        score = f"{trace.score:.4f}" if trace.score is not None else "-"
        print(f"{trace.rank:>2}. score {score}  chunk {trace.chunk_id}")
        print(f"    document  {trace.doc_key}  ({trace.file})")
        print(f"    cited as  {trace.citation}")
        print(
            f"    version   indexed {trace.indexed_content_hash}, now {trace.current_content_hash or '-'}"
            f"  -> {trace.document_status}"
        )
        print(f"    written   by run {trace.run_id}  {trace.run_url}")
        print(f"    index     {trace.table} version {trace.table_version}")
        print(f"    text      {' '.join(trace.text.split())[:160]}")
    return 0
