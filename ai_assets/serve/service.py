"""What the HTTP API, MCP tools and the page do, once: search, ask, a chunk's lineage, a document,
feedback; each for one caller, inside its scope, on one served version.

The work is the CLI's own: ``Searcher.search``, ``answer_question``, ``reading.trace`` and the
feedback store. Errors are ``ApiError``s carrying the HTTP status and a message that says what
to change; the doors turn them into a JSON error or an MCP tool error.
"""

from __future__ import annotations

import logging
import mimetypes
from collections.abc import Callable
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, computed_field, field_validator

from ai_assets.core.answering.ask import Answer, answer_question, normalized_question
from ai_assets.core.feedback import FeedbackStoreUnavailable, Judgement, UnknownAnswer
from ai_assets.core.feedback.records import answered_ask, answered_search
from ai_assets.core.lineage import ChunkTrace
from ai_assets.core.retrieval.filters import SearchFilters
from ai_assets.core.retrieval.search import SearchHit, SearchMode, citation, fetch_chunk, fetch_document
from ai_assets.serve.batching import QueryBatcher
from ai_assets.serve.library import Library, NotReady, ServedKnowledgeBase, Snapshot
from ai_assets.serve.scopes import Caller, Forbidden

log = logging.getLogger("ai_assets.serve")
Client = Literal["http", "page", "mcp"]


