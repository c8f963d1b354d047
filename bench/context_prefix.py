"""Does embedding a context prefix (document title and section path) with each chunk help retrieval?

    python bench/context_prefix.py [--sets docs_qa msmarco dbpedia] [--work DIR]

For each eval set (docs_qa over `data/sources`; msmarco and dbpedia from ../shared/benchmarks,
imported as `ai-assets import-beir` does), the source is loaded and chunked as the pipeline does,
without and then with ``context_prefix``, embedded into one LanceDB table (the second pass embeds
only the texts the prefix changed: the cache key is the exact text sent to the model), indexed,
and scored: nDCG@10, recall@100 and MRR@10 per mode (dense, full-text, hybrid). The stored chunk
text is the same both ways, so full-text differs only where the chunk boundaries moved (the
prefix shortens each window by its tokens). The prefix becomes the default only if it loses on no set.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import lancedb

from ai_assets.core.chunking.chunker import ChunkerConfig, chunk_documents
from ai_assets.core.documents.folders import LocalSourceFolders
from ai_assets.core.documents.loading import load_source
from ai_assets.core.embedding.registry import create_embedder
from ai_assets.core.embedding.tokenizer import minilm_tokenizer
from ai_assets.core.evaluation.beir import import_beir, load_eval_set
from ai_assets.core.evaluation.retrieval import evaluate_retrieval
from ai_assets.core.retrieval.search import Searcher
from ai_assets.core.store.indexes import build_indexes
from ai_assets.core.store.tables import open_journal, open_table
from ai_assets.core.store.writes import sync_source_embeddings
from ai_assets.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT.parent / "shared" / "benchmarks"
if not BENCHMARKS.is_dir():
    BENCHMARKS = Path("/work/shared/benchmarks")


def prepare(set_name: str, data_dir: Path) -> None:
    if set_name == "docs_qa":
        shutil.copytree(ROOT / "data" / "sources", data_dir / "sources")
        shutil.copytree(ROOT / "data" / "eval" / "docs_qa", data_dir / "eval" / "docs_qa")
    else:
        import_beir(BENCHMARKS / set_name, data_dir, set_name)


def score_set(set_name: str, work: Path) -> dict[bool, dict]:
    data_dir = work / set_name / "data"
    shutil.rmtree(work / set_name, ignore_errors=True)
    prepare(set_name, data_dir)
    settings = Settings(data_dir=data_dir)
    eval_set = load_eval_set(data_dir / "eval" / set_name)
    sources = eval_set.sources or [set_name]
    embedder = create_embedder("minilm")
    db = lancedb.connect(str(work / set_name / "lancedb"))
    table, journal = open_table(db, embedder.spec), open_journal(db, embedder.spec)
    loaded = {source: load_source(LocalSourceFolders(data_dir / "sources"), source, settings.max_document_bytes) for source in sources}
    results: dict[bool, dict] = {}
    for prefix in (False, True):
        config = ChunkerConfig(
            tokenizer=minilm_tokenizer().name, max_tokens=settings.chunk_max_tokens,
            overlap_tokens=settings.chunk_overlap_tokens, context_prefix=prefix,
        )
        embedded = chunks = 0
        started = time.perf_counter()
        for source, load in loaded.items():
            source_chunks = chunk_documents(load.documents, minilm_tokenizer(), config).chunks
            sync = sync_source_embeddings(table, source, source_chunks, embedder, run_id=f"prefix-{prefix}", journal=journal)
            embedded += sync.embedded
            chunks += sync.chunks
        build_indexes(table)
        scores = {score.mode: score for score in evaluate_retrieval(Searcher(table, embedder), eval_set)}
        results[prefix] = {"scores": scores, "chunks": chunks, "embedded": embedded, "seconds": time.perf_counter() - started}
        print(f"{set_name} prefix={prefix}: {chunks} chunks, {embedded} embedded, "
              + ", ".join(f"{mode} {score.ndcg_at_10:.4f}" for mode, score in scores.items()), flush=True)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", nargs="+", default=["docs_qa", "msmarco", "dbpedia"])
    parser.add_argument("--work", type=Path, default=None)
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="ai_assets-prefix-"))
    results = {name: score_set(name, work) for name in args.sets}
    print("\n| set | mode | nDCG@10 without | nDCG@10 with prefix | change | recall@100 without / with | MRR@10 without / with |")
    print("|---|---|---:|---:|---:|---|---|")
    losses = []
    for name, by_prefix in results.items():
        for mode, plain in by_prefix[False]["scores"].items():
            with_prefix = by_prefix[True]["scores"][mode]
            change = with_prefix.ndcg_at_10 - plain.ndcg_at_10
            if mode == "hybrid" and change < 0:
                losses.append(name)
            print(f"| {name} | {mode} | {plain.ndcg_at_10:.4f} | {with_prefix.ndcg_at_10:.4f} | {change:+.4f} | "
                  f"{plain.recall_at_100:.4f} / {with_prefix.recall_at_100:.4f} | {plain.mrr_at_10:.4f} / {with_prefix.mrr_at_10:.4f} |")
    for name, by_prefix in results.items():
        print(f"{name}: {by_prefix[False]['chunks']} chunks without the prefix, {by_prefix[True]['chunks']} with; "
              f"the prefix pass embedded {by_prefix[True]['embedded']} texts")
    verdict = "default ON: it loses on no set (hybrid)" if not losses else f"default OFF: hybrid loses on {', '.join(losses)}"
    print(f"\n{verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
