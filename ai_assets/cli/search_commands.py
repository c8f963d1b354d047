"""`ai-assets search` and `ai-assets trace`: query the index, and say where each hit came from."""

from __future__ import annotations

import argparse
import json
import sys

from ai_assets.cli.common import (
    CliError, add_version_argument, add_where_argument, open_searcher, query_text, serving_note, where_condition,
)
from ai_assets.cli.feedback_commands import CLIENT, judge_hint, record_answered
from ai_assets.cli.plain_text import plain
from ai_assets.core.documents.names import shown_name
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
    add_where_argument(search)
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
    from ai_assets.core.feedback.records import answered_search

    if args.k < 1:
        raise CliError("--k must be at least 1")
    searcher = open_searcher(settings, args.embedder, args.version, args.source)
    hits = searcher.search(
        args.query, mode=args.mode, limit=args.k, sources=args.source, where=where_condition(args.where)
    )
    note = serving_note(settings, searcher)
    if note:
        print(note, file=sys.stderr)
    answer_id = record_answered(settings, answered_search(
        args.query, hits, knowledge_base=args.kb, embedder=searcher.embedder.spec.name, table=searcher.table.name,
        index_version=searcher.table.version, mode=args.mode, client=CLIENT,
    ))
    if args.json:
        # Each hit carries the id (the output stays a list); a judgement names a hit by its rank.
        print(json.dumps([{**hit.model_dump(), "answer_id": answer_id} for hit in hits], indent=2))
        return 0
    if not hits:
        print("no results")
    else:
        print(f"score: {SCORE_MEANING[args.mode]}; in brackets, the gap to the first hit")
    for rank, hit in enumerate(hits, start=1):
        snippet = " ".join(plain(hit.text).split())[:200]
        gap = f" ({hit.score - hits[0].score:+.3f})" if rank > 1 else ""
        print(f"{rank:>2}. {hit.score:.3f}{gap}  {shown_name(hit.citation)}")
        print(f"    {shown_name(hit.doc_key)}, chunk {hit.chunk_index} ({hit.chunk_id[:12]}): {shown_name(snippet)}")
    hint = judge_hint(answer_id)
    if hint:
        print(f"\n{hint}")
    return 0


def trace_command(args: argparse.Namespace, settings: Settings) -> int:
    from ai_assets.core.retrieval.search import fetch_chunk
    from ai_assets.reading import trace as lineage_of

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
    traces = lineage_of(
        settings, searcher.table, hits, scored=not args.chunk,
        stale=stale_documents(settings, {hit.source for hit in hits}),
    )
    if args.json:
        print(json.dumps([trace.model_dump() for trace in traces], indent=2))
        return 0
    for trace in traces:
        score = f"{trace.score:.4f}" if trace.score is not None else "-"
        print(f"{trace.rank:>2}. score {score}  chunk {trace.chunk_id}")
        print(f"    document  {shown_name(trace.doc_key)}  ({shown_name(trace.file)})")
        print(f"    cited as  {shown_name(trace.citation)}")
        print(
            f"    version   indexed {trace.indexed_content_hash}, now {trace.current_content_hash or '-'}"
            f"  -> {trace.document_status}"
        )
        if trace.document_status == "stale":
            print(f"    stale     since {trace.stale_since}: {shown_name(trace.stale_reason or '')}; last good version kept")
        print(f"    written   by run {trace.run_id}  {trace.run_url}")
        print(f"    index     {trace.table} version {trace.table_version}")
        print(f"    text      {' '.join(trace.text.split())[:160]}")
    return 0


def stale_documents(settings: Settings, sources: set[str]) -> dict:
    """The stale documents (key to ``StaleDocument``) the last ingest of each source recorded."""
    from ai_assets.assets.documents import STALE_DOCUMENTS
    from ai_assets.cli.instance import dagster_instance
    from ai_assets.core.documents.model import StaleDocument
    from ai_assets.history import latest_metadata

    if not sources:
        return {}
    instance = dagster_instance(settings, create=False)
    found = {}
    for source in sources:
        metadata = latest_metadata(instance, settings.names.key("source_documents"), source) or {}
        for entry in metadata.get(STALE_DOCUMENTS) or []:
            found[entry["doc_key"]] = StaleDocument(**entry)
    return found
