"""Ingestion and query benchmark: ratios measured in one run on the same texts.

    python bench/ingest.py [--corpus ../shared/benchmarks/msmarco] [--edit-fraction 0.01]
                           [--latency-rows 10000 100000] [--queries 50]

Prints, for the corpus given (a BEIR folder), measured on this machine in this run:
- pipeline ingestion rate (chunks/s of the embedding runs of `ai-assets build`) against a bare
  `embed()` of the same chunk texts with the same backend;
- a warm re-run of the unchanged corpus against the cold build (and the texts it embedded);
- a re-run after editing a fraction of the documents against the cold build, and whether it
  re-embedded exactly the changed chunks;
- search latency p50/p95 (query encoding included) for dense, fts and hybrid on synthetic
  tables of the given sizes (the corpus's rows repeated, their vectors jittered);
- peak RSS of this process.
Machines here are shared and noisy: read the ratios, not the absolute seconds.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import shutil
import tempfile
import time
from pathlib import Path

import dagster as dg
import lancedb
import numpy as np

from ai_assets.build import run_build
from ai_assets.core.beir import import_beir
from ai_assets.core.chunking import ChunkerConfig, chunk_document
from ai_assets.core.documents import load_source
from ai_assets.core.embedders import MINILM, create_embedder, minilm_tokenizer
from ai_assets.core.metrics import percentile
from ai_assets.core.retrieval import SEARCH_MODES, Searcher, ann_recall_at_10
from ai_assets.core.store import build_indexes, chunk_rows, fixed_list_to_numpy, open_table, scan
from ai_assets.definitions import build_definitions
from ai_assets.history import latest_metadata
from ai_assets.settings import Settings

SOURCE = "bench"


def timed_build(settings: Settings, instance: dg.DagsterInstance) -> tuple[float, float, int]:
    """(whole build seconds, seconds of the embedding runs, texts embedded)."""
    started = time.perf_counter()
    report = run_build(build_definitions(settings), instance, settings.embedders, echo=lambda _: None)
    total = time.perf_counter() - started
    if not report.ok:
        raise SystemExit(f"build failed: {report.failures}")
    embed_seconds = sum(seconds for job, _, _, seconds in report.runs if job == "embed_source_job")
    embedded = int(latest_metadata(instance, "chunk_embeddings", f"minilm|{SOURCE}")["embedded"])  # type: ignore[index]
    return total, embed_seconds, embedded


def edit_documents(corpus: Path, fraction: float, seed: int = 7) -> int:
    lines = corpus.read_text(encoding="utf-8").split("\n")
    records = [index for index, line in enumerate(lines) if line.strip()]
    chosen = random.Random(seed).sample(records, max(1, int(len(records) * fraction)))
    for index in chosen:
        record = json.loads(lines[index])
        record["text"] = record.get("text", "") + " (edited for the benchmark)"
        lines[index] = json.dumps(record)
    corpus.write_text("\n".join(lines), encoding="utf-8")
    return len(chosen)


def chunk_texts(settings: Settings) -> list[str]:
    loaded = load_source(settings.sources_dir / SOURCE, SOURCE, settings.max_document_bytes)
    config = ChunkerConfig(
        tokenizer=MINILM.model, max_tokens=settings.chunk_max_tokens, overlap_tokens=settings.chunk_overlap_tokens
    )
    tokenizer = minilm_tokenizer()
    return [chunk.text for doc in loaded.documents for chunk in chunk_document(doc, tokenizer, config)]


def latency_table(settings: Settings, rows: int, queries: list[str], workdir: Path) -> dict[str, tuple[float, float]]:
    """Search latency on a table of `rows` chunks: the corpus's real rows repeated, vectors jittered."""
    embedder = create_embedder("minilm", precision=settings.local_precision)
    source_table = open_table(lancedb.connect(settings.resolved_lancedb_uri), MINILM, create=False)
    template = scan(source_table, ["chunk_id", "source", "doc_key", "doc_path", "doc_title", "doc_content_hash",
                                   "chunk_index", "char_start", "char_end", "token_count", "text", "chunker_config", "vector"])
    from ai_assets.core.chunking import Chunk

    base_vectors = fixed_list_to_numpy(template.column("vector"))
    base = [Chunk(**row) for row in template.drop(["vector"]).to_pylist()]
    table = open_table(lancedb.connect(str(workdir / f"latency{rows}")), MINILM)
    generator = np.random.default_rng(0)
    for start in range(0, rows, 20_000):
        count = min(20_000, rows - start)
        chunks = [
            base[(start + offset) % len(base)].model_copy(update={"chunk_id": f"c{start + offset}"})
            for offset in range(count)
        ]
        # Copies of real vectors with a little noise: the neighbourhood structure of real embeddings.
        vectors = base_vectors[(start + np.arange(count)) % len(base)]
        vectors = vectors + 0.02 * generator.standard_normal((count, MINILM.dimensions)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        table.add(chunk_rows(chunks, vectors, MINILM, run_id="bench"))
    build_indexes(table, ann_min_rows=settings.ann_min_rows)
    searcher = Searcher(table, embedder)
    searcher.search(queries[0], mode="hybrid", limit=10)  # warm caches
    results = {"ann recall@10": (ann_recall_at_10(table) or 1.0, 0.0)}
    for mode in SEARCH_MODES:
        latencies = []
        for query in queries:
            started = time.perf_counter()
            searcher.search(query, mode=mode, limit=10)
            latencies.append((time.perf_counter() - started) * 1000)
        results[mode] = (percentile(latencies, 0.5), percentile(latencies, 0.95))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=Path(__file__).resolve().parents[2] / "shared/benchmarks/msmarco")
    parser.add_argument("--edit-fraction", type=float, default=0.01)
    parser.add_argument("--latency-rows", type=int, nargs="*", default=[10_000, 100_000])
    parser.add_argument("--queries", type=int, default=50)
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="ai_assets_bench_"))
    try:
        data_dir = workdir / "data"
        import_beir(args.corpus, data_dir, SOURCE)
        shutil.rmtree(data_dir / "eval")  # ingestion only: evaluations are timed elsewhere
        settings = Settings(data_dir=data_dir)
        texts = chunk_texts(settings)
        embedder = create_embedder("minilm", precision=settings.local_precision)
        embedder.embed(texts[:32])  # load the model outside the timing
        started = time.perf_counter()
        embedder.embed(texts)
        bare_rate = len(texts) / (time.perf_counter() - started)

        (workdir / "home").mkdir()
        with dg.instance_for_test(temp_dir=str(workdir / "home")) as instance:
            cold, cold_embed, cold_embedded = timed_build(settings, instance)
            warm, _, warm_embedded = timed_build(settings, instance)
            before = set(texts)
            edited_docs = edit_documents(data_dir / "sources" / SOURCE / "corpus.jsonl", args.edit_fraction)
            changed_texts = len(set(chunk_texts(settings)) - before)
            edit, _, edit_embedded = timed_build(settings, instance)

        pipeline_rate = cold_embedded / cold_embed
        queries = [json.loads(line)["text"] for line in (args.corpus / "queries.jsonl").read_text().splitlines()[: args.queries]]
        print(f"corpus {args.corpus} | {len(texts)} chunks | precision {getattr(embedder, 'precision', '?')}")
        print("| measure | value | ratio |")
        print("|---|---:|---:|")
        print(f"| bare embed() | {bare_rate:.1f} chunks/s | 1.00 |")
        print(f"| pipeline embedding runs (cold) | {pipeline_rate:.1f} chunks/s | {pipeline_rate / bare_rate:.2f} × bare |")
        print(f"| cold build | {cold:.1f} s, {cold_embedded} texts embedded | 1.00 |")
        print(f"| warm re-run, unchanged | {warm:.1f} s, {warm_embedded} texts embedded | {warm / cold:.3f} × cold |")
        print(
            f"| re-run after editing {edited_docs} docs ({args.edit_fraction:.0%}) | {edit:.1f} s, {edit_embedded} "
            f"embedded, {changed_texts} changed chunks | {edit / cold:.3f} × cold |"
        )
        for rows in args.latency_rows:
            for mode, (p50, p95) in latency_table(settings, rows, queries, workdir).items():
                if mode == "ann recall@10":
                    print(f"| ANN recall@10 vs exact at {rows:,} chunks (1.0 = exact search) | {p50:.3f} | |")
                else:
                    print(f"| {mode} search at {rows:,} chunks (p50 / p95) | {p50:.1f} / {p95:.1f} ms | |")
        print(f"| peak RSS | {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB | |")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
