"""Query latency of dense, full-text and hybrid search, with the query-encode / search split.

    python bench/latency.py [--corpus ../shared/benchmarks/msmarco] [--rows 10000 100000]
                            [--queries 50] [--repeats 3] [--workdir DIR]

Embeds a BEIR corpus (default `../shared/benchmarks/msmarco`) into a LanceDB table the way
`chunk_embeddings` does (`sync_source_embeddings`), then builds synthetic tables of the sizes
given from it (the corpus's rows repeated, their real vectors jittered), indexes them with
`build_indexes` (HNSW-SQ from AI_ASSETS_ANN_MIN_ROWS rows) and times every search mode through
`Searcher.search`, as `ai-assets search` runs it. For each mode it prints p50/p95 of the whole
query, of the query encoding alone and of the search alone (given the encoded vector), and the
p50 ratio of searches on the served version (a handle pinned to the `served` tag, which is what
`ai-assets search` and `ask` read) over searches on a handle at the latest version. Each
query is run `--repeats` times (the machine is shared and noisy); percentiles pool every run.
Every timed call follows an idle gap (`--gap-ms`), as a user's query does: the local model's
OpenMP threads spin for a while after an encode, which slows whatever runs right after it
(the search of the same query: part of "whole query", not of "search"). With an ANN index it
also prints the index's recall@10 as the `ann_recall` check measures it (perturbed stored
vectors) and on the benchmark queries themselves, and the recall@100 of hybrid's dense candidates.
With `--workdir`, the embedded corpus and the tables are kept there and reused by the next run.

`bench/ingest.py` calls `latency_table` on the table its build wrote.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import lancedb
import numpy as np
from lancedb.table import Table

from ai_assets.core.chunking.chunker import Chunk, ChunkerConfig, chunk_document
from ai_assets.core.documents.folders import LocalSourceFolders
from ai_assets.core.documents.loading import load_source
from ai_assets.core.embedding.base import MINILM, Embedder
from ai_assets.core.embedding.registry import create_embedder
from ai_assets.core.embedding.tokenizer import minilm_tokenizer
from ai_assets.core.evaluation.beir import import_beir
from ai_assets.core.evaluation.metrics import percentile
from ai_assets.core.retrieval.fusion import DEFAULT_FUSION
from ai_assets.core.retrieval.search import (
    HYBRID_CANDIDATES,
    HYBRID_REFINE_FACTOR,
    SEARCH_MODES,
    Searcher,
    ann_recall_at_10,
    dense_search,
    fts_search,
    has_ann_index,
    hybrid_search,
)
from ai_assets.core.store.indexes import build_indexes
from ai_assets.core.store.tables import fixed_list_to_numpy, open_journal, open_table, scan
from ai_assets.core.store.versions import checkout, move_served
from ai_assets.core.store.writes import chunk_rows, sync_source_embeddings
from ai_assets.settings import Settings

SOURCE = "bench"
_TEMPLATE_COLUMNS = [
    "chunk_id", "source", "doc_key", "doc_path", "doc_title", "doc_content_hash", "chunk_index",
    "char_start", "char_end", "token_count", "text", "chunker_config", "vector",
]
_WRITE_BATCH = 20_000


@dataclass(frozen=True)
class Percentiles:
    p50_ms: float
    p95_ms: float

    @classmethod
    def of(cls, latencies_ms: Sequence[float]) -> Percentiles:
        if not latencies_ms:
            return cls(0.0, 0.0)
        return cls(percentile(latencies_ms, 0.5), percentile(latencies_ms, 0.95))


@dataclass(frozen=True)
class ModeLatency:
    """One mode's latency: the whole query (what a user waits for), its encoding, its search."""

    total: Percentiles
    encode: Percentiles  # zero for fts, which encodes nothing
    search: Percentiles  # the search given the encoded vector