class ApiError(Exception):
    """A request that cannot be answered: its HTTP status and a message saying what to change."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class Served(BaseModel):
    """Which version answered."""

    knowledge_base: str
    embedder: str
    table: str
    index_version: int


class Query(BaseModel):
    model_config = ConfigDict(extra="forbid")

    knowledge_base: str | None = Field(default=None, description="Default: the server's first knowledge base.")
    k: int = Field(default=10, ge=1, description="Chunks to return (at most AI_ASSETS_SERVE_MAX_K).")
    mode: SearchMode = "hybrid"
    filters: SearchFilters = Field(default_factory=SearchFilters)


class SearchRequest(Query):
    query: str = Field(min_length=1, description="The words to search for.")

    @field_validator("query")
    @classmethod
    def _has_words(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("the query is empty: give the words to search for")
        return value


class AskRequest(Query):
    question: str = Field(min_length=1, description="The question to answer from the passages.")
    k: int = Field(default=5, ge=1, description="Passages to answer from.")
    extractive: bool = Field(default=False, description="Answer from the passages even when a chat model is configured.")

    @field_validator("question")
    @classmethod
    def _has_words(cls, value: str) -> str:
        return normalized_question(value)


class Hit(SearchHit):
    rank: int
    document_url: str  # the document's file; #page=N for a PDF

    @computed_field  # in the JSON too: the label ask, search and trace print (title · section · p. N)
    @property
    def citation(self) -> str:
        return citation(self.doc_title or self.doc_key, self.section, self.page, self.page_end)


class SearchResponse(Served):
    answer_id: str | None = Field(description="Give it to POST /v1/feedback to judge these hits (null: not recorded).")
    query: str
    mode: SearchMode
    hits: list[Hit]
    warnings: list[str] = []


class AskResponse(Answer):
    knowledge_base: str
    answer_id: str | None
    document_urls: dict[int, str] = Field(description="Each citation number's document link (#page=N for a PDF).")


class ChunkResponse(ChunkTrace):
    knowledge_base: str
    source: str
    doc_title: str
    document_url: str


class DocumentResponse(Served):
    doc_key: str
    source: str
    title: str
    path: str
    content_hash: str
    chunks: int
    pages: list[int]
    file_url: str
    page_urls: dict[int, str]
    run_ids: list[str]


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    answer_id: str = Field(description="The answer_id of a /v1/ask or /v1/search response.")
    verdict: Literal["good", "bad"]
    citation: int | None = Field(default=None, description="The [n] judged; omit to judge the whole answer.")
    note: str = Field(default="", max_length=2000)
    knowledge_base: str | None = None


class FeedbackResponse(BaseModel):
    answer_id: str
    verdict: Literal["good", "bad"]
    citation: int | None
    recorded: bool = True


def file_url(doc_key: str, page: int | None = None) -> str:
    url = f"/v1/files/{doc_key}"
    return f"{url}#page={page}" if page is not None and doc_key.lower().endswith(".pdf") else url


class Service:
    """The operations, for a caller, on the library's served versions."""

    def __init__(
        self, library: Library, max_k: int, chat_model=None, on_batch: Callable[[int], None] = lambda size: None
    ) -> None:
        self.library = library
        self.max_k = max_k
        self.chat_model = chat_model  # a callable (settings) -> ChatModel | None
        self._chat_models: dict[str, object] = {}
        # One batcher per model: concurrent requests' queries share its calls (batching.py).
        self.batchers = {
            id(embedder): QueryBatcher(embedder, on_batch=on_batch)
            for embedder in {id(kb.embedder): kb.embedder for kb in library.knowledge_bases.values()}.values()
        }

    def chat(self, kb: ServedKnowledgeBase):
        """The knowledge base's chat model (None offline), made once."""
        if self.chat_model is None:
            return None
        if kb.name not in self._chat_models:
            self._chat_models[kb.name] = self.chat_model(kb.settings)
        return self._chat_models[kb.name]

    def query_vector(self, snapshot: Snapshot, text: str) -> np.ndarray:
        searcher = snapshot.searcher
        return self.batchers[id(searcher.embedder)].encode(text, searcher.encode_query)

    def knowledge_base(self, caller: Caller, name: str | None) -> ServedKnowledgeBase:
        """The knowledge base asked for (default: the server's first the caller may read)."""
        readable = [kb for kb in self.library.knowledge_bases if caller.may_read(kb)]
        if name is None:
            name = self.library.default if caller.may_read(self.library.default) or not readable else readable[0]
        if name not in self.library.knowledge_bases:
            raise ApiError(422, f"unknown knowledge_base {name!r}; choose one of: {', '.join(readable) or 'none'}")
        if not caller.may_read(name):
            raise ApiError(
                403, f"token {caller.name!r} may not read knowledge base {name!r}; it may read: {', '.join(readable) or 'none'}"
            )
        return self.library.get(name)

    def snapshot(self, kb: ServedKnowledgeBase) -> Snapshot:
        try:
            return kb.snapshot()
        except NotReady as error:
            raise ApiError(503, f"{error}; GET /readyz shows every knowledge base's state") from None

    def _where(self, caller: Caller, filters: SearchFilters) -> str | None:
        try:
            sources = caller.sources_to_read(filters.sources)
        except Forbidden as error:
            raise ApiError(403, str(error)) from None
        return filters.model_copy(update={"sources": sources}).where()

    def _check_k(self, k: int) -> None:
        if k > self.max_k:
            raise ApiError(422, f"k: must be at most {self.max_k} (AI_ASSETS_SERVE_MAX_K), got {k}")

    def search(self, caller: Caller, request: SearchRequest, client: Client = "http") -> SearchResponse:
        self._check_k(request.k)
        kb = self.knowledge_base(caller, request.knowledge_base)
        where = self._where(caller, request.filters)
        snapshot = self.snapshot(kb)
        vector = None if request.mode == "fts" else self.query_vector(snapshot, request.query)
        hits = snapshot.searcher.search(request.query, mode=request.mode, limit=request.k, where=where, query_vector=vector)
        served = _served(snapshot)
        answer_id, warnings = self._record(
            kb,
            lambda: answered_search(
                request.query, hits, knowledge_base=kb.name, embedder=served.embedder, table=served.table,
                index_version=served.index_version, mode=request.mode, client=client,
            ),
        )
        return SearchResponse(
            **served.model_dump(), answer_id=answer_id, query=request.query, mode=request.mode, warnings=warnings,
            hits=[
                Hit(**hit.model_dump(), rank=rank, document_url=file_url(hit.doc_key, hit.page))
                for rank, hit in enumerate(hits, start=1)
            ],
        )

    def ask(self, caller: Caller, request: AskRequest, client: Client = "http") -> AskResponse:
        self._check_k(request.k)
        kb = self.knowledge_base(caller, request.knowledge_base)
        where = self._where(caller, request.filters)
        snapshot = self.snapshot(kb)
        chat = None if request.extractive else self.chat(kb)
        answer = answer_question(
            snapshot.searcher, request.question, k=request.k, mode=request.mode, chat=chat, where=where,
            query_vector=self.query_vector(snapshot, request.question),
        )
        answer_id, warnings = self._record(kb, lambda: answered_ask(answer, kb.name, client))
        return AskResponse(
            **answer.model_dump(exclude={"warnings"}), warnings=[*answer.warnings, *warnings], knowledge_base=kb.name,
            answer_id=answer_id,
            document_urls={cited.number: file_url(cited.doc_key, cited.page) for cited in answer.citations},
        )

    def chunk(self, caller: Caller, chunk_id: str, knowledge_base: str | None = None) -> ChunkResponse:
        from ai_assets.reading import trace

        kb = self.knowledge_base(caller, knowledge_base)
        snapshot = self.snapshot(kb)
        hit = fetch_chunk(snapshot.searcher.table, chunk_id, where=caller.scope_condition())
        if hit is None:  # outside the scope reads as absent: a scoped caller learns nothing of it
            raise ApiError(404, f"no chunk {chunk_id!r} in {snapshot.table} v{snapshot.version} of knowledge base {kb.name!r}")
        traced = trace(kb.settings, snapshot.searcher.table, [hit], scored=False)[0]
        return ChunkResponse(
            **traced.model_dump(), knowledge_base=kb.name, source=hit.source, doc_title=hit.doc_title,
            document_url=file_url(hit.doc_key, hit.page),
        )

    def document(
        self, caller: Caller, doc_key: str, knowledge_base: str | None = None
    ) -> tuple[DocumentResponse, ServedKnowledgeBase]:
        """The document's metadata from its chunks in the served version, and its knowledge base."""
        kb = self.knowledge_base(caller, knowledge_base)
        source = doc_key.split("/", 1)[0]
        if not caller.may_read_source(source):
            readable = ", ".join(caller.sources)
            raise ApiError(403, f"token {caller.name!r} may not read source {source!r}; it may read: {readable}")
        snapshot = self.snapshot(kb)
        chunks = fetch_document(snapshot.searcher.table, doc_key, where=caller.scope_condition())
        if not chunks:
            raise ApiError(
                404,
                f"no document {doc_key!r} in {snapshot.table} v{snapshot.version}; keys look like source/path/file.md",
            )
        first = chunks[0]
        pages = sorted(
            {page for hit in chunks if hit.page is not None for page in range(hit.page, (hit.page_end or hit.page) + 1)}
        )
        return (
            DocumentResponse(
                **_served(snapshot).model_dump(), doc_key=doc_key, source=first.source, title=first.doc_title,
                path=first.doc_path, content_hash=first.doc_content_hash, chunks=len(chunks), pages=pages,
                file_url=file_url(doc_key), page_urls={page: file_url(doc_key, page) for page in pages},
                run_ids=sorted({hit.run_id for hit in chunks}),
            ),
            kb,
        )

    def document_file(self, caller: Caller, doc_key: str, knowledge_base: str | None = None) -> tuple[bytes, str]:
        """The document's file (its bytes and media type), for a caller that may read its source."""
        from ai_assets.core.documents.object_folders import source_folders_at
        from ai_assets.core.storage import filesystem

        document, kb = self.document(caller, doc_key, knowledge_base)
        location = source_folders_at(kb.settings.sources_location).source_location(document.source, document.path)
        fs, path = filesystem(location)
        try:
            with fs.open(path, "rb") as file:
                content = file.read()
        except FileNotFoundError:
            raise ApiError(
                410, f"the file of {doc_key!r} is gone from {kb.settings.sources_location} (the index is older than it)"
            ) from None
        except OSError as error:
            raise ApiError(503, f"cannot read the file of {doc_key!r} from the sources location: {error}") from None
        return content, mimetypes.guess_type(document.path)[0] or "application/octet-stream"

    def feedback(self, caller: Caller, request: FeedbackRequest, client: Client = "http") -> FeedbackResponse:
        kb = self.knowledge_base(caller, request.knowledge_base)
        judgement = Judgement(
            answer_id=request.answer_id, verdict=request.verdict, citation=request.citation, note=request.note, client=client
        )
        try:
            answered = kb.feedback.answer(request.answer_id)
            if answered.knowledge_base != kb.name or not all(caller.may_read_source(p.source) for p in answered.passages):
                raise UnknownAnswer(f"no answer {request.answer_id} this token may judge in knowledge base {kb.name!r}")
            kb.feedback.record_judgement(judgement)
        except UnknownAnswer as error:
            raise ApiError(404, str(error)) from None
        except FeedbackStoreUnavailable as error:
            raise ApiError(503, str(error)) from None
        except ValueError as error:
            raise ApiError(422, str(error)) from None
        return FeedbackResponse(answer_id=request.answer_id, verdict=request.verdict, citation=request.citation)

    def _record(self, kb: ServedKnowledgeBase, answered) -> tuple[str | None, list[str]]:
        """Record what was shown, so feedback can refer to it; a store that cannot be written costs
        the answer id, never the answer."""
        record = answered()
        try:
            kb.feedback.record_answer(record)
        except FeedbackStoreUnavailable as error:
            log.warning("%s: %s", kb.name, error)
            return None, [f"feedback cannot be recorded for this answer: {error}"]
        return record.answer_id, []


def _served(snapshot: Snapshot) -> Served:
    return Served(
        knowledge_base=snapshot.knowledge_base, embedder=snapshot.embedder, table=snapshot.table,
        index_version=snapshot.version,
    )

