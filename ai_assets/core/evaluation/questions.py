"""Offline eval questions drawn from a source's own chunks: simulated known-item queries.

A known-item query is one a user would type to find a document they know exists. Following
Azzopardi, de Rijke and Balog ("Building simulated queries for known-item topics", SIGIR 2007), a
query is made by sampling terms from one passage (a chunk), each with a probability that weighs
its frequency in the passage against the collection (the source's chunks): ``popular`` (term
frequency), ``discriminative`` (presence over collection probability) or ``tfidf`` (both). The
document the passage came from is the one relevant document. Section headings and titles make a
second kind of query, when they name one document of the source only.

Everything is deterministic: a chunk's sample is drawn with a random generator seeded by its id,
and documents and chunks are picked in the order of a hash of their keys (bottom-k sampling, so a
new document displaces others only where its hash ranks it before them). No model, no network.
"""

from __future__ import annotations

import math
import random
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, ConfigDict

from ai_assets.core.chunking.chunker import Chunk
from ai_assets.core.documents.model import SECTION_SEPARATOR
from ai_assets.core.hashing import config_hash, sha256_hex

TermWeighting = Literal["popular", "discriminative", "tfidf"]
QueryKind = Literal["terms", "heading", "title"]
OFFLINE_GENERATOR = "known-item"
# Bump when generation changes what it makes: every document's questions are then made again.
OFFLINE_GENERATOR_VERSION = "1"

# Unicode words of at least 3 letters (digits and single letters say little about a passage).
_WORD = re.compile(r"[^\W\d_]{3,}", re.UNICODE)
# English function words; in any language, terms in most of the source's chunks are left out too.
_STOP_WORDS = frozenset(
    """about above after again against all also and any are because been before being below between
    both but can cannot could did does doing down during each few for from further had has have having
    her here hers herself him himself his how into its itself just more most must not now off once
    only other our ours out over own same she should some such than that the their theirs them then
    there these they this those through too under until use used uses using very was were what when
    where which while who whom why will with within without would you your yours yourself example
    see also like may might one two way get set""".split()
)
# A term in more than this share of the source's chunks is as good as a stop word.
COMMON_TERM_SHARE = 0.5
# A passage with fewer distinct content terms than this cannot make a query that singles it out.
MIN_PASSAGE_TERMS = 8
# Finding one document among fewer than this says nothing.
MIN_DOCUMENTS = 2


class QuestionSettings(BaseModel):
    """How many questions, and how they are made."""

    model_config = ConfigDict(frozen=True)

    per_document: int = 2
    per_source: int = 200
    query_terms: int = 4
    weighting: TermWeighting = "discriminative"
    headings: bool = True  # also ask for a document by a heading or title that names it alone

    @property
    def generator_config(self) -> str:
        """What decides a document's questions, besides the document: questions made under another
        config are made again (the sizes decide only how many documents are sampled, not their questions)."""
        return config_hash(
            {"generator": OFFLINE_GENERATOR, "version": OFFLINE_GENERATOR_VERSION, "per_document": self.per_document,
             "query_terms": self.query_terms, "weighting": self.weighting, "headings": self.headings}
        )


class GeneratedQuestion(BaseModel):
    """One question and the passage it was drawn from, with its lineage."""

    query_id: str
    text: str
    kind: QueryKind
    doc_key: str
    doc_version: str  # the document's content hash when the question was made
    chunk_id: str
    section: str | None = None
    page: int | None = None
    generator: str = OFFLINE_GENERATOR
    generator_version: str = OFFLINE_GENERATOR_VERSION
    generator_config: str
    run_id: str


class Rejection(BaseModel):
    doc_key: str
    chunk_id: str | None = None
    reason: str


def content_terms(text: str) -> list[str]:
    return [word for word in (match.group(0).casefold() for match in _WORD.finditer(text)) if word not in _STOP_WORDS]


