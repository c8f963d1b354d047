"""Do questions generated from the corpus rank configurations as people's questions do?

    python bench/eval_agreement.py [--work DIR] [--variants]

On the demo corpus (data/sources) and docs_qa (48 hand-written questions with judgements), a
spread of configurations (chunk size, context prefix on/off, search mode dense/fts/hybrid, and the
two hybrid fusions of docs/evaluation.md: convex 0.9 dense, RRF k=60) is scored with docs_qa and
with the eval sets eval_questions generates (made once, from the default chunking, as the first
build would). Reported: Kendall's tau-b between the two orderings, and which damaging changes the
quality gate catches with only the generated sets (its generated floor and max drop against the
default configuration on the same questions): tiny chunks (16 tokens, no overlap), a source's rows
lost, one source's vectors mixed up (as from a wrong model). ``--variants`` also scores the
generator's variants (term weighting, query length, heading queries) on the default configuration.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import lancedb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ai_assets.core.chunking.chunker import Chunk, ChunkerConfig, chunk_documents
from ai_assets.core.documents.folders import LocalSourceFolders
from ai_assets.core.documents.loading import load_source
from ai_assets.core.embedding.registry import create_embedder
from ai_assets.core.embedding.tokenizer import minilm_tokenizer
from ai_assets.core.evaluation.beir import EvalSet, load_eval_set
from ai_assets.core.evaluation.generated_sets import generated_set_name
from ai_assets.core.evaluation.questions import QuestionSettings, source_questions
from ai_assets.core.evaluation.retrieval import RetrievalScore, evaluate_retrieval
from ai_assets.core.quality import quality_gate_failures
from ai_assets.core.retrieval.fusion import Fusion
from ai_assets.core.retrieval.search import Searcher
from ai_assets.core.store.indexes import build_indexes
from ai_assets.core.store.tables import open_journal, open_table, sql_literal
from ai_assets.core.store.writes import sync_source_embeddings
from ai_assets.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
FUSIONS = {"convex 0.9": Fusion(method="convex", dense_weight=0.9), "rrf k=60": Fusion(method="rrf", dense_weight=0.5)}
# (max tokens, overlap, context prefix): the default first; the questions are drawn from its chunks.
CHUNKINGS = [(254, 32, True), (254, 32, False), (96, 12, True)]
QUICK_CHUNKINGS = CHUNKINGS[:2]  # --quick: the context prefix on and off only
# Tiny chunks are scored on one source only (16-token chunks of the whole corpus take an hour to
# embed on the shared 2-core machine); its generated set is prefiltered to it, so the rest does not matter.
TINY = (16, 0, True)
TINY_SOURCE = "dagster"


def kendall_tau_b(first: Sequence[float], second: Sequence[float]) -> float:
    """Kendall's tau-b (ties in either ordering accounted for)."""
    concordant = discordant = ties_first = ties_second = 0
    for i in range(len(first)):
        for j in range(i + 1, len(first)):
            a, b = np.sign(first[i] - first[j]), np.sign(second[i] - second[j])
            if a == 0 and b == 0:
                continue
            if a == 0:
                ties_first += 1
            elif b == 0:
                ties_second += 1
            elif a == b:
                concordant += 1
            else:
                discordant += 1
    denominator = ((concordant + discordant + ties_first) * (concordant + discordant + ties_second)) ** 0.5
    return (concordant - discordant) / denominator if denominator else 0.0


def chunk_all(loaded: dict, chunking: tuple[int, int, bool]) -> dict[str, list[Chunk]]:
    max_tokens, overlap, prefix = chunking
    config = ChunkerConfig(tokenizer=minilm_tokenizer().name, max_tokens=max_tokens, overlap_tokens=overlap, context_prefix=prefix)
    return {source: chunk_documents(load.documents, minilm_tokenizer(), config).chunks for source, load in loaded.items()}


def generated_sets(chunks: dict[str, list[Chunk]], settings: QuestionSettings, work: Path) -> list[EvalSet]:
    """The sets eval_questions writes, one per source, as EvalSets."""
    sets = []
    for source, source_chunks in chunks.items():
        made = source_questions(source, source_chunks, [], set(), settings, run_id="bench").questions
        sets.append(
            EvalSet(
                name=generated_set_name(source), path=str(work), sources=[source], kind="generated-offline",
                queries={q.query_id: q.text for q in made}, qrels={q.query_id: {q.doc_key: 1} for q in made},
            )
        )
    return sets


