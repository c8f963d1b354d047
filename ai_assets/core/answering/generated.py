"""The answer of a chat model, grounded in numbered passages and citing them inline as [1], [2]."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Protocol

from pydantic import BaseModel

from ai_assets.core.llm import ChatModel, structured_reply
from ai_assets.core.retrieval.search import SearchHit, citation

_CITATION = re.compile(r"\[(\d+)\]")

ANSWER_SYSTEM = (
    "You answer questions about software documentation using only the numbered context passages given. "
    "Cite every passage you use inline with its number in square brackets, like [1] or [2][3], right after "
    'the claim it supports. Reply with a JSON object {"answer": string}. If the passages do not contain '
    "the answer, say so and cite nothing."
)


class AnswerReply(BaseModel):
    answer: str


class GeneratedAnswer(BaseModel):
    answer: str
    cited: list[int] = []  # passage numbers (1-based) cited in the answer, in order of first citation


class Located(Protocol):
    """Where a passage is: a search hit, or an answer's citation of one."""

    doc_key: str
    doc_title: str
    section: str | None
    page: int | None
    page_end: int | None


def passage_label(hit: Located) -> str:
    """Where a passage comes from, as every command cites it (``search.citation``)."""
    return citation(hit.doc_title or hit.doc_key, hit.section, hit.page, hit.page_end)


def numbered_context(hits: Sequence[SearchHit]) -> str:
    return "\n\n".join(f"[{number}] {passage_label(hit)} ({hit.doc_key})\n{hit.text}" for number, hit in enumerate(hits, 1))


def generate_answer(chat: ChatModel, question: str, hits: Sequence[SearchHit]) -> GeneratedAnswer:
    """The chat model's answer from the passages; a citation of a passage that was not given is
    not evidence, so it is dropped from the text and the list."""
    reply = structured_reply(
        chat, ANSWER_SYSTEM, f"Question: {question}\n\nContext passages:\n{numbered_context(hits)}", AnswerReply
    )

    def keep_real(match: re.Match[str]) -> str:
        return match.group(0) if 1 <= int(match.group(1)) <= len(hits) else ""

    answer = _CITATION.sub(keep_real, reply.answer).strip()
    cited = list(dict.fromkeys(int(number) for number in _CITATION.findall(answer)))
    return GeneratedAnswer(answer=answer, cited=cited)
