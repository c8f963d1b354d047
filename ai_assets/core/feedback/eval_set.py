"""People's judgements of answers as an eval set in BEIR layout (what ``feedback_eval_set`` writes).

What becomes relevant: the document of a passage judged good (``--citation N``), or of every
passage of an ``ask`` answer judged good as a whole (the answer rests on all of them). The
evaluation ranks documents, so relevance is by document key, grade 1; the chunk ids stay in
``queries.jsonl`` as lineage. The latest judgement of a document for a question decides, so a later
bad judgement of a citation judged good takes it out again. A bad judgement (of an answer or of a
citation) never makes anything relevant: it is listed for review. The same question asked twice
(after normalization) is one query with the union of its good documents. A search judged good as a
whole adds nothing: which hit was right is unknown. A document its user deleted (its file or its
source folder gone) is relevant no more; one that cannot be read any more stays, so that the
evaluation sees it lost.

Everything is sorted, so an unchanged store gives the same files byte for byte.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime

from pydantic import BaseModel

from ai_assets.core.documents.folders import SourceListing
from ai_assets.core.feedback.store import AnsweredQuery, CitedPassage, Judgement
from ai_assets.core.hashing import sha256_hex
from ai_assets.core.storage import filesystem, join

KIND = "feedback"
QUERY_ID_PREFIX = "fb_"
_TRAILING_PUNCTUATION = re.compile(r"[\s?.!]+$")


def normalized_text(question: str) -> str:
    """What makes two questions the same one: case, spacing and the final ``?`` do not count."""
    return _TRAILING_PUNCTUATION.sub("", " ".join(question.split()).casefold())


def query_id(question: str) -> str:
    """Stable across runs: the same question keeps its id as judgements are added."""
    return QUERY_ID_PREFIX + sha256_hex(normalized_text(question))[:12]


class FeedbackQuery(BaseModel):
    query_id: str
    text: str  # as first asked
    relevant: list[str]  # document keys
    chunk_ids: list[str]  # the passages judged good: lineage only, not scored
    answer_ids: list[str]


class ReviewItem(BaseModel):
    question: str
    verdict: str
    citation: str  # "[2] source/doc.md", or "answer" for the answer as a whole
    note: str
    answer_id: str
    created_at: datetime


class FeedbackEvalSet(BaseModel):
    queries: list[FeedbackQuery]
    review: list[ReviewItem]
    answers: int
    judgements: int
    good: int
    bad: int
    unmatched: int  # judgements whose answer record is missing (never fatal: the rest still count)
    deleted: list[str] = []  # documents judged good that their user deleted since

    @property
    def sources(self) -> list[str]:
        return sorted({doc_key.split("/", 1)[0] for query in self.queries for doc_key in query.relevant})


class _Verdict(BaseModel):
    good: bool
    at: datetime
    passage: CitedPassage
    answer_id: str


def _passage_verdicts(answer: AnsweredQuery, judgements: list[Judgement]) -> list[_Verdict]:
    """Each passage's verdict: its own latest judgement, else the answer's latest judgement as a
    whole (which, judged good, counts for an ``ask`` answer's passages only)."""
    latest: dict[int | None, Judgement] = {}
    for judgement in sorted(judgements, key=lambda j: j.created_at):
        latest[judgement.citation] = judgement
    whole = latest.get(None)
    verdicts = []
    for passage in answer.passages:
        judgement = latest.get(passage.number)
        if judgement is None and whole is not None and (whole.verdict == "bad" or answer.kind == "ask"):
            judgement = whole
        if judgement is not None:
            good = judgement.verdict == "good"
            verdicts.append(_Verdict(good=good, at=judgement.created_at, passage=passage, answer_id=answer.answer_id))
    return verdicts


def _review_item(answer: AnsweredQuery, judgement: Judgement) -> ReviewItem:
    passage = next((p for p in answer.passages if p.number == judgement.citation), None)
    citation = f"[{judgement.citation}] {passage.doc_key}" if passage else "answer"
    return ReviewItem(
        question=answer.question, verdict=judgement.verdict, citation=citation, note=judgement.note,
        answer_id=answer.answer_id, created_at=judgement.created_at,
    )


def deleted_documents(listings: Mapping[str, SourceListing]) -> Callable[[str], bool]:
    """Whether a document key names a document its user deleted, by the sources' listings: its
    source folder is gone, or its file is (a quarantined or skipped entry is still there). A source
    with a corpus (``*.jsonl``, documents keyed by line id, not by file) is only judged as a whole."""
    present = {
        source: {entry.relative for entry in [*listing.files, *listing.skipped, *listing.quarantined]}
        for source, listing in listings.items()
    }

    def deleted(doc_key: str) -> bool:
        source, _, relative = doc_key.partition("/")
        if source not in present:
            return True
        files = present[source]
        return relative not in files and not any(name.endswith(".jsonl") for name in files)

    return deleted


def build_feedback_eval_set(
    answers: Iterable[AnsweredQuery], judgements: Iterable[Judgement], deleted: Callable[[str], bool] = lambda _: False
) -> FeedbackEvalSet:
    by_id = {answer.answer_id: answer for answer in answers}
    judged: dict[str, list[Judgement]] = {}
    all_judgements = list(judgements)
    for judgement in all_judgements:
        judged.setdefault(judgement.answer_id, []).append(judgement)
    matched = {answer_id: by_id[answer_id] for answer_id in judged if answer_id in by_id}

    # (normalized question, document) -> its latest verdict; and each question's first wording.
    decided: dict[tuple[str, str], _Verdict] = {}
    first_asked: dict[str, AnsweredQuery] = {}
    for answer in sorted(matched.values(), key=lambda a: (a.created_at, a.answer_id)):
        question = normalized_text(answer.question)
        first_asked.setdefault(question, answer)
        for verdict in _passage_verdicts(answer, judged[answer.answer_id]):
            key = (question, verdict.passage.doc_key)
            if key not in decided or verdict.at >= decided[key].at:
                decided[key] = verdict

    good: dict[str, list[_Verdict]] = {}
    gone: set[str] = set()
    for (question, doc_key), verdict in decided.items():
        if verdict.good and deleted(doc_key):
            gone.add(doc_key)
        elif verdict.good:
            good.setdefault(question, []).append(verdict)
    queries = [
        FeedbackQuery(
            query_id=query_id(question), text=first_asked[question].question,
            relevant=sorted({v.passage.doc_key for v in verdicts}),
            chunk_ids=sorted({v.passage.chunk_id for v in verdicts}),
            answer_ids=sorted({v.answer_id for v in verdicts}),
        )
        for question, verdicts in good.items()
    ]
    review = [
        _review_item(matched[judgement.answer_id], judgement)
        for judgement in all_judgements
        if judgement.verdict == "bad" and judgement.answer_id in matched
    ]
    return FeedbackEvalSet(
        queries=sorted(queries, key=lambda q: q.query_id),
        review=sorted(review, key=lambda r: (normalized_text(r.question), r.created_at, r.answer_id, r.citation)),
        answers=len(by_id),
        judgements=len(all_judgements),
        good=sum(1 for j in all_judgements if j.verdict == "good"),
        bad=sum(1 for j in all_judgements if j.verdict == "bad"),
        unmatched=sum(1 for j in all_judgements if j.answer_id not in matched),
        deleted=sorted(gone),
    )


def eval_set_files(eval_set: FeedbackEvalSet) -> dict[str, str]:
    """The BEIR files, by path relative to the set's folder; ``eval.json`` last, so that a reader
    that finds it finds the whole set."""
    queries = "".join(
        json.dumps({"_id": q.query_id, "text": q.text, "chunk_ids": q.chunk_ids, "answer_ids": q.answer_ids}) + "\n"
        for q in eval_set.queries
    )
    qrels = "query-id\tcorpus-id\tscore\n" + "".join(
        f"{q.query_id}\t{doc_key}\t1\n" for q in eval_set.queries for doc_key in q.relevant
    )
    return {
        "queries.jsonl": queries,
        "qrels/test.tsv": qrels,
        "eval.json": json.dumps({"sources": eval_set.sources, "kind": KIND}) + "\n",
    }


def write_eval_set(location: str, eval_set: FeedbackEvalSet) -> None:
    """Write the set under ``location`` (local or object storage); with no query, remove it: a set
    that judges nothing relevant scores nothing."""
    fs, root = filesystem(location)
    if not eval_set.queries:
        if fs.exists(root):
            fs.rm(root, recursive=True)
        return
    for relative, content in eval_set_files(eval_set).items():
        _, path = filesystem(join(location, relative))
        fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
        fs.pipe_file(path, content.encode("utf-8"))


def review_markdown(review: list[ReviewItem]) -> str:
    if not review:
        return "Nothing judged bad."

    def cell(text: str) -> str:
        return " ".join(text.split()).replace("|", "\\|") or "-"

    rows = "".join(
        f"| {cell(item.question)} | {item.verdict} | {cell(item.citation)} | {cell(item.note)} | {item.answer_id} |\n"
        for item in review
    )
    return "| question | verdict | citation | note | answer id |\n|---|---|---|---|---|\n" + rows