@dataclass(frozen=True)
class LatencyReport:
    rows: int
    queries: int
    repeats: int
    ann_recall_at_10: float | None  # as the ann_recall check measures it; None: no ANN index, exact search
    ann_recall_at_10_on_queries: float | None = None  # the same, on the benchmark queries
    hybrid_candidates_recall_at_100: float | None = None  # hybrid's dense candidates vs exact top 100
    hybrid_top10_overlap: float | None = None  # hybrid's top 10 vs the top 10 fused from exact candidates
    modes: dict[str, ModeLatency] = field(default_factory=dict)
    # p50 of whole queries on the served version's pinned handle over a handle at the latest version
    served_over_latest: dict[str, float] = field(default_factory=dict)

    def as_table(self) -> dict[str, tuple[float, float]]:
        """mode -> (p50 ms, p95 ms) of whole queries, plus "ann recall@10" -> (recall on the
        benchmark queries, 0.0); 1.0 when every search is exact."""
        recall = self.ann_recall_at_10_on_queries
        table = {"ann recall@10": (recall if recall is not None else 1.0, 0.0)}
        table.update({mode: (latency.total.p50_ms, latency.total.p95_ms) for mode, latency in self.modes.items()})
        return table


def template_rows(table: Table) -> tuple[list[Chunk], np.ndarray]:
    """The chunks and vectors of an embedder table, to be repeated into larger tables."""
    rows = scan(table, _TEMPLATE_COLUMNS)
    if rows.num_rows == 0:
        raise SystemExit(f"table {table.name} is empty: nothing to build a benchmark table from")
    return [Chunk(**row) for row in rows.drop(["vector"]).to_pylist()], fixed_list_to_numpy(rows.column("vector"))


def synthetic_table(
    db_path: Path, rows: int, chunks: Sequence[Chunk], vectors: np.ndarray, ann_min_rows: int | None
) -> Table:
    """A table of ``rows`` chunks, indexed as ``search_index`` indexes it; reused when already built."""
    db = lancedb.connect(str(db_path))
    table = open_table(db, MINILM)
    if table.count_rows() != rows:
        db.drop_table(table.name)
        table = open_table(db, MINILM)
        generator = np.random.default_rng(0)
        for start in range(0, rows, _WRITE_BATCH):
            count = min(_WRITE_BATCH, rows - start)
            positions = (start + np.arange(count)) % len(chunks)
            batch = [chunks[p].model_copy(update={"chunk_id": f"c{start + i}"}) for i, p in enumerate(positions)]
            # Copies of real vectors with a little noise: the neighbourhood structure of real embeddings.
            jittered = vectors[positions] + 0.02 * generator.standard_normal((count, MINILM.dimensions)).astype(np.float32)
            jittered /= np.linalg.norm(jittered, axis=1, keepdims=True)
            table.add(chunk_rows(batch, jittered, MINILM, run_id="bench"))
    build_indexes(table, ann_min_rows=ann_min_rows)
    return table


def _timed(call: Callable[[], object], gap_seconds: float) -> float:
    time.sleep(gap_seconds)
    started = time.perf_counter()
    call()
    return (time.perf_counter() - started) * 1000.0


def candidates_recall(table: Table, vectors: np.ndarray) -> float:
    """Recall@100 of hybrid search's dense candidate list against exact search."""
    recalls = []
    for vector in vectors:
        exact = {hit.chunk_id for hit in dense_search(table, vector, HYBRID_CANDIDATES, exact=True)}
        found = {hit.chunk_id for hit in dense_search(table, vector, HYBRID_CANDIDATES, refine_factor=HYBRID_REFINE_FACTOR)}
        recalls.append(len(exact & found) / max(1, len(exact)))
    return float(np.mean(recalls))


def hybrid_overlap(table: Table, queries: Sequence[str], vectors: np.ndarray, limit: int = 10) -> float:
    """Mean share of hybrid search's top ``limit`` that a fusion of exact dense candidates also ranks there."""
    overlaps = []
    for query, vector in zip(queries, vectors, strict=True):
        exact_dense = dense_search(table, vector, HYBRID_CANDIDATES, exact=True)
        exact = {chunk_id for chunk_id, _ in DEFAULT_FUSION.fuse(exact_dense, fts_search(table, query, HYBRID_CANDIDATES))[:limit]}
        found = {hit.chunk_id for hit in hybrid_search(table, vector, query, limit)}
        overlaps.append(len(exact & found) / max(1, len(exact)))
    return float(np.mean(overlaps))


