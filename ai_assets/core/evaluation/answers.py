"""Answer quality: the answers `ai-assets ask` gives, scored against reference answers.

The extractive answer (core/answering) is scored against the reference answer with SQuAD-style
token F1, and the retrieved context by containment: the share of the reference answer's tokens
that appear anywhere in it (can the answer be found in what we retrieved at all?). Citations are
scored by whether they point at a document the eval set judges relevant to the question. With a
chat model, its cited answer is scored the same way and an LLM judge grades faithfulness and
correctness.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from pydantic import BaseModel, Field

from ai_assets.core.answering.ask import (
    ANSWER_CONTEXT_CHUNKS,
    Citation,
    extractive_answer,
    generated_answer,
    without_citations,
)
from ai_assets.core.answering.generated import numbered_context
from ai_assets.core.evaluation.beir import EvalSet, EvalSetError, read_jsonl_records
from ai_assets.core.evaluation.metrics import relevant_documents
from ai_assets.core.llm import ChatModel, InvalidReply, structured_reply
from ai_assets.core.retrieval.search import Searcher, SearchHit

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = str.maketrans("", "", string.punctuation)


class ReferenceAnswer(BaseModel):
    query_id: str
    answer: str


class AnswerResult(BaseModel):
    eval_set: str
    query_id: str
    question: str
    reference: str
    answer: str  # extractive, as `ai-assets ask` prints it offline
    answer_f1: float
    context_containment: float
    cited_chunk_ids: list[str]
    # Where each cited chunk is, as `doc · section · p. N` (SearchHit.citation), in the ids' order.
    citations: list[str] = []
    # Whether a cited chunk is of a document judged relevant; None: the question has no judgments.
    cited_relevant: bool | None = None
    # With a chat model configured: its answer, the judge's scores, or why there are none.
    generated_answer: str | None = None
    generated_cited_chunk_ids: list[str] = []
    generated_citations: list[str] = []
    generated_cited_relevant: bool | None = None
    generated_answer_f1: float | None = None
    faithfulness: float | None = None
    correctness: float | None = None
    llm_error: str | None = None


class JudgeVerdict(BaseModel):
    faithfulness: float = Field(ge=0.0, le=1.0, description="Is every claim supported by the context?")
    correctness: float = Field(ge=0.0, le=1.0, description="Does it agree with the reference answer?")
    explanation: str = ""


JUDGE_SYSTEM = (
    "You grade an answer to a question. Reply with a JSON object "
    '{"faithfulness": number 0..1, "correctness": number 0..1, "explanation": string}. '
    "faithfulness: the share of the answer's claims supported by the context passages. "
    "correctness: how well the answer agrees with the reference answer (1 = same facts)."
)


def read_answers(path: Path) -> dict[str, str]:
    """``answers.jsonl``: one ``{"_id": ..., "answer": ...}`` per line."""
    answers: dict[str, str] = {}
    for line_number, record in read_jsonl_records(path):
        if "_id" not in record or not isinstance(record.get("answer"), str):
            raise EvalSetError(f"{path}:{line_number}: an answer needs `_id` and an `answer` string")
        answers[str(record["_id"])] = record["answer"]
    return answers


def normalized_tokens(text: str) -> list[str]:
    """SQuAD normalization: lower case, no punctuation, no articles, single spaces."""
    lowered = text.lower().translate(_PUNCTUATION)
    return _ARTICLES.sub(" ", lowered).split()


def token_f1(prediction: str, reference: str) -> float:
    predicted, expected = normalized_tokens(prediction), normalized_tokens(reference)
    if not predicted or not expected:
        return float(predicted == expected)
    common = sum((Counter(predicted) & Counter(expected)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(predicted), common / len(expected)
    return 2 * precision * recall / (precision + recall)


def containment(context: str, reference: str) -> float:
    """Share of the reference's distinct tokens that occur in the context."""
    expected = set(normalized_tokens(reference))
    if not expected:
        return 0.0
    return len(expected & set(normalized_tokens(context))) / len(expected)


def cites_relevant(citations: Sequence[Citation], judgments: dict[str, int] | None) -> bool | None:
    relevant = relevant_documents(judgments or {})
    if not relevant:
        return None
    return any(cited.doc_key in relevant for cited in citations)


def evaluate_answers(
    searcher: Searcher,
    eval_set: EvalSet,
    answers: dict[str, str],
    k: int = ANSWER_CONTEXT_CHUNKS,
    chat: ChatModel | None = None,
) -> list[AnswerResult]:
    """The extractive answer and its scores for every question that has a reference answer;
    with a chat model also a generated answer and the judge's faithfulness and correctness.
    Each question is embedded once, for its search and its answer."""
    results = []
    question_ids = [query_id for query_id in sorted(answers) if query_id in eval_set.queries]
    question_vectors = searcher.encode_queries([eval_set.queries[query_id] for query_id in question_ids])
    for query_id, question_vector in zip(question_ids, question_vectors, strict=True):
        question, reference = eval_set.queries[query_id], answers[query_id]
        hits = searcher.search(
            question, mode="hybrid", limit=k, sources=eval_set.sources or None, query_vector=question_vector
        )
        answer, citations = extractive_answer(question_vector, hits, searcher.embedder.embed, question=question)
        result = AnswerResult(
            eval_set=eval_set.name,
            query_id=query_id,
            question=question,
            reference=reference,
            answer=answer,
            answer_f1=token_f1(without_citations(answer), reference),
            context_containment=containment(" ".join(hit.text for hit in hits), reference),
            cited_chunk_ids=[cited.chunk_id for cited in citations],
            citations=citations_of([cited.chunk_id for cited in citations], hits),
            cited_relevant=cites_relevant(citations, eval_set.qrels.get(query_id)),
        )
        results.append(result if chat is None else with_llm_judgment(result, chat, hits, eval_set.qrels.get(query_id)))
    return results


def citations_of(chunk_ids: Sequence[str], hits: Sequence[SearchHit]) -> list[str]:
    by_id = {hit.chunk_id: hit.citation for hit in hits}
    return [by_id[chunk_id] for chunk_id in chunk_ids if chunk_id in by_id]


def judge_answer(
    chat: ChatModel, question: str, reference: str, answer: str, hits: Sequence[SearchHit]
) -> JudgeVerdict:
    user = (
        f"Question: {question}\n\nReference answer: {reference}\n\nAnswer to grade: {answer}\n\n"
        f"Context passages:\n{numbered_context(hits)}"
    )
    return structured_reply(chat, JUDGE_SYSTEM, user, JudgeVerdict)


def with_llm_judgment(
    result: AnswerResult, chat: ChatModel, hits: Sequence[SearchHit], judgments: dict[str, int] | None = None
) -> AnswerResult:
    """Add the chat model's answer and the judge's verdict; an invalid reply is recorded, not raised."""
    try:
        answer, citations = generated_answer(chat, result.question, hits)
        verdict = judge_answer(chat, result.question, result.reference, answer, hits)
    except InvalidReply as error:
        return result.model_copy(update={"llm_error": str(error)})
    return result.model_copy(
        update={
            "generated_answer": answer,
            "generated_cited_chunk_ids": [cited.chunk_id for cited in citations],
            "generated_citations": citations_of([cited.chunk_id for cited in citations], hits),
            "generated_cited_relevant": cites_relevant(citations, judgments),
            "generated_answer_f1": token_f1(without_citations(answer), result.reference),
            "faithfulness": verdict.faithfulness,
            "correctness": verdict.correctness,
        }
    )