def score(table, embedder, eval_sets: list[EvalSet]) -> dict[str, list[RetrievalScore]]:
    """Scores per configuration label (mode, and fusion for hybrid)."""
    results: dict[str, list[RetrievalScore]] = {}
    for fusion_name, fusion in FUSIONS.items():
        searcher = Searcher(table, embedder, fusion=fusion)
        modes = ("dense", "fts", "hybrid") if fusion_name == "convex 0.9" else ("hybrid",)
        for eval_set in eval_sets:
            for result in evaluate_retrieval(searcher, eval_set, modes=modes):
                label = result.mode if result.mode != "hybrid" else f"hybrid {fusion_name}"
                results.setdefault(label, []).append(result)
    return results


def mean_ndcg(scores: list[RetrievalScore], kind: str) -> float:
    """nDCG@10 over the sets of a kind, weighted by their queries."""
    chosen = [s for s in scores if s.kind == kind]
    return sum(s.ndcg_at_10 * s.queries for s in chosen) / max(1, sum(s.queries for s in chosen))


def sync(table, journal, embedder, chunks: dict[str, list[Chunk]], run_id: str) -> None:
    for source, source_chunks in chunks.items():
        sync_source_embeddings(table, source, source_chunks, embedder, run_id=run_id, journal=journal)
    build_indexes(table)


def gate(candidate: list[RetrievalScore], baseline: list[RetrievalScore], settings: Settings) -> list[str]:
    rows = [s.model_dump(by_alias=True) for s in candidate if s.kind != "hand-written"]
    before = [s.model_dump(by_alias=True) for s in baseline if s.kind != "hand-written"]
    failures = quality_gate_failures(
        rows, before, "ndcg@10", settings.quality_min_ndcg_at_10, settings.quality_max_ndcg_drop,
        floor_by_kind={"generated-offline": settings.quality_min_ndcg_at_10_generated},
    )
    return [failure.describe() for failure in failures]


def flatten(by_label: dict[str, list[RetrievalScore]]) -> list[RetrievalScore]:
    """Scores with the hybrid fusion in the mode, as one evaluation's rows."""
    return [s.model_copy(update={"eval_set": f"{s.eval_set} ({label})"}) for label, rows in by_label.items() for s in rows]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument("--variants", action="store_true")
    parser.add_argument("--quick", action="store_true", help="skip the 96-token chunking (one corpus embedding fewer)")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="ai_assets-agreement-"))
    shutil.rmtree(work / "lancedb", ignore_errors=True)
    settings = Settings(data_dir=ROOT / "data")
    human = load_eval_set(ROOT / "data" / "eval" / "docs_qa")
    folders = LocalSourceFolders(ROOT / "data" / "sources")
    loaded = {source: load_source(folders, source, settings.max_document_bytes) for source in human.sources}
    embedder = create_embedder("minilm")
    db = lancedb.connect(str(work / "lancedb"))
    table, journal = open_table(db, embedder.spec), open_journal(db, embedder.spec)

    default_chunks = chunk_all(loaded, CHUNKINGS[0])
    question_settings = QuestionSettings(
        per_document=settings.eval_questions_per_document, per_source=settings.eval_questions_per_source
    )
    generated = generated_sets(default_chunks, question_settings, work)
    print(f"generated: {sum(len(s.queries) for s in generated)} questions over {len(generated)} sources", flush=True)

    rows: list[tuple[str, float, float]] = []  # configuration, human nDCG@10, generated nDCG@10
    baseline: dict[str, list[RetrievalScore]] = {}
    damage: dict[str, list[str]] = {}
    for chunking in [*(QUICK_CHUNKINGS if args.quick else CHUNKINGS), TINY]:
        started = time.perf_counter()
        name = f"{chunking[0]} tok/{chunking[1]} overlap, prefix {'on' if chunking[2] else 'off'}"
        if chunking == TINY:
            tiny = chunk_all({TINY_SOURCE: loaded[TINY_SOURCE]}, chunking)
            sync(table, journal, embedder, tiny, run_id=str(chunking))
            tiny_set = [s for s in generated if s.sources == [TINY_SOURCE]]
            only = [s for s in flatten(baseline) if s.eval_set.startswith(tiny_set[0].name + " ")]
            damage[f"tiny chunks ({name}) in {TINY_SOURCE}"] = gate(flatten(score(table, embedder, tiny_set)), only, settings)
            print(f"{name} ({TINY_SOURCE}): {len(tiny[TINY_SOURCE])} chunks, {time.perf_counter() - started:.0f} s", flush=True)
            continue
        chunks = default_chunks if chunking == CHUNKINGS[0] else chunk_all(loaded, chunking)
        sync(table, journal, embedder, chunks, run_id=str(chunking))
        by_label = score(table, embedder, [human, *generated])
        for label, label_scores in by_label.items():
            rows.append((f"{name}, {label}", mean_ndcg(label_scores, "hand-written"), mean_ndcg(label_scores, "generated-offline")))
            print(f"| {rows[-1][0]} | {rows[-1][1]:.4f} | {rows[-1][2]:.4f} |", flush=True)
        print(f"{name}: {sum(len(c) for c in chunks.values())} chunks, {time.perf_counter() - started:.0f} s; "
              f"Kendall tau-b so far {kendall_tau_b([r[1] for r in rows], [r[2] for r in rows]):.3f}", flush=True)
        if chunking == CHUNKINGS[0]:
            baseline = by_label
            if args.variants:
                print_variants(table, embedder, human, default_chunks, work)
            version = table.version
            lost = sorted(loaded)[-1]
            table.delete(f"source = {sql_literal(lost)}")
            damage[f"source {lost} lost from the index"] = gate(flatten(score(table, embedder, generated)), flatten(baseline), settings)
            print(f"damage: {damage}", flush=True)
            table.restore(version)
            damage[f"vectors of {lost} mixed up"] = gate(flatten(score(shuffled(table, lost), embedder, generated)), flatten(baseline), settings)
            print(f"damage: {damage}", flush=True)
            table.restore(version)
            build_indexes(table)

    print("\n| configuration | docs_qa nDCG@10 | generated nDCG@10 |\n|---|---:|---:|")
    for name, human_score, generated_score in rows:
        print(f"| {name} | {human_score:.4f} | {generated_score:.4f} |")
    tau = kendall_tau_b([r[1] for r in rows], [r[2] for r in rows])
    print(f"\nKendall tau-b over {len(rows)} configurations: {tau:.3f}")
    for mode in ("dense", "fts", "hybrid convex 0.9", "hybrid rrf k=60"):
        within = [r for r in rows if r[0].endswith(mode)]
        print(f"  within {mode} ({len(within)} chunkings): {kendall_tau_b([r[1] for r in within], [r[2] for r in within]):.3f}")
    print("\n| damaging change | caught by the gate (generated sets only) |\n|---|---|")
    for change, failures in damage.items():
        print(f"| {change} | {'yes: ' + '; '.join(failures[:3]) if failures else 'no'} |")
    return 0


