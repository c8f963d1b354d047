"""What the CLI and the server record when they answer: an answer or a list of hits as the
``AnsweredQuery`` a later judgement refers to by its id. One function per door's result, so the
CLI, the HTTP API, MCP and the page record the same thing."""

from __future__ import annotations

from collections.abc import Sequence

from ai_assets.core.answering.ask import Answer
from ai_assets.core.feedback.store import AnsweredQuery, CitedPassage, new_answer_id
from ai_assets.core.retrieval.search import SearchHit


def answered_ask(answer: Answer, knowledge_base: str, client: str) -> AnsweredQuery:
    """An ``ask`` answer with the passages it cites, numbered as the answer cites them."""
    return AnsweredQuery(
        answer_id=new_answer_id(), knowledge_base=knowledge_base, kind="ask", question=answer.question,
        answer=answer.answer,
        passages=[
            CitedPassage(
                number=cited.number, chunk_id=cited.chunk_id, source=cited.source, doc_key=cited.doc_key,
                section=cited.section, page=cited.page,
            )
            for cited in answer.citations
        ],
        embedder=answer.embedder, table=answer.table, index_version=answer.index_version, mode=answer.mode,
        client=client,
    )


def answered_search(
    query: str, hits: Sequence[SearchHit], *, knowledge_base: str, embedder: str, table: str, index_version: int,
    mode: str, client: str,
) -> AnsweredQuery:
    """A search's hits, numbered by rank from 1 (the number a judgement's ``citation`` names)."""
    return AnsweredQuery(
        answer_id=new_answer_id(), knowledge_base=knowledge_base, kind="search", question=query,
        passages=[
            CitedPassage(
                number=rank, chunk_id=hit.chunk_id, source=hit.source, doc_key=hit.doc_key, section=hit.section,
                page=hit.page,
            )
            for rank, hit in enumerate(hits, start=1)
        ],
        embedder=embedder, table=table, index_version=index_version, mode=mode, client=client,
    )