def measure_latency(
    table: Table, embedder: Embedder, queries: Sequence[str], repeats: int = 3, limit: int = 10, gap_ms: float = 50.0
) -> LatencyReport:
    """Latency of every mode on ``table``: whole query, encoding alone, search alone."""
    searcher = Searcher(table, embedder)
    for mode in SEARCH_MODES:
        searcher.search(queries[0], mode=mode, limit=limit)  # load the model, open indexes, warm caches
    encoded = searcher.encode_queries(queries)
    vectors = dict(zip(queries, encoded, strict=True))
    gap = gap_ms / 1000.0
    samples: dict[str, dict[str, list[float]]] = {
        mode: {"total": [], "encode": [], "search": []} for mode in SEARCH_MODES
    }
    for _ in range(repeats):
        for query in queries:
            # Modes interleaved per query, so a noisy neighbour slows all of them alike.
            for mode in SEARCH_MODES:
                timings = samples[mode]
                timings["total"].append(_timed(lambda: searcher.search(query, mode=mode, limit=limit), gap))
                timings["search"].append(
                    _timed(lambda: searcher.search(query, mode=mode, limit=limit, query_vector=vectors[query]), gap)
                )
                if mode != "fts":
                    timings["encode"].append(_timed(lambda: searcher.encode_query(query), gap))
    ann = has_ann_index(table)
    return LatencyReport(
        rows=table.count_rows(),
        queries=len(queries),
        repeats=repeats,
        ann_recall_at_10=ann_recall_at_10(table),
        ann_recall_at_10_on_queries=ann_recall_at_10(table, queries=encoded) if ann else None,
        hybrid_candidates_recall_at_100=candidates_recall(table, encoded) if ann else None,
        hybrid_top10_overlap=hybrid_overlap(table, queries, encoded, limit) if ann else None,
        modes={
            mode: ModeLatency(
                total=Percentiles.of(timings["total"]),
                encode=Percentiles.of(timings["encode"]),
                search=Percentiles.of(timings["search"]),
            )
            for mode, timings in samples.items()
        },
    )


def served_over_latest(
    table: Table, embedder: Embedder, queries: Sequence[str], repeats: int = 3, limit: int = 10, gap_ms: float = 50.0
) -> dict[str, float]:
    """p50 of whole queries on the served version (a handle pinned to the ``served`` tag, as `ai-assets
    search` opens it) over p50 on a handle at the latest version, per mode, interleaved query by query."""
    move_served(table, table.version)
    pinned = open_table(table._conn, MINILM, create=False)  # noqa: SLF001 - the bench table's own connection
    checkout(pinned, "served")
    searchers = {"served": Searcher(pinned, embedder), "latest": Searcher(table, embedder)}
    samples: dict[tuple[str, str], list[float]] = {(name, mode): [] for name in searchers for mode in SEARCH_MODES}
    for searcher in searchers.values():
        for mode in SEARCH_MODES:
            searcher.search(queries[0], mode=mode, limit=limit)  # warm caches of both handles
    for _ in range(repeats):
        for number, query in enumerate(queries):
            for mode in SEARCH_MODES:
                # Each handle goes first for half the queries: no order effect between the two.
                for name, searcher in sorted(searchers.items(), reverse=number % 2 == 1):
                    samples[(name, mode)].append(
                        _timed(lambda: searcher.search(query, mode=mode, limit=limit), gap_ms / 1000.0)
                    )
    return {
        mode: Percentiles.of(samples[("served", mode)]).p50_ms / Percentiles.of(samples[("latest", mode)]).p50_ms
        for mode in SEARCH_MODES
    }


def latency_report(
    settings: Settings, rows: int, queries: Sequence[str], workdir: Path, repeats: int = 3, gap_ms: float = 50.0
) -> LatencyReport:
    """Latency on a table of ``rows`` chunks built from the minilm table of ``settings``."""
    source_table = open_table(lancedb.connect(settings.resolved_lancedb_uri), MINILM, create=False)
    chunks, vectors = template_rows(source_table)
    table = synthetic_table(workdir / f"latency{rows}", rows, chunks, vectors, settings.ann_min_rows)
    embedder = create_embedder("minilm", precision=settings.local_precision)
    report = measure_latency(table, embedder, queries, repeats=repeats, gap_ms=gap_ms)
    report.served_over_latest.update(served_over_latest(table, embedder, queries, repeats=repeats, gap_ms=gap_ms))
    return report


