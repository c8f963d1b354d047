from datetime import UTC, datetime, timedelta

import pytest

from ai_assets.core.documents.folders import SourceFile, SourceListing
from ai_assets.core.documents.model import SkippedFile
from ai_assets.core.evaluation.beir import load_eval_set
from ai_assets.core.feedback import AnsweredQuery, CitedPassage, FileFeedbackStore, Judgement
from ai_assets.core.feedback.eval_set import build_feedback_eval_set, deleted_documents, query_id, write_eval_set
from ai_assets_tests.s3_server import S3Server

START = datetime(2026, 12, 1, tzinfo=UTC)
DOCS = {1: "dagster/retries.md", 2: "dagster/schedules.md", 3: "ops/retries.md"}


def answered(answer_id: str, question: str = "How do I retry a run?", kind: str = "ask", minute: int = 0) -> AnsweredQuery:
    return AnsweredQuery(
        answer_id=answer_id, knowledge_base="docs", kind=kind, question=question, answer="...",
        passages=[
            CitedPassage(number=number, chunk_id=f"{answer_id}-c{number}", source=doc.split("/")[0], doc_key=doc)
            for number, doc in DOCS.items()
        ],
        embedder="minilm", table="chunks__minilm", index_version=3, mode="hybrid", created_at=START + timedelta(minutes=minute),
    )


def judged(answer_id: str, verdict: str, citation: int | None, minute: int, note: str = "") -> Judgement:
    return Judgement(
        answer_id=answer_id, verdict=verdict, citation=citation, note=note, created_at=START + timedelta(minutes=minute)
    )


@pytest.mark.parametrize(("answers", "judgements", "relevant", "reviewed"), [
    # a cited passage judged good: its document, for that question
    ([answered("a1")], [judged("a1", "good", 1, 1)], {"how do i retry a run": ["dagster/retries.md"]}, []),
    # a later bad judgement of the same citation overrides the good one, and is listed for review
    ([answered("a1")], [judged("a1", "good", 1, 1), judged("a1", "bad", 1, 2, "outdated")], {}, ["[1] dagster/retries.md"]),
    # ... but an earlier one does not
    ([answered("a1")], [judged("a1", "bad", 1, 1), judged("a1", "good", 1, 2)],
     {"how do i retry a run": ["dagster/retries.md"]}, ["[1] dagster/retries.md"]),
    # a bad answer makes nothing relevant and is listed
    ([answered("a1")], [judged("a1", "bad", None, 1)], {}, ["answer"]),
    # an ask answer judged good as a whole: every cited document; a citation judged bad stays out
    ([answered("a1")], [judged("a1", "good", None, 1), judged("a1", "bad", 3, 2)],
     {"how do i retry a run": ["dagster/retries.md", "dagster/schedules.md"]}, ["[3] ops/retries.md"]),
    # a search judged good as a whole: which hit was right is unknown, nothing is added
    ([answered("a1", kind="search")], [judged("a1", "good", None, 1)], {}, []),
    # the same question asked twice (other case, spacing, "?"): one query, the union of good documents
    ([answered("a1"), answered("a2", "how do i  retry a run", minute=5)],
     [judged("a1", "good", 1, 1), judged("a2", "good", 2, 6)],
     {"how do i retry a run": ["dagster/retries.md", "dagster/schedules.md"]}, []),
    # a judgement whose answer record is missing is skipped, the rest count
    ([answered("a1")], [judged("a1", "good", 2, 1), judged("a9", "good", 1, 2)],
     {"how do i retry a run": ["dagster/schedules.md"]}, []),
])
def test_judgements_become_relevant_documents_or_review_rows(answers, judgements, relevant, reviewed):
    eval_set = build_feedback_eval_set(answers, judgements)
    assert {query.query_id: query.relevant for query in eval_set.queries} == {
        query_id(question): documents for question, documents in relevant.items()
    }
    assert [item.citation for item in eval_set.review] == reviewed
    assert eval_set.judgements == len(judgements) and eval_set.answers == len(answers)


