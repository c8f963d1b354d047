"""What the OpenAI path sends to the API for a build and a re-run, through the protocol-speaking test server.

    python bench/query_embeddings.py [--corpus ../shared/benchmarks/msmarco] [--passages 600]

Imports the corpus's first ``--passages`` passages (qrels and queries restricted to them) as a
source and eval set, then, with ``OPENAI_BASE_URL`` pointing at ``ai_assets_tests/openai_server.py``
(deterministic vectors; it logs every input it is paid to embed) and only the ``openai-small``
embedder enabled, runs ``ai-assets build`` in-process, then a forced build (every step runs
again), then the index job once more (what `ai-assets promote` runs). For each it prints the
inputs embedded, the distinct texts among them and how many the eval queries are: with each
query embedded once per evaluation and cached across runs, inputs minus distinct texts should
not exceed the eval queries, and a re-run should embed nothing. It only uses `run_build` and
the definitions' index job, so the same script measures another checkout of the project
(`PYTHONPATH=<checkout> python bench/query_embeddings.py`).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

import dagster as dg

from ai_assets.build import QUIET_RUN_CONFIG, run_build
from ai_assets.core.evaluation.beir import import_beir
from ai_assets.definitions import INDEX_JOB, build_definitions
from ai_assets.settings import Settings
from ai_assets_tests.openai_server import OpenAIServer, running_openai_server

NAME = "msmarco600"


def write_subset(corpus: Path, passages: int, directory: Path) -> int:
    """The first ``passages`` passages of a BEIR folder, with its judgments of them; judged queries."""
    (directory / "qrels").mkdir(parents=True)
    lines = (corpus / "corpus.jsonl").read_text(encoding="utf-8").splitlines()[:passages]
    (directory / "corpus.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    kept = {json.loads(line)["_id"] for line in lines}
    qrels = [row for row in (corpus / "qrels" / "test.tsv").read_text(encoding="utf-8").splitlines() if row.strip()]
    judged = [row for row in qrels if row.split("\t")[1] in kept]
    (directory / "qrels" / "test.tsv").write_text("\n".join(judged) + "\n", encoding="utf-8")
    (directory / "queries.jsonl").write_bytes((corpus / "queries.jsonl").read_bytes())
    return len({row.split("\t")[0] for row in judged if int(row.split("\t")[2]) > 0})


def paid_since(server: OpenAIServer, start: int) -> tuple[int, int]:
    texts = server.embedded_texts()[start:]
    return len(texts), len(set(texts))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=Path(__file__).resolve().parents[2] / "shared/benchmarks/msmarco")
    parser.add_argument("--passages", type=int, default=600)
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="ai_assets_query_embeddings_"))
    queries = write_subset(args.corpus, args.passages, workdir / "beir")
    data_dir, home = workdir / "data", workdir / "dagster_home"
    import_beir(workdir / "beir", data_dir, NAME)
    home.mkdir()
    with running_openai_server() as server:
        os.environ.update(
            OPENAI_BASE_URL=server.base_url, AI_ASSETS_EMBEDDERS="openai-small", AI_ASSETS_DATA_DIR=str(data_dir)
        )
        settings = Settings()
        with dg.instance_for_test(temp_dir=str(home)) as instance:
            defs = build_definitions(settings)
            print(f"{args.passages} passages of {args.corpus}, {queries} eval queries with a relevant passage")
            print("| run | inputs embedded | distinct texts | inputs - distinct | eval queries |")
            print("|---|---:|---:|---:|---:|")
            for label, run in [
                ("build", lambda: run_build(defs, instance, settings.embedders, echo=lambda _: None)),
                ("forced build", lambda: run_build(defs, instance, settings.embedders, echo=lambda _: None, force=True)),
                ("index job (promote)", lambda: defs.resolve_job_def(INDEX_JOB).execute_in_process(
                    instance=instance, partition_key="openai-small", raise_on_error=False, run_config=QUIET_RUN_CONFIG)),
            ]:
                start = len(server.embedded_texts())
                result = run()
                ok = result.ok if hasattr(result, "ok") else result.success
                inputs, distinct = paid_since(server, start)
                print(f"| {label}{'' if ok else ' (FAILED)'} | {inputs} | {distinct} | {inputs - distinct} | {queries} |")


if __name__ == "__main__":
    main()
