"""The shipped golden set data/eval/docs_qa is consistent with the demo corpus it is about."""

from __future__ import annotations

import json
from pathlib import Path

from ai_assets.core.evaluation.answers import read_answers
from ai_assets.core.evaluation.beir import load_eval_set

DATA = Path(__file__).resolve().parents[3] / "data"
GOLDEN = DATA / "eval" / "docs_qa"


def test_golden_set_has_40_questions_with_answers_and_a_primary_document() -> None:
    eval_set = load_eval_set(GOLDEN)
    answers = read_answers(GOLDEN / "answers.jsonl")
    assert len(eval_set.queries) >= 40
    assert set(answers) == set(eval_set.queries) == set(eval_set.qrels)
    assert eval_set.sources == ["dagster", "prefect", "airflow"]
    for query_id, judged in eval_set.qrels.items():
        assert 2 in judged.values(), query_id


def test_every_judged_document_exists_and_every_evidence_quote_is_in_it() -> None:
    eval_set = load_eval_set(GOLDEN)
    for judged in eval_set.qrels.values():
        for doc_key in judged:
            assert (DATA / "sources" / doc_key).is_file(), doc_key
    for line in (GOLDEN / "answers.jsonl").read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        assert record["evidence"], record["_id"]
        for evidence in record["evidence"]:
            assert evidence["doc_key"] in eval_set.qrels[record["_id"]], (record["_id"], evidence["doc_key"])
            text = (DATA / "sources" / evidence["doc_key"]).read_text(encoding="utf-8")
            assert evidence["quote"] in text, (record["_id"], evidence["quote"][:60])