def test_the_set_is_a_beir_folder_the_evaluation_reads_and_is_the_same_when_nothing_changed(tmp_path):
    answers = [answered("a1"), answered("a2", "What is a schedule?", minute=3)]
    judgements = [judged("a2", "good", 2, 4), judged("a1", "good", 1, 1), judged("a1", "good", 3, 2)]
    location = str(tmp_path / "feedback")
    write_eval_set(location, build_feedback_eval_set(answers, judgements))
    first = {path.name: path.read_bytes() for path in (tmp_path / "feedback").rglob("*") if path.is_file()}
    write_eval_set(location, build_feedback_eval_set(reversed(answers), reversed(judgements)))
    assert {path.name: path.read_bytes() for path in (tmp_path / "feedback").rglob("*") if path.is_file()} == first

    loaded = load_eval_set(tmp_path / "feedback")
    assert loaded.queries == {query_id("how do i retry a run"): "How do I retry a run?", query_id("what is a schedule"): "What is a schedule?"}
    assert loaded.qrels[query_id("how do i retry a run")] == {"dagster/retries.md": 1, "ops/retries.md": 1}
    assert loaded.sources == ["dagster", "ops"]
    assert b'"chunk_ids": ["a1-c1", "a1-c3"]' in first["queries.jsonl"]

    write_eval_set(location, build_feedback_eval_set(answers, [judged("a1", "bad", None, 9)]))
    assert not (tmp_path / "feedback").exists()  # nothing relevant left: no set to score


def test_the_fingerprint_changes_with_each_judgement_only(tmp_path):
    store = FileFeedbackStore(str(tmp_path))
    empty = store.judgements_fingerprint()
    store.record_answer(answered("a_0123456789abcdef"))
    assert store.judgements_fingerprint() == empty
    store.record_judgement(judged("a_0123456789abcdef", "good", 1, 1))
    assert store.judgements_fingerprint() != empty


def listing(*relatives: str, quarantined: str | None = None) -> SourceListing:
    return SourceListing(
        files=[SourceFile(relative=relative, size=1, version="v") for relative in relatives],
        quarantined=[SkippedFile(relative=quarantined, reason="unreadable")] if quarantined else [],
    )


@pytest.mark.parametrize(("listings", "relevant", "deleted"), [
    # the file its user deleted is relevant no more; the others stay
    ({"dagster": listing("schedules.md"), "ops": listing("retries.md")},
     ["dagster/schedules.md", "ops/retries.md"], ["dagster/retries.md"]),
    # a file that cannot be read any more stays relevant: the evaluation must see it lost
    ({"dagster": listing("schedules.md", quarantined="retries.md"), "ops": listing("retries.md")},
     ["dagster/retries.md", "dagster/schedules.md", "ops/retries.md"], []),
    # a removed source takes its documents along; a corpus source is judged as a whole, not by file
    ({"dagster": listing("corpus.jsonl")}, ["dagster/retries.md", "dagster/schedules.md"], ["ops/retries.md"]),
])
def test_documents_deleted_by_their_user_drop_out(listings, relevant, deleted):
    eval_set = build_feedback_eval_set([answered("a1")], [judged("a1", "good", None, 1)], deleted_documents(listings))
    assert [query.relevant for query in eval_set.queries] == [relevant]
    assert eval_set.deleted == deleted


def test_on_object_storage_the_store_and_the_set_live_in_the_bucket(s3_env: S3Server) -> None:
    s3_env.client().create_bucket(Bucket="feedback-kb")
    store = FileFeedbackStore("s3://feedback-kb/data/feedback")
    empty = store.judgements_fingerprint()
    answer = answered("a_0123456789abcdef")
    store.record_answer(answer)
    store.record_judgement(judged(answer.answer_id, "good", 2, 1))
    assert store.judgements_fingerprint() != empty
    write_eval_set("s3://feedback-kb/data/eval_generated/feedback", build_feedback_eval_set(store.answers(), store.judgements()))
    assert s3_env.keys("feedback-kb", "data/eval_generated/") == [
        f"data/eval_generated/feedback/{name}" for name in ("eval.json", "qrels/test.tsv", "queries.jsonl")
    ]
    write_eval_set("s3://feedback-kb/data/eval_generated/feedback", build_feedback_eval_set([], []))
    assert s3_env.keys("feedback-kb", "data/eval_generated/") == []
