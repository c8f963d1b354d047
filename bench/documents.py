"""The demo corpus as exported documents: built from PDF and DOCX files, against the Markdown build.

    python bench/documents.py [--rounds 2] [--work DIR] [--variants markdown pdf docx docx-styled]

Renders `data/sources` with bench/render_corpus.py (PDF with styled headings, a running header and
a page-numbered footer; DOCX with Heading styles; DOCX with bold, larger runs only), puts a
truncated and an encrypted PDF beside the PDFs, re-keys `data/eval/docs_qa` to the new file names,
and builds each variant cold through `run_build` (a fresh data dir, LanceDB and Dagster instance,
each build in its own process), Markdown and PDF interleaved for `--rounds`. It prints, per
variant: hybrid nDCG@10 of docs_qa (and its distance to the Markdown build's), the rows with a
page and past page 1, the rows with a section, whether every `search --json` hit of the 48
questions carries a page, what was quarantined, the build's wall time split into its ingest runs
(listing, parsing, chunking), embed runs and index-and-evaluate runs, and the PDF/Markdown ratio
of cold build times per round. Needs the `docs` extra (reportlab, pypdf).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXTENSIONS = {"markdown": "md", "pdf": "pdf", "docx": "docx", "docx-styled": "docx"}


def prepare(variant: str, rendered: Path, data_dir: Path) -> None:
    """A data dir of one variant: its sources, docs_qa re-keyed to them, and the bad PDFs for `pdf`."""
    sources = ROOT / "data" / "sources" if variant == "markdown" else rendered / variant
    for folder in sorted(path for path in sources.iterdir() if path.is_dir()):
        shutil.copytree(folder, data_dir / "sources" / folder.name)
    eval_dir = data_dir / "eval" / "docs_qa"
    shutil.copytree(ROOT / "data" / "eval" / "docs_qa", eval_dir)
    extension = EXTENSIONS[variant]
    for name in ("qrels/test.tsv", "answers.jsonl"):
        path = eval_dir / name
        path.write_text(path.read_text(encoding="utf-8").replace(".md", f".{extension}"), encoding="utf-8")
    if variant == "pdf":
        add_bad_pdfs(data_dir / "sources" / "dagster")


def add_bad_pdfs(folder: Path) -> None:
    from pypdf import PdfReader, PdfWriter

    sample = sorted(folder.glob("*.pdf"))[0]
    raw = sample.read_bytes()
    (folder / "zz-truncated.pdf").write_bytes(raw[: len(raw) // 2])
    writer = PdfWriter(clone_from=PdfReader(sample))
    writer.encrypt(user_password="secret", owner_password="owner")
    with open(folder / "zz-encrypted.pdf", "wb") as handle:
        writer.write(handle)


def build_once(data_dir: Path) -> dict:
    """One cold build of data_dir in this process, and what the check measures of it."""
    import lancedb

    from ai_assets.build import run_build
    from ai_assets.cli import dagster_instance
    from ai_assets.core.embedding.base import MINILM
    from ai_assets.core.retrieval.search import Searcher
    from ai_assets.core.store.tables import open_table, scan
    from ai_assets.definitions import EMBED_JOB, INDEX_JOB, INGEST_JOB, build_definitions
    from ai_assets.history import latest_metadata
    from ai_assets.metadata_tables import read_scores
    from ai_assets.resources import embedders_from_settings
    from ai_assets.settings import Settings

    settings = Settings(data_dir=data_dir)
    os.environ["DAGSTER_HOME"] = str(data_dir.parent / "dagster_home")
    instance = dagster_instance(settings, create=True)
    started = time.perf_counter()
    report = run_build(build_definitions(settings), instance, settings.embedders, echo=lambda _: None)
    seconds = time.perf_counter() - started
    if not report.ok:
        raise SystemExit(f"build failed: {report.failures}")
    by_job = {job: sum(s for j, _, _, s in report.runs if j == job) for job in (INGEST_JOB, EMBED_JOB, INDEX_JOB)}
    sources = sorted(path.name for path in (data_dir / "sources").iterdir())
    documents = {source: latest_metadata(instance, "source_documents", source) for source in sources}
    embeddings = [latest_metadata(instance, "chunk_embeddings", f"minilm|{source}") for source in sources]
    evaluation = latest_metadata(instance, "retrieval_evaluation", "minilm")
    hybrid = next(row for row in read_scores(evaluation) if row["eval_set"] == "docs_qa" and row["mode"] == "hybrid")

    table = open_table(lancedb.connect(settings.resolved_lancedb_uri), MINILM, create=False)
    rows = scan(table, ["section", "page"]).to_pylist()
    embedder = embedders_from_settings(settings).process_config_and_initialize().get("minilm")
    searcher = Searcher(table, embedder)
    queries = [json.loads(line)["text"] for line in (data_dir / "eval" / "docs_qa" / "queries.jsonl").read_text().splitlines()]
    hits = [hit for query in queries for hit in searcher.search(query, limit=10)]
    cli = subprocess.run(
        [sys.executable, "-m", "ai_assets.cli", "search", queries[0], "--json"],
        env={**os.environ, "AI_ASSETS_DATA_DIR": str(data_dir)}, capture_output=True, text=True, check=True,
    )
    return {
        "build_seconds": seconds,
        "ingest_seconds": by_job[INGEST_JOB],
        "embed_run_seconds": by_job[EMBED_JOB],
        "index_seconds": by_job[INDEX_JOB],
        "parse_worker_seconds": sum(meta["parse_seconds"] for meta in documents.values()),
        "embed_seconds": sum(meta["embed_seconds"] for meta in embeddings),
        "documents": sum(meta["documents"] for meta in documents.values()),
        "pages": sum(meta["pages"] for meta in documents.values()),
        "quarantined": {source: meta["quarantined_files"] for source, meta in documents.items() if meta.get("quarantined_files")},
        "rows": len(rows),
        "rows_with_page": sum(1 for row in rows if row["page"] is not None and row["page"] >= 1),
        "rows_past_page_1": sum(1 for row in rows if (row["page"] or 0) > 1),
        "rows_with_section": sum(1 for row in rows if row["section"]),
        "hits": len(hits),
        "hits_with_page": sum(1 for hit in hits if hit.page is not None and hit.page >= 1),
        "cli_hits_with_page": all((hit.get("page") or 0) >= 1 for hit in json.loads(cli.stdout)),
        "hybrid_ndcg_at_10": hybrid["ndcg@10"],
    }


def run_variant(variant: str, rendered: Path, work: Path, round_number: int) -> dict:
    directory = work / f"{variant}-{round_number}"
    shutil.rmtree(directory, ignore_errors=True)
    prepare(variant, rendered, directory / "data")
    result = subprocess.run(
        [sys.executable, __file__, "--one", str(directory / "data")], capture_output=True, text=True, cwd=ROOT,
    )
    if result.returncode != 0:
        raise SystemExit(f"{variant} build failed:\n{result.stdout}\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def print_results(results: dict[str, list[dict]]) -> None:
    markdown = statistics.median(run["hybrid_ndcg_at_10"] for run in results["markdown"])
    print("| variant | docs | pages | rows | rows with page (past p. 1) | rows with section | hits with page | "
          "hybrid nDCG@10 docs_qa (vs Markdown) | cold build s | ingest / embed / index runs s | parse (workers) s | quarantined |")
    print("|---|---:|---:|---:|---|---:|---|---:|---:|---|---:|---|")
    for variant, runs in results.items():
        run = runs[-1]
        quarantined = "; ".join(
            f"{item['path']}: {item['reason']}" for items in run["quarantined"].values() for item in items
        ) or "none"
        ndcg = run["hybrid_ndcg_at_10"]
        print(
            f"| {variant} | {run['documents']} | {run['pages']} | {run['rows']} | "
            f"{run['rows_with_page']} ({run['rows_past_page_1']}) | {run['rows_with_section'] / run['rows']:.1%} | "
            f"{run['hits_with_page']}/{run['hits']} (cli {'all' if run['cli_hits_with_page'] else 'not all'}) | "
            f"{ndcg:.4f} ({ndcg - markdown:+.4f}) | {statistics.median(r['build_seconds'] for r in runs):.1f} | "
            f"{run['ingest_seconds']:.1f} / {run['embed_run_seconds']:.1f} / {run['index_seconds']:.1f} | "
            f"{run['parse_worker_seconds']:.2f} | {quarantined} |"
        )
    if "pdf" in results:
        ratios = [pdf["build_seconds"] / md["build_seconds"] for md, pdf in zip(results["markdown"], results["pdf"], strict=False)]
        print(f"\nPDF / Markdown cold build, per round: {', '.join(f'{ratio:.3f}' for ratio in ratios)} "
              f"(median {statistics.median(ratios):.3f}; target <= 1.15)")
        embed = [pdf["embed_seconds"] for pdf in results["pdf"]]
        print(f"PDF build: embedding (model) {statistics.median(embed):.1f} s, parsing in workers "
              f"{statistics.median(r['parse_worker_seconds'] for r in results['pdf']):.2f} s (CPU-summed over workers)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument("--variants", nargs="+", default=["markdown", "pdf", "docx", "docx-styled"])
    parser.add_argument("--one", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(build_once(args.one)))
        return 0
    sys.path.insert(0, str(ROOT / "bench"))
    from render_corpus import render_source_tree

    work = args.work or Path(tempfile.mkdtemp(prefix="ai_assets-documents-"))
    rendered = work / "rendered"
    formats = [variant for variant in args.variants if variant != "markdown"]
    started = time.perf_counter()
    print(f"rendered {render_source_tree(ROOT / 'data' / 'sources', rendered, formats)} in {time.perf_counter() - started:.1f} s")
    results: dict[str, list[dict]] = {variant: [] for variant in ["markdown", *formats]}
    for round_number in range(args.rounds):
        for variant in ("markdown", "pdf"):
            if variant in results:
                results[variant].append(run_variant(variant, rendered, work, round_number))
                print(f"round {round_number + 1} {variant}: {results[variant][-1]['build_seconds']:.1f} s", flush=True)
    for variant in formats:
        if variant != "pdf":
            results[variant].append(run_variant(variant, rendered, work, 0))
    print_results(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
