"""`ai-assets ask`: retrieve from a table version, answer, and cite every passage the answer rests on.

Offline the answer is extractive: the retrieved sentences closest to the question, each followed
by the number of its passage. With a chat model it is generated from the numbered passages and
cites them inline the same way; when the chat model fails, the extractive answer is given with a
warning instead. Each citation carries the row's lineage (document, section, page, the run that
wrote it), and the answer the table version it was retrieved from, so a wrong answer can be traced.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Literal

import numpy as np
from pydantic import BaseModel, computed_field

from ai_assets.core.answering.extractive import extract_sentences
from ai_assets.core.answering.generated import generate_answer, passage_label
from ai_assets.core.embedding.openai_errors import MalformedReply, RequestRejected, ServiceUnavailable
from ai_assets.core.llm import ChatModel, InvalidReply
from ai_assets.core.retrieval.search import Searcher, SearchHit, SearchMode

ANSWER_CONTEXT_CHUNKS = 5
_CITATION_MARK = re.compile(r"\s*\[\d+\]")
# What a chat model can fail with, after its own retries: the answer falls back to extractive.
CHAT_FAILURES = (InvalidReply, ServiceUnavailable, RequestRejected, MalformedReply, OSError)


class EmptyQuestion(ValueError):
    """A question with no words."""


class Citation(BaseModel):
    number: int  # the [n] the answer cites it by
    chunk_id: str
    source: str
    doc_key: str
    doc_path: str
    doc_title: str
    section: str | None
    page: int | None
    page_end: int | None
    score: float  # retrieval score of the chunk
    text: str  # the span the answer rests on: the sentences taken from it, or the whole passage given to the chat model
    run_id: str  # the Dagster run that wrote the row: `ai-assets trace --chunk CHUNK_ID`

    @computed_field  # in --json and the HTTP API too: the label every command and the page cite by
    @property
    def label(self) -> str:
        return passage_label(self)


class Answer(BaseModel):
    question: str
    answer: str
    answer_kind: Literal["extractive", "generated", "none"]
    citations: list[Citation]
    embedder: str
    table: str
    index_version: int
    mode: SearchMode
    warnings: list[str] = []


def citation(number: int, hit: SearchHit, text: str) -> Citation:
    return Citation(
        number=number,
        **hit.model_dump(include={"chunk_id", "source", "doc_key", "doc_path", "doc_title", "section", "page", "page_end", "score", "run_id"}),
        text=text,
    )


def extractive_answer(
    question_vector: np.ndarray, hits: Sequence[SearchHit], embed: Callable[[Sequence[str]], np.ndarray], question: str = ""
) -> tuple[str, list[Citation]]:
    """The best sentences of the hits, each followed by its passage's [n]; the cited passages with
    the sentences taken from each."""
    sentences = extract_sentences(question_vector, hits, embed, question=question)
    spans: dict[int, list[str]] = {}
    for sentence in sentences:
        spans.setdefault(sentence.hit_index, []).append(sentence.text)
    answer = " ".join(f"{sentence.text} [{sentence.hit_index + 1}]" for sentence in sentences)
    return answer, [citation(index + 1, hits[index], " ".join(texts)) for index, texts in sorted(spans.items())]


def generated_answer(chat: ChatModel, question: str, hits: Sequence[SearchHit]) -> tuple[str, list[Citation]]:
    generated = generate_answer(chat, question, hits)
    return generated.answer, [citation(number, hits[number - 1], hits[number - 1].text) for number in sorted(generated.cited)]


def without_citations(answer: str) -> str:
    """The answer's words alone, as scored against a reference answer."""
    return _CITATION_MARK.sub("", answer).strip()


def normalized_question(question: str) -> str:
    """The question with its whitespace collapsed; refused when nothing is left."""
    text = " ".join(question.split())
    if not text:
        raise EmptyQuestion("the question is empty: ask something, e.g. `ai-assets ask \"how do I retry a failed run?\"`")
    return text


def answer_question(
    searcher: Searcher,
    question: str,
    k: int = ANSWER_CONTEXT_CHUNKS,
    mode: SearchMode = "hybrid",
    sources: Sequence[str] | None = None,
    chat: ChatModel | None = None,
    query_vector: np.ndarray | None = None,
    where: str | None = None,
) -> Answer:
    """Answer ``question`` from the ``k`` best chunks of the searcher's table version; ``where``: a
    condition the chunks must meet (``SearchFilters.where``, a caller's scope)."""
    text = normalized_question(question)
    warnings = []
    clipped = searcher.clipped(text)
    if clipped != text:
        warnings.append(
            f"the question is longer than the {searcher.embedder.spec.model} window of "
            f"{searcher.embedder.max_text_tokens} tokens: its first {len(clipped.split())} of "
            f"{len(text.split())} words were embedded (full-text search used all of them)"
        )
    vector = searcher.encode_query(text) if query_vector is None else query_vector
    hits = searcher.search(text, mode=mode, limit=k, sources=sources, query_vector=vector, where=where)
    answer = Answer(
        question=text, answer="", answer_kind="none", citations=[], embedder=searcher.embedder.spec.name,
        table=searcher.table.name, index_version=searcher.table.version, mode=mode, warnings=warnings,
    )
    if not hits:
        return answer.model_copy(
            update={"answer": f"No passage of {answer.table} (version {answer.index_version}) matches the question."}
        )
    if chat is not None:
        try:
            generated, citations = generated_answer(chat, text, hits)
            return answer.model_copy(update={"answer": generated, "answer_kind": "generated", "citations": citations})
        except CHAT_FAILURES as error:
            warnings.append(f"the chat model failed ({error}); this is the extractive answer")
    extracted, citations = extractive_answer(vector, hits, searcher.embedder.embed, question=text)
    return answer.model_copy(
        update={
            "answer": extracted, "answer_kind": "extractive" if extracted else "none", "citations": citations,
            "warnings": warnings,
        }
    )
