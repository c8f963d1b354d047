"""Answer quality without a language model: an extractive answer from the retrieved chunks.

The extractive answer is the retrieved sentence closest to the question (cosine of the same
embedding model). It is scored against the reference answer with SQuAD-style token F1, and
the retrieved context is scored by containment: the share of the reference answer's tokens
that appear anywhere in it (can the answer be found in what we retrieved at all?).
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from pydantic import BaseModel

from ai_assets.core.evaluation.beir import EvalSet, EvalSetError, read_jsonl_records
from ai_assets.core.llm import ChatModel, InvalidReply, generate_answer, judge_answer
from ai_assets.core.retrieval.search import Searcher, SearchHit

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = str.maketrans("", "", string.punctuation)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")


class ReferenceAnswer(BaseModel):
    query_id: str
    answer: str


class AnswerResult(BaseModel):
    eval_set: str
    query_id: str
    question: str
    reference: str
    answer: str  # extractive
    answer_f1: float
    context_containment: float
    cited_chunk_ids: list[str]
    # Where each cited chunk is, as `doc · section · p. N` (SearchHit.citation), in the ids' order.
    citations: list[str] = []
    # With a chat model configured: its answer, the judge's scores, or why there are none.
    generated_answer: str | None = None
    generated_cited_chunk_ids: list[str] = []
    generated_citations: list[str] = []
    generated_answer_f1: float | None = None
    faithfulness: float | None = None
    correctness: float | None = None
    llm_error: str | None = None


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


def split_sentences(text: str) -> list[str]:
    sentences = (" ".join(part.split()) for part in _SENTENCE_END.split(text))
    return [sentence for sentence in sentences if len(sentence.split()) >= 3]


def extractive_answer(
    question_vector: np.ndarray, hits: Sequence[SearchHit], embed: Callable[[Sequence[str]], np.ndarray]
) -> tuple[str, list[str]]:
    """The retrieved sentence most similar to the question (cosine), and the chunk it came from."""
    candidates = [(sentence, hit.chunk_id) for hit in hits for sentence in split_sentences(hit.text)]
    if not candidates:
        return "", []
    vectors = embed([sentence for sentence, _ in candidates])
    norms = np.linalg.norm(vectors, axis=1) * max(float(np.linalg.norm(question_vector)), 1e-12)
    similarities = (vectors @ question_vector) / np.maximum(norms, 1e-12)
    best = int(np.argmax(similarities))
    return candidates[best][0], [candidates[best][1]]


ANSWER_CONTEXT_CHUNKS = 5


def evaluate_answers(
    searcher: Searcher,
    eval_set: EvalSet,
    answers: dict[str, str],
    k: int = ANSWER_CONTEXT_CHUNKS,
    chat: ChatModel | None = None,
) -> list[AnswerResult]:
    """Extractive answer and scores for every question that has a reference answer; with a chat
    model also a generated answer and the judge's faithfulness and correctness."""
    results = []
    question_ids = [query_id for query_id in sorted(answers) if query_id in eval_set.queries]
    question_vectors = searcher.encode_queries([eval_set.queries[query_id] for query_id in question_ids])
    for query_id, question_vector in zip(question_ids, question_vectors, strict=True):
        question, reference = eval_set.queries[query_id], answers[query_id]
        hits = searcher.search(question, mode="hybrid", limit=k, sources=eval_set.sources or None)
        answer, cited = extractive_answer(question_vector, hits, searcher.embedder.embed)
        result = AnswerResult(
            eval_set=eval_set.name,
            query_id=query_id,
            question=question,
            reference=reference,
            answer=answer,
            answer_f1=token_f1(answer, reference),
            context_containment=containment(" ".join(hit.text for hit in hits), reference),
            cited_chunk_ids=cited,
            citations=citations_of(cited, hits),
        )
        results.append(result if chat is None else with_llm_judgment(result, chat, hits))
    return results


def citations_of(chunk_ids: Sequence[str], hits: Sequence[SearchHit]) -> list[str]:
    by_id = {hit.chunk_id: hit.citation for hit in hits}
    return [by_id[chunk_id] for chunk_id in chunk_ids if chunk_id in by_id]


def with_llm_judgment(result: AnswerResult, chat: ChatModel, hits: Sequence[SearchHit]) -> AnswerResult:
    """Add the chat model's answer and the judge's verdict; an invalid reply is recorded, not raised."""
    try:
        generated = generate_answer(chat, result.question, hits)
        verdict = judge_answer(chat, result.question, result.reference, generated.answer, hits)
    except InvalidReply as error:
        return result.model_copy(update={"llm_error": str(error)})
    return result.model_copy(
        update={
            "generated_answer": generated.answer,
            "generated_cited_chunk_ids": generated.cited_chunk_ids,
            "generated_citations": citations_of(generated.cited_chunk_ids, hits),
            "generated_answer_f1": token_f1(generated.answer, result.reference),
            "faithfulness": verdict.faithfulness,
            "correctness": verdict.correctness,
        }
    )
