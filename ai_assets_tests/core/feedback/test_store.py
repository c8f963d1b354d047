import stat

import pytest

from ai_assets.core.feedback import (
    AnsweredQuery,
    CitedPassage,
    FeedbackStoreUnavailable,
    FileFeedbackStore,
    Judgement,
    UnknownAnswer,
    new_answer_id,
)


def answered(answer_id: str) -> AnsweredQuery:
    return AnsweredQuery(
        answer_id=answer_id, knowledge_base="docs", kind="ask", question="how do I retry?", answer="Use a policy [1].",
        passages=[CitedPassage(number=1, chunk_id="c1", source="dagster", doc_key="dagster/retries.md", page=None)],
        embedder="minilm", table="chunks__minilm", index_version=7, mode="hybrid",
    )


def test_answers_and_judgements_round_trip(tmp_path):
    store = FileFeedbackStore(str(tmp_path / "feedback"))
    answer_id = new_answer_id()
    store.record_answer(answered(answer_id))
    judged = store.record_judgement(Judgement(answer_id=answer_id, verdict="good", citation=1, note="right page"))
    assert judged.passages[0].chunk_id == "c1"
    store.record_judgement(Judgement(answer_id=answer_id, verdict="bad"))
    assert [answer.answer_id for answer in store.answers()] == [answer_id]
    assert sorted(judgement.verdict for judgement in store.judgements()) == ["bad", "good"]
    # a second store on the same location (another process, another machine) reads the same records
    assert store.answer(answer_id) == FileFeedbackStore(str(tmp_path / "feedback")).answer(answer_id)


@pytest.mark.parametrize("answer_id", ["a_0000000000000000", "not-an-id", "../../etc/passwd"])
def test_a_judgement_of_an_unknown_answer_is_refused_and_stores_nothing(tmp_path, answer_id):
    store = FileFeedbackStore(str(tmp_path))
    with pytest.raises(UnknownAnswer, match="answer"):
        store.record_judgement(Judgement(answer_id=answer_id, verdict="good"))
    assert list(store.judgements()) == []


def test_a_citation_the_answer_does_not_have_is_refused(tmp_path):
    store = FileFeedbackStore(str(tmp_path))
    answer_id = new_answer_id()
    store.record_answer(answered(answer_id))
    with pytest.raises(ValueError, match=r"no citation \[4\] \(its citations: 1\)"):
        store.record_judgement(Judgement(answer_id=answer_id, verdict="good", citation=4))
    assert list(store.judgements()) == []


def test_a_store_that_cannot_be_written_says_where_and_keeps_what_it_had(tmp_path):
    store = FileFeedbackStore(str(tmp_path / "feedback"))
    first = new_answer_id()
    store.record_answer(answered(first))
    # a file where the judgements folder should be: no permission trick that root would ignore
    (tmp_path / "feedback" / "judgements").write_text("in the way")
    with pytest.raises(FeedbackStoreUnavailable, match=r"cannot write the feedback store at .*feedback"):
        store.record_judgement(Judgement(answer_id=first, verdict="bad"))
    assert [answer.answer_id for answer in store.answers()] == [first]
    assert stat.S_ISREG((tmp_path / "feedback" / "judgements").stat().st_mode)


def test_a_torn_or_foreign_record_is_skipped_not_fatal(tmp_path):
    store = FileFeedbackStore(str(tmp_path))
    answer_id = new_answer_id()
    store.record_answer(answered(answer_id))
    (tmp_path / "answers" / "a_1111111111111111.json").write_text("{not json")
    (tmp_path / "answers" / "a_2222222222222222.json.abcd.tmp").write_text("partial")
    assert [answer.answer_id for answer in store.answers()] == [answer_id]


def test_an_ask_answer_is_recorded_with_its_citations_as_numbered(tmp_path):
    from ai_assets.core.answering.ask import Answer, Citation
    from ai_assets.core.feedback.records import answered_ask

    cited = Citation(
        number=2, chunk_id="c9", source="dagster", doc_key="dagster/a.md", doc_path="a.md", doc_title="A",
        section="Retries", page=3, page_end=3, score=0.5, text="Use a policy.", run_id="r1",
    )
    answer = Answer(
        question="q?", answer="Use a policy. [2]", answer_kind="extractive", citations=[cited], embedder="minilm",
        table="chunks__minilm", index_version=4, mode="hybrid",
    )
    store = FileFeedbackStore(str(tmp_path))
    record = answered_ask(answer, knowledge_base="docs", client="cli")
    store.record_answer(record)
    store.record_judgement(Judgement(answer_id=record.answer_id, verdict="good", citation=2))
    assert store.answer(record.answer_id).passages[0].model_dump() == {
        "number": 2, "chunk_id": "c9", "source": "dagster", "doc_key": "dagster/a.md", "section": "Retries", "page": 3,
    }