@dataclass
class CollectionStats:
    """Term statistics of a source's chunks: the collection a query must single a passage out of."""

    chunks: int = 0
    document_frequency: Counter[str] = field(default_factory=Counter)
    term_count: Counter[str] = field(default_factory=Counter)
    total_terms: int = 0

    @classmethod
    def of(cls, chunks: Iterable[Chunk]) -> CollectionStats:
        stats = cls()
        for chunk in chunks:
            terms = content_terms(chunk.text)
            stats.chunks += 1
            stats.document_frequency.update(set(terms))
            stats.term_count.update(terms)
            stats.total_terms += len(terms)
        return stats

    def is_common(self, term: str) -> bool:
        return self.chunks >= 4 and self.document_frequency[term] > COMMON_TERM_SHARE * self.chunks

    def weight(self, term: str, frequency: int, weighting: TermWeighting) -> float:
        if weighting == "popular":
            return float(frequency)
        if weighting == "discriminative":  # presence over the term's collection probability
            return self.total_terms / max(1, self.term_count[term])
        return frequency * math.log((1 + self.chunks) / (1 + self.document_frequency[term]))


def stable_rank(*parts: str) -> str:
    return sha256_hex("eval-questions", *parts)


def term_query(chunk: Chunk, stats: CollectionStats, settings: QuestionSettings) -> str | Rejection:
    """``query_terms`` distinct terms of the passage, drawn without replacement by weight."""
    counts = Counter(term for term in content_terms(chunk.text) if not stats.is_common(term))
    if len(counts) < MIN_PASSAGE_TERMS:
        return Rejection(
            doc_key=chunk.doc_key, chunk_id=chunk.chunk_id,
            reason=f"passage too short: fewer than {MIN_PASSAGE_TERMS} distinct content words",
        )
    rng = random.Random(int(stable_rank(chunk.chunk_id)[:16], 16))
    candidates = sorted(counts)
    weights = [stats.weight(term, counts[term], settings.weighting) for term in candidates]
    chosen: list[str] = []
    while len(chosen) < settings.query_terms and candidates:
        index = rng.choices(range(len(candidates)), weights=weights)[0]
        chosen.append(candidates.pop(index))
        weights.pop(index)
    return " ".join(chosen)


def heading_queries(chunks: Sequence[Chunk]) -> dict[str, set[str]]:
    """Each heading and title, casefolded, to the documents of the source it appears in."""
    documents: dict[str, set[str]] = {}
    for chunk in chunks:
        for name in [chunk.doc_title, *(chunk.section or "").split(SECTION_SEPARATOR)]:
            name = " ".join(name.split())
            if name:
                documents.setdefault(name.casefold(), set()).add(chunk.doc_key)
    return documents


def name_query(chunk: Chunk, kind: QueryKind, owners: dict[str, set[str]]) -> str | Rejection:
    """The deepest heading of the chunk's section, or its document's title, when it names that
    document alone and says more than one word."""
    name = chunk.doc_title if kind == "title" else (chunk.section or "").split(SECTION_SEPARATOR)[-1]
    name = " ".join(name.split())
    if len(content_terms(name)) < 2:
        return Rejection(doc_key=chunk.doc_key, chunk_id=chunk.chunk_id, reason=f"{kind} too generic: {name!r}"[:120])
    shared = len(owners.get(name.casefold(), set()))
    if shared > 1:
        return Rejection(doc_key=chunk.doc_key, chunk_id=chunk.chunk_id, reason=f"{kind} shared by {shared} documents")
    return name


def document_questions(
    chunks: Sequence[Chunk],
    stats: CollectionStats,
    owners: dict[str, set[str]],
    settings: QuestionSettings,
    run_id: str,
) -> tuple[list[GeneratedQuestion], list[Rejection]]:
    """Up to ``per_document`` questions of one document's chunks: term queries from its chunks in
    hash order, and (with ``headings``) one from a heading or the title that names it alone."""
    ordered = sorted(chunks, key=lambda chunk: stable_rank(chunk.chunk_id))
    attempts: list[tuple[Chunk, QueryKind]] = [(chunk, "terms") for chunk in ordered]
    if settings.headings and ordered:
        # One name query, interleaved second so that even two questions a document mix the kinds.
        named = next((chunk for chunk in ordered if chunk.section), ordered[0])
        attempts.insert(1, (named, "heading" if named.section else "title"))
    questions: list[GeneratedQuestion] = []
    rejections: list[Rejection] = []
    for chunk, kind in attempts:
        if len(questions) >= settings.per_document:
            break
        made = term_query(chunk, stats, settings) if kind == "terms" else name_query(chunk, kind, owners)
        if isinstance(made, Rejection):
            rejections.append(made)
            continue
        questions.append(
            GeneratedQuestion(
                query_id=f"{kind}-{stable_rank(chunk.chunk_id, kind, settings.generator_config)[:16]}",
                text=made, kind=kind, doc_key=chunk.doc_key, doc_version=chunk.doc_content_hash,
                chunk_id=chunk.chunk_id, section=chunk.section, page=chunk.page,
                generator_config=settings.generator_config, run_id=run_id,
            )
        )
    return questions, rejections