def shuffled(table, source: str):
    """The table with one source's vectors permuted among its rows (as if made by another model)."""
    everything = table.to_arrow()
    rows = everything.filter(pc.equal(everything.column("source"), source))
    vectors = np.stack(rows.column("vector").to_numpy(zero_copy_only=False))
    permuted = vectors[np.random.default_rng(0).permutation(len(vectors))]
    vector_type = rows.schema.field("vector").type
    replaced = rows.set_column(rows.schema.get_field_index("vector"), "vector", pa.array(list(permuted), type=vector_type))
    table.delete(f"source = {sql_literal(source)}")
    table.add(replaced)
    build_indexes(table)
    return table


def print_variants(table, embedder, human: EvalSet, chunks: dict[str, list[Chunk]], work: Path) -> None:
    """The generator's variants on the default configuration, per mode: where they sit against docs_qa."""
    print("\n| generator variant | questions | dense | fts | hybrid |\n|---|---:|---:|---:|---:|")
    searcher = Searcher(table, embedder)
    for weighting in ("popular", "discriminative", "tfidf"):
        for terms in (3, 5):
            for headings in (False, True):
                variant = QuestionSettings(weighting=weighting, query_terms=terms, headings=headings)
                sets = generated_sets(chunks, variant, work)
                scores = [s for eval_set in sets for s in evaluate_retrieval(searcher, eval_set)]
                by_mode = {mode: mean_ndcg([s for s in scores if s.mode == mode], "generated-offline") for mode in ("dense", "fts", "hybrid")}
                print(f"| {weighting}, {terms} terms, headings {'on' if headings else 'off'} | "
                      f"{sum(len(s.queries) for s in sets)} | {by_mode['dense']:.4f} | {by_mode['fts']:.4f} | {by_mode['hybrid']:.4f} |", flush=True)
    human_scores = evaluate_retrieval(searcher, human)
    print("| docs_qa (people) | 48 | " + " | ".join(f"{s.ndcg_at_10:.4f}" for s in human_scores) + " |")


if __name__ == "__main__":
    sys.exit(main())
