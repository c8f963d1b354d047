"""Evaluation sets in BEIR layout, and importing a BEIR dataset as a source plus an eval set.

An eval set is a folder ``data/eval/<name>/`` (a ``Path``, or a ``UPath`` on object storage) with ``queries.jsonl`` (``_id``, ``text``),
``qrels/test.tsv`` (query id, document key, graded score; header row optional; score 0 means
judged not relevant) and optionally ``eval.json`` (``{"sources": [...], "kind": ...}``: the sources
it is about, used to prefilter search, and who made it, ``EvalSetKind``) and ``answers.jsonl``
(reference answers).
Document ids in an eval set's qrels are document keys, ``<source>/<id or path>``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Literal, get_args

from pydantic import BaseModel

from ai_assets.core.documents.model import validate_source_name


class EvalSetError(ValueError):
    """An eval set or BEIR dataset that cannot be read, with the file and line at fault."""


# Who made an eval set: people (data/eval/), the corpus (eval_questions, offline or with a chat
# model) or people's judgements of answers. Each kind has its own floor in the quality gate.
EvalSetKind = Literal["hand-written", "generated-offline", "generated-model", "feedback"]
EVAL_SET_KINDS: tuple[str, ...] = get_args(EvalSetKind)


class EvalSet(BaseModel):
    name: str
    path: str
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]
    sources: list[str]
    kind: EvalSetKind = "hand-written"


def read_queries(path: Path) -> dict[str, str]:
    queries: dict[str, str] = {}
    for line_number, record in read_jsonl_records(path):
        query_id, text = record.get("_id"), record.get("text")
        if query_id is None or not isinstance(text, str):
            raise EvalSetError(f"{path}:{line_number}: a query needs `_id` and a `text` string")
        queries[str(query_id)] = text
    return queries


def read_jsonl_records(path: Path) -> list[tuple[int, dict]]:
    if not path.is_file():
        raise EvalSetError(f"missing file {path}")
    records = []
    with path.open(encoding="utf-8") as lines:
        for line_number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise EvalSetError(f"{path}:{line_number}: invalid JSON ({error.msg})") from None
            if not isinstance(record, dict):
                raise EvalSetError(f"{path}:{line_number}: expected a JSON object")
            records.append((line_number, record))
    return records


def read_qrels(path: Path) -> dict[str, dict[str, int]]:
    """Parse a qrels TSV, with or without a ``query-id corpus-id score`` header row."""
    if not path.is_file():
        raise EvalSetError(f"missing file {path}")
    qrels: dict[str, dict[str, int]] = {}
    with path.open(encoding="utf-8") as lines:
        for line_number, line in enumerate(lines, start=1):
            fields = line.rstrip("\n").split("\t") if "\t" in line else line.split()
            if not any(field.strip() for field in fields):
                continue
            if len(fields) == 4:  # TREC layout: query, iteration, document, score
                fields = [fields[0], fields[2], fields[3]]
            if len(fields) != 3:
                raise EvalSetError(f"{path}:{line_number}: expected 3 tab-separated columns, got {len(fields)}")
            query_id, doc_id, score_text = (field.strip() for field in fields)
            try:
                score = int(float(score_text))
            except ValueError:
                if line_number == 1:
                    continue  # header row
                raise EvalSetError(f"{path}:{line_number}: score {score_text!r} is not a number") from None
            qrels.setdefault(query_id, {})[doc_id] = score
    if not qrels:
        raise EvalSetError(f"{path}: no judgments")
    return qrels


def is_eval_set_dir(path: Path) -> bool:
    return (path / "queries.jsonl").is_file() and (path / "qrels" / "test.tsv").is_file()


def list_eval_sets(eval_dir: Path) -> list[Path]:
    if not eval_dir.is_dir():
        return []
    return sorted(path for path in eval_dir.iterdir() if path.is_dir() and is_eval_set_dir(path))


def load_eval_set(path: Path, name: str | None = None) -> EvalSet:
    """The set in folder ``path``, called ``name`` (default: the folder's name)."""
    sources: list[str] = []
    kind = "hand-written"
    config_path = path / "eval.json"
    if config_path.is_file():
        try:
            config = json.loads(config_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise EvalSetError(f"{config_path}: invalid JSON ({error.msg})") from None
        sources = [validate_source_name(str(source)) for source in config.get("sources", [])]
        kind = config.get("kind", kind)
        if kind not in EVAL_SET_KINDS:
            raise EvalSetError(f"{config_path}: kind {kind!r} is not one of {', '.join(EVAL_SET_KINDS)}")
    queries = read_queries(path / "queries.jsonl")
    qrels = read_qrels(path / "qrels" / "test.tsv")
    unknown = sorted(set(qrels) - set(queries))
    if unknown:
        raise EvalSetError(
            f"{path}: {len(unknown)} judged query id(s) missing from queries.jsonl, e.g. {unknown[0]!r}"
        )
    return EvalSet(name=name or path.name, path=str(path), queries=queries, qrels=qrels, sources=sources, kind=kind)


class BeirImport(BaseModel):
    name: str
    source_dir: str
    eval_dir: str
    documents: int
    queries: int
    judgments: int


def import_beir(
    dataset_dir: Path,
    data_dir: Path,
    name: str,
    overwrite: bool = False,
    sources_dir: Path | None = None,
    eval_dir: Path | None = None,
) -> BeirImport:
    """Copy a BEIR dataset's corpus into ``sources/<name>/`` and its test split into ``eval/<name>/``.

    Qrels are rewritten to document keys (``<name>/<corpus-id>``) with a header row. The targets
    may be ``UPath``s on object storage (``sources_dir``/``eval_dir`` override ``data_dir``'s).
    """
    validate_source_name(name)
    corpus = dataset_dir / "corpus.jsonl"
    for required in (corpus, dataset_dir / "queries.jsonl", dataset_dir / "qrels" / "test.tsv"):
        if not required.is_file():
            raise EvalSetError(f"{dataset_dir} is not a BEIR dataset: missing {required.relative_to(dataset_dir)}")
    queries = read_queries(dataset_dir / "queries.jsonl")
    qrels = read_qrels(dataset_dir / "qrels" / "test.tsv")
    source_dir = (sources_dir or data_dir / "sources") / name
    eval_dir = (eval_dir or data_dir / "eval") / name
    for target in (source_dir, eval_dir):
        if target.exists() and not overwrite:
            raise FileExistsError(f"{target} already exists; pass --overwrite to replace it")
    documents = sum(1 for line in corpus.open(encoding="utf-8", errors="replace") if line.strip())

    source_dir.mkdir(parents=True, exist_ok=True)
    with corpus.open("rb") as original, (source_dir / "corpus.jsonl").open("wb") as copy:
        shutil.copyfileobj(original, copy)  # not copyfile: the target may be on object storage
    (eval_dir / "qrels").mkdir(parents=True, exist_ok=True)
    judged_queries = {query_id: queries[query_id] for query_id in qrels if query_id in queries}
    with (eval_dir / "queries.jsonl").open("w", encoding="utf-8") as out:
        for query_id, text in judged_queries.items():
            out.write(json.dumps({"_id": query_id, "text": text}) + "\n")
    judgments = 0
    with (eval_dir / "qrels" / "test.tsv").open("w", encoding="utf-8") as out:
        out.write("query-id\tcorpus-id\tscore\n")
        for query_id, judged in qrels.items():
            if query_id not in judged_queries:
                continue
            for doc_id, score in judged.items():
                out.write(f"{query_id}\t{name}/{doc_id}\t{score}\n")
                judgments += 1
    (eval_dir / "eval.json").write_text(
        json.dumps({"name": name, "sources": [name], "imported_from": str(dataset_dir.resolve())}, indent=2)
        + "\n",
        encoding="utf-8",
    )
    return BeirImport(
        name=name,
        source_dir=str(source_dir),
        eval_dir=str(eval_dir),
        documents=documents,
        queries=len(judged_queries),
        judgments=judgments,
    )