class SourceQuestions(BaseModel):
    """A source's questions now, and what happened to get them."""

    questions: list[GeneratedQuestion]
    rejections: list[Rejection]
    generated_documents: int  # documents whose questions were made in this run
    kept_documents: int  # unchanged documents whose previous questions were kept
    quarantined_documents: int  # unreadable now: their previous questions kept, so the gate sees the loss
    too_small: str | None = None  # why the source gets no questions at all


def source_questions(
    source: str,
    chunks: Sequence[Chunk],
    previous: Sequence[GeneratedQuestion],
    quarantined: set[str],
    settings: QuestionSettings,
    run_id: str,
) -> SourceQuestions:
    """The source's questions: documents sampled in hash order until ``per_source`` questions;
    an unchanged document keeps its previous questions (same version and generator config), an
    edited or new one gets new ones, a quarantined one keeps the ones it had, a deleted one none."""
    by_document: dict[str, list[Chunk]] = {}
    for chunk in chunks:
        by_document.setdefault(chunk.doc_key, []).append(chunk)
    previous_by_document: dict[str, list[GeneratedQuestion]] = {}
    for question in previous:
        previous_by_document.setdefault(question.doc_key, []).append(question)
    if len(by_document) + len(quarantined & set(previous_by_document)) < MIN_DOCUMENTS:
        return SourceQuestions(
            questions=[], rejections=[], generated_documents=0, kept_documents=0, quarantined_documents=0,
            too_small=(
                f"source {source!r} has {len(by_document)} document(s) with text: too small to sample known-item "
                f"questions (finding one document among fewer than {MIN_DOCUMENTS} measures nothing). Add "
                "documents, or write an eval set under data/eval/"
            ),
        )
    stats: CollectionStats | None = None  # only computed when some document needs new questions
    owners: dict[str, set[str]] = {}
    candidates = set(by_document) | (quarantined & set(previous_by_document))
    result = SourceQuestions(questions=[], rejections=[], generated_documents=0, kept_documents=0, quarantined_documents=0)
    for doc_key in sorted(candidates, key=lambda key: stable_rank(key)):
        room = settings.per_source - len(result.questions)
        if room <= 0:
            break
        kept = previous_by_document.get(doc_key, [])
        if doc_key not in by_document:
            result.quarantined_documents += 1
            result.questions.extend(kept[:room])
            continue
        version = by_document[doc_key][0].doc_content_hash
        if kept and all(q.doc_version == version and q.generator_config == settings.generator_config for q in kept):
            result.kept_documents += 1
            result.questions.extend(kept[:room])
            continue
        if stats is None:
            stats, owners = CollectionStats.of(chunks), heading_queries(chunks)
        made, rejected = document_questions(by_document[doc_key], stats, owners, settings, run_id)
        result.generated_documents += 1
        result.questions.extend(made[:room])
        result.rejections.extend(rejected)
    return drop_duplicate_texts(result)


def drop_duplicate_texts(result: SourceQuestions) -> SourceQuestions:
    """A query text asked for two documents has no one answer: the later ones are rejected."""
    seen: set[str] = set()
    kept: list[GeneratedQuestion] = []
    for question in result.questions:
        key = question.text.casefold()
        if key in seen:
            result.rejections.append(
                Rejection(doc_key=question.doc_key, chunk_id=question.chunk_id, reason="same query as another document's")
            )
            continue
        seen.add(key)
        kept.append(question)
    return result.model_copy(update={"questions": kept})
