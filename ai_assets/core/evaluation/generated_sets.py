"""Generated eval sets on disk or object storage: BEIR folders the evaluation reads like data/eval/.

Under ``<generated_eval_location>`` (``<data dir>/eval_generated``): ``sources/<source>/`` holds
the questions generated from one source, ``feedback/`` the set grown from people's judgements.
Each is a BEIR folder: ``queries.jsonl``, ``qrels/test.tsv`` (query id, document key, grade) and
``eval.json`` (``{"sources": [...], "kind": ...}``). A generated source set adds ``questions.jsonl``,
every question with its lineage (document version, chunk id, section, page, generator, run): what
the next run carries over, since qrels are by document (the evaluation ranks documents).
"""

from __future__ import annotations

import json
from pathlib import Path

from ai_assets.core.evaluation.beir import EvalSetError, is_eval_set_dir, read_jsonl_records
from ai_assets.core.evaluation.questions import GeneratedQuestion
from ai_assets.core.storage import filesystem, join, storage_path

GENERATED_SOURCES = "sources"
FEEDBACK_SET = "feedback"
QUESTIONS_FILE = "questions.jsonl"
# Names of generated sets in scores and metadata: a hand-written set's folder name has no "/".
GENERATED_PREFIX = "generated/"


def source_set_location(generated_location: str, source: str) -> str:
    return join(generated_location, GENERATED_SOURCES, source)


def generated_set_name(source: str) -> str:
    return f"{GENERATED_PREFIX}{source}"


def read_previous_questions(set_location: str) -> list[GeneratedQuestion]:
    """The questions a source's last run kept; none when there is no set (or an unreadable one,
    which is then made again: it holds nothing a person wrote)."""
    path = storage_path(set_location) / QUESTIONS_FILE
    if not path.is_file():
        return []
    try:
        return [GeneratedQuestion.model_validate(record) for _, record in read_jsonl_records(path)]
    except (EvalSetError, ValueError):
        return []


def write_source_set(set_location: str, source: str, questions: list[GeneratedQuestion], kind: str) -> None:
    """Write the set's files; with no question the set is removed (a set without judgements is not one)."""
    if not questions:
        remove_set(set_location)
        return
    set_dir = storage_path(set_location)
    (set_dir / "qrels").mkdir(parents=True, exist_ok=True)
    # The lineage first and eval.json last: a reader that finds eval.json finds the whole set.
    (set_dir / QUESTIONS_FILE).write_text(
        "".join(question.model_dump_json() + "\n" for question in questions), encoding="utf-8"
    )
    (set_dir / "queries.jsonl").write_text(
        "".join(json.dumps({"_id": q.query_id, "text": q.text}) + "\n" for q in questions), encoding="utf-8"
    )
    (set_dir / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\n" + "".join(f"{q.query_id}\t{q.doc_key}\t1\n" for q in questions), encoding="utf-8"
    )
    (set_dir / "eval.json").write_text(json.dumps({"sources": [source], "kind": kind}) + "\n", encoding="utf-8")


def remove_set(set_location: str) -> None:
    fs, path = filesystem(set_location)
    if fs.exists(path):
        fs.rm(path, recursive=True)


def generated_set_dirs(generated_location: str, sources: set[str] | None = None) -> list[tuple[str, Path]]:
    """(name, folder) of every generated set: one per source (of ``sources`` when given: a removed
    source's set is not scored), then the feedback set."""
    generated_root = storage_path(generated_location)
    found: list[tuple[str, Path]] = []
    source_root = generated_root / GENERATED_SOURCES
    if source_root.is_dir():
        for path in sorted(source_root.iterdir(), key=lambda entry: entry.name):
            if is_eval_set_dir(path) and (sources is None or path.name in sources):
                found.append((generated_set_name(path.name), path))
    feedback = generated_root / FEEDBACK_SET
    if is_eval_set_dir(feedback):
        found.append((FEEDBACK_SET, feedback))
    return found
