"""Compare hybrid fusion functions on built eval sets, from one pass of dense and full-text search.

    python bench/fusion.py --eval-set docs_qa [--eval-set other] [--embedder minilm]

Uses the index and eval sets of AI_ASSETS_DATA_DIR (build first). Each query is searched once
per mode; every fusion is then computed from the same candidate lists, so the comparison is
exact. Choose the default on a development set, never on the test queries you report.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from ai_assets.core.embedding.registry import create_embedder
from ai_assets.core.evaluation.beir import load_eval_set
from ai_assets.core.evaluation.metrics import evaluated_queries, mean_metrics
from ai_assets.core.evaluation.retrieval import CHUNK_DEPTH, DOCUMENT_DEPTH
from ai_assets.core.retrieval.fusion import Fusion
from ai_assets.core.retrieval.search import (
    SearchHit,
    dense_search,
    document_ranking,
    fts_search,
    source_filter,
)
from ai_assets.resources import LanceDBResource
from ai_assets.settings import load_settings

FUSIONS: dict[str, Fusion | None] = {
    "dense only": None,
    "fts only": None,
    "rrf k=60": Fusion(method="rrf", dense_weight=0.5),
    "rrf k=60, dense 2:1": Fusion(method="rrf", dense_weight=2 / 3),
    "rrf k=60, dense 3:1": Fusion(method="rrf", dense_weight=0.75),
    **{f"convex dense={weight}": Fusion(method="convex", dense_weight=weight) for weight in (0.5, 0.6, 0.7, 0.8, 0.9)},
}


def ranked_documents(name: str, dense: Sequence[SearchHit], lexical: Sequence[SearchHit]) -> list[str]:
    fusion = FUSIONS[name]
    if fusion is None:
        hits = dense if name == "dense only" else lexical
    else:
        by_id = {hit.chunk_id: hit for hit in [*lexical, *dense]}
        hits = [by_id[chunk_id].model_copy(update={"score": score}) for chunk_id, score in fusion.fuse(dense, lexical)]
    return [doc for doc, _ in document_ranking(hits)][:DOCUMENT_DEPTH]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--eval-set", action="append", required=True)
    parser.add_argument("--embedder", default="minilm")
    args = parser.parse_args()
    settings = load_settings()
    embedder = create_embedder(args.embedder)
    table = LanceDBResource(uri=settings.resolved_lancedb_uri).table(embedder.spec, create=False)

    results: dict[str, dict[str, float]] = {name: {} for name in FUSIONS}
    for set_name in args.eval_set:
        eval_set = load_eval_set(settings.eval_dir / set_name)
        where = source_filter(eval_set.sources)
        query_ids = evaluated_queries(eval_set.qrels)
        vectors = embedder.embed([eval_set.queries[query_id] for query_id in query_ids])
        candidates = {
            query_id: (
                dense_search(table, vector, CHUNK_DEPTH, where),
                fts_search(table, eval_set.queries[query_id], CHUNK_DEPTH, where),
            )
            for query_id, vector in zip(query_ids, vectors, strict=True)
        }
        for name in FUSIONS:
            rankings = {query_id: ranked_documents(name, *pair) for query_id, pair in candidates.items()}
            results[name][set_name] = mean_metrics(rankings, eval_set.qrels)["ndcg@10"]

    print(f"| fusion | {' | '.join(args.eval_set)} |")
    print(f"|---|{'---:|' * len(args.eval_set)}")
    for name, scores in results.items():
        print(f"| {name} | {' | '.join(f'{scores[set_name]:.4f}' for set_name in args.eval_set)} |")
    if len(args.eval_set) > 1:
        print_leave_one_set_out(results, args.eval_set)


def print_leave_one_set_out(results: dict[str, dict[str, float]], sets: Sequence[str]) -> None:
    """Each set scored with the hybrid fusion chosen on the other sets only: a choice that never
    saw the queries it is scored on."""
    hybrids = [name for name, fusion in FUSIONS.items() if fusion is not None]
    print("\n| set | fusion chosen on the other sets | its nDCG@10 | better single mode |")
    print("|---|---|---:|---:|")
    for held_out in sets:
        others = [name for name in sets if name != held_out]
        chosen = max(hybrids, key=lambda name: sum(results[name][other] for other in others))
        best_single = max(results["dense only"][held_out], results["fts only"][held_out])
        print(f"| {held_out} | {chosen} | {results[chosen][held_out]:.4f} | {best_single:.4f} |")


if __name__ == "__main__":
    main()