def latency_table(
    settings: Settings, rows: int, queries: list[str], workdir: Path, repeats: int = 3
) -> dict[str, tuple[float, float]]:
    """mode -> (p50 ms, p95 ms) of whole queries (encoding included), plus "ann recall@10"."""
    return latency_report(settings, rows, queries, workdir, repeats).as_table()


def embed_corpus(corpus: Path, data_dir: Path) -> Settings:
    """The corpus imported as source ``bench`` and embedded into its minilm table (once per data dir)."""
    settings = Settings(data_dir=data_dir)
    db = lancedb.connect(settings.resolved_lancedb_uri)
    if (settings.sources_dir / SOURCE).exists() and open_table(db, MINILM).count_rows() > 0:
        return settings
    import_beir(corpus, data_dir, SOURCE, overwrite=True)
    loaded = load_source(LocalSourceFolders(settings.sources_dir), SOURCE, settings.max_document_bytes)
    config = ChunkerConfig(
        tokenizer=MINILM.model, max_tokens=settings.chunk_max_tokens, overlap_tokens=settings.chunk_overlap_tokens
    )
    tokenizer = minilm_tokenizer()
    chunks = [chunk for doc in loaded.documents for chunk in chunk_document(doc, tokenizer, config)]
    embedder = create_embedder("minilm", batch_size=settings.embed_batch_size, precision=settings.local_precision)
    sync_source_embeddings(open_table(db, MINILM), SOURCE, chunks, embedder, run_id="bench", journal=open_journal(db, MINILM))
    return settings


def print_report(report: LatencyReport) -> None:
    if report.ann_recall_at_10 is None:
        index = "exact search"
    else:
        index = (
            f"HNSW-SQ; ANN recall@10 {report.ann_recall_at_10:.3f} on perturbed stored vectors (the ann_recall check), "
            f"{report.ann_recall_at_10_on_queries:.3f} on these queries; hybrid's dense candidates recall@100 "
            f"{report.hybrid_candidates_recall_at_100:.3f}, its top 10 overlap with a fusion of exact candidates "
            f"{report.hybrid_top10_overlap:.3f}"
        )
    print(f"\n{report.rows:,} chunks ({index}); {report.queries} queries x {report.repeats} runs")
    print("| mode | whole query p50 / p95 ms | query encode p50 / p95 ms | search p50 / p95 ms |")
    print("|---|---:|---:|---:|")
    for mode, latency in report.modes.items():
        cells = [f"{p.p50_ms:.1f} / {p.p95_ms:.1f}" for p in (latency.total, latency.encode, latency.search)]
        if mode == "fts":
            cells[1] = "—"
        print(f"| {mode} | {' | '.join(cells)} |")
    if report.served_over_latest:
        ratios = ", ".join(f"{mode} {ratio:.2f}" for mode, ratio in report.served_over_latest.items())
        print(f"served version (pinned handle) / latest handle, p50 of whole queries: {ratios}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=Path(__file__).resolve().parents[2] / "shared/benchmarks/msmarco")
    parser.add_argument("--rows", type=int, nargs="*", default=[10_000, 100_000])
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--gap-ms", type=float, default=50.0, help="idle time before each timed call")
    parser.add_argument("--workdir", type=Path, help="keep the embedded corpus and tables here, reuse them next time")
    args = parser.parse_args()

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="ai_assets_latency_"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        settings = embed_corpus(args.corpus, workdir / "data")
        lines = (args.corpus / "queries.jsonl").read_text(encoding="utf-8").splitlines()
        queries = [json.loads(line)["text"] for line in lines if line.strip()][: args.queries]
        embedder = create_embedder("minilm", precision=settings.local_precision)
        print(
            f"corpus {args.corpus} | {len(queries)} queries | precision {embedder.precision} | "
            f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', '(unset)')} | {os.cpu_count()} CPUs | "
            f"load average {os.getloadavg()[0]:.1f}"
        )
        for rows in args.rows:
            print_report(latency_report(settings, rows, queries, workdir, args.repeats, args.gap_ms))
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
