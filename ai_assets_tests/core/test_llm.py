"""Structured answers and judgments from a chat model: parsing, retries on invalid replies, counting."""

from __future__ import annotations

import json

import pytest

from ai_assets.core.answering.generated import GeneratedAnswer, generate_answer
from ai_assets.core.evaluation.answers import AnswerResult, JudgeVerdict, with_llm_judgment
from ai_assets.core.llm import InvalidReply, structured_reply
from ai_assets.core.retrieval.search import SearchHit


class ScriptedChat:
    """A deterministic chat model: returns the scripted replies in order, recording the prompts."""

    def __init__(self, replies: list[str]) -> None:
        self.replies, self.prompts = list(replies), []

    def complete(self, system: str, user: str) -> str:
        self.prompts.append(user)
        return self.replies.pop(0)


def hit(chunk_id: str, text: str) -> SearchHit:
    return SearchHit(
        chunk_id=chunk_id, source="s", doc_key=f"s/{chunk_id}", doc_path=chunk_id, doc_title="t",
        doc_content_hash="h", chunk_index=0, text=text, run_id="r", score=1.0,
    )


def test_valid_reply_is_parsed_even_inside_prose() -> None:
    chat = ScriptedChat(['Sure! {"faithfulness": 0.5, "correctness": 1, "explanation": "ok"} Done.'])
    verdict = structured_reply(chat, "system", "user", JudgeVerdict)
    assert verdict == JudgeVerdict(faithfulness=0.5, correctness=1.0, explanation="ok")


def test_invalid_replies_are_retried_with_the_error_then_raise() -> None:
    chat = ScriptedChat(["not json", '{"faithfulness": 7, "correctness": 1}', '{"faithfulness": 1, "correctness": 0.25}'])
    verdict = structured_reply(chat, "system", "grade this", JudgeVerdict)
    assert verdict.correctness == 0.25 and len(chat.prompts) == 3
    assert "previous reply was invalid" in chat.prompts[1] and "no JSON object" in chat.prompts[1]
    assert "less than or equal to 1" in chat.prompts[2]

    with pytest.raises(InvalidReply, match="no valid JudgeVerdict after 3 attempts"):
        structured_reply(ScriptedChat(["{}", "[]", "nope"]), "system", "user", JudgeVerdict)


def test_generated_answer_cites_given_passages_inline_and_drops_invented_ones() -> None:
    chat = ScriptedChat([json.dumps({"answer": "Use max_retries [2][7]. Retries back off [1]."})])
    passages = [hit("c1", "Retries back off."), hit("c2", "Set max_retries.")]
    answer = generate_answer(chat, "how to retry?", passages)
    assert answer == GeneratedAnswer(answer="Use max_retries [2]. Retries back off [1].", cited=[2, 1])
    assert "[1] t (s/c1)\nRetries back off.\n\n[2] t (s/c2)\nSet max_retries." in chat.prompts[0]


def test_judgment_is_added_or_the_failure_recorded() -> None:
    base = AnswerResult(
        eval_set="e", query_id="q", question="how to retry?", reference="Set max_retries on the job.",
        answer="x", answer_f1=0.0, context_containment=1.0, cited_chunk_ids=[],
    )
    hits = [hit("c1", "Set max_retries on the job.")]
    good = ScriptedChat([
        json.dumps({"answer": "Set max_retries on the job [1]."}),
        json.dumps({"faithfulness": 1.0, "correctness": 0.9, "explanation": "matches"}),
    ])
    judged = with_llm_judgment(base, good, hits)
    assert (judged.faithfulness, judged.correctness, judged.generated_answer_f1) == (1.0, 0.9, 1.0)
    assert judged.generated_cited_chunk_ids == ["c1"] and judged.llm_error is None

    failed = with_llm_judgment(base, ScriptedChat(["junk"] * 3), hits)
    assert failed.llm_error and "AnswerReply" in failed.llm_error and failed.faithfulness is None
