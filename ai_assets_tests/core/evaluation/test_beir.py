"""BEIR layout: qrels with or without a header, and importing a dataset as a source + eval set."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ai_assets.core.evaluation.beir import EvalSetError, import_beir, load_eval_set, read_qrels


@pytest.mark.parametrize(
    "content",
    [
        "query-id\tcorpus-id\tscore\nq1\td1\t2\nq1\td2\t0\nq2\td3\t1\n",  # header, tabs
        "q1\td1\t2\nq1\td2\t0\nq2\td3\t1\n",  # no header (MS MARCO)
        "q1 d1 2\nq1 d2 0\n\nq2 d3 1\n",  # spaces, a blank line
        "q1\t0\td1\t2\nq1\t0\td2\t0\nq2\t0\td3\t1\n",  # TREC: query, iteration, doc, score
    ],
)
def test_qrels_layouts(tmp_path: Path, content: str) -> None:
    path = tmp_path / "test.tsv"
    path.write_text(content, encoding="utf-8")
    assert read_qrels(path) == {"q1": {"d1": 2, "d2": 0}, "q2": {"d3": 1}}


def test_malformed_qrels_name_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "test.tsv"
    path.write_text("q1\td1\t1\nq2\td2\tlots\n", encoding="utf-8")
    with pytest.raises(EvalSetError, match=r"test.tsv:2: score 'lots' is not a number"):
        read_qrels(path)


def write_beir(directory: Path) -> None:
    (directory / "qrels").mkdir(parents=True)
    (directory / "corpus.jsonl").write_text(
        "".join(json.dumps({"_id": f"d{i}", "title": "", "text": f"text {i}"}) + "\n" for i in range(3))
    )
    (directory / "queries.jsonl").write_text(
        json.dumps({"_id": "q1", "text": "one"}) + "\n" + json.dumps({"_id": "q9", "text": "unjudged"}) + "\n"
    )
    (directory / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\td2\t0\n")


def test_import_beir_writes_a_source_and_an_eval_set_with_document_keys(tmp_path: Path) -> None:
    write_beir(tmp_path / "beir")
    result = import_beir(tmp_path / "beir", tmp_path / "data", "sci")
    assert (result.documents, result.queries, result.judgments) == (3, 1, 2)
    assert (tmp_path / "data" / "sources" / "sci" / "corpus.jsonl").read_text() == (tmp_path / "beir" / "corpus.jsonl").read_text()
    eval_set = load_eval_set(tmp_path / "data" / "eval" / "sci")
    assert eval_set.qrels == {"q1": {"sci/d1": 1, "sci/d2": 0}}
    assert eval_set.queries == {"q1": "one"} and eval_set.sources == ["sci"]
    with pytest.raises(FileExistsError, match="--overwrite"):
        import_beir(tmp_path / "beir", tmp_path / "data", "sci")
    import_beir(tmp_path / "beir", tmp_path / "data", "sci", overwrite=True)


def test_import_beir_errors(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(EvalSetError, match="missing corpus.jsonl"):
        import_beir(tmp_path / "empty", tmp_path / "data", "x")
    write_beir(tmp_path / "beir")
    with pytest.raises(ValueError, match="invalid source name"):
        import_beir(tmp_path / "beir", tmp_path / "data", "../x")
