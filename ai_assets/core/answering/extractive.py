"""The offline answer: the retrieved sentences closest to the question, each with the chunk it came from."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import numpy as np
from pydantic import BaseModel

from ai_assets.core.retrieval.search import SearchHit

# A sentence ends at . ! ? before white space, unless the word ending there is an abbreviation or
# an initial ("i.e.", "et al.", "Fig.", "J.") or the next word goes on in lower case or a digit.
_SENTENCE_END = re.compile(r"(?:(?<=[.!?])|(?<=[.!?][\"\')\]\u201d\u2019]))\s+(?=[^\sa-z0-9])")
_ABBREVIATION = re.compile(
    r"(?:\b(?:e\.g|i\.e|etc|et al|vs|cf|fig|figs|eq|eqs|sec|no|nos|approx|resp|ca|incl|ref|refs|vol|pp|ch|dr|mr|mrs|ms|st)"
    r"|(?-i:\b[A-Z]))\.$",
    re.IGNORECASE,
)
# A line break ends a sentence after a sentence's end, or before a list item, a heading or a table row.
_LINE_BREAK = re.compile(r"\n\s*\n+|(?<=[.!?:;|])\s*\n|\n(?=\s*(?:(?:[-*+\u2022#>]|\d{1,3}[.)])\s|\|))")
# Questions after a quantity, so a sentence holding a number answers them better.
_WANTS_NUMBER = re.compile(
    r"\b(?:how (?:many|much|long|often|fast|slow|large|big|small|far|old)|what (?:percentage|fraction|share|ratio|range|"
    r"size|number|year|rate|latency|throughput)|which year|when|range|percent|percentage|per ?cent|timeouts?|latency|"
    r"throughput|size|rate|speed|duration|delay|overhead)\b",
    re.IGNORECASE,
)
_NUMBER = re.compile(r"\d")
_REFERENCE = re.compile(r"^\[\d{1,3}\]\s")
_NAME = re.compile(r"(?<!^)(?<![.?!] )\b[A-Z][\w-]*[A-Za-z0-9]|\b\w*[_\d.]\w*[A-Za-z]\w*\b|\b[A-Za-z]+\d\w*\b")
# How much a sentence's score gains by holding a number the question asks for, and by holding its names.
NUMBER_BONUS = 0.3
NAME_BONUS = 0.25
# Sentences of an answer. Chosen on docs_qa, the one set with reference answers (so not a held-out
# figure; demo corpus, hybrid top 5): token F1 / answers citing a relevant document was 0.223 /
# 44 of 48 with one sentence, 0.273 / 46 with two, 0.271 / 47 with three, ranked by cosine alone.
# Weighed by their passage's retrieval score too, two sentences gave 0.291 / 47 (the 48th
# question's page is not in its top 5); capping passages per document lowered both.
EXTRACTIVE_SENTENCES = 2


class ExtractedSentence(BaseModel):
    text: str
    hit_index: int  # position of its chunk among the hits
    similarity: float  # cosine with the question (its rank also weighs its passage's score)


def split_sentences(text: str) -> list[str]:
    """Whole sentences of a passage: split at sentence ends and paragraph breaks (never inside an
    abbreviation or a decimal), of three words or more, bibliography entries left out. A piece the
    chunk's window cut is left out:
    the first when it starts in lower case, the last when it stops without an end mark inside a
    paragraph of several sentences (a lone line without one is a heading or a list item)."""
    paragraphs = [_sentences_of(" ".join(paragraph.split())) for paragraph in _LINE_BREAK.split(text)]
    # A bibliography entry ("[4] Bressoud, T. C. ...") cites a work; it does not answer.
    paragraphs = [[sentence for sentence in sentences if not _REFERENCE.match(sentence)] for sentences in paragraphs]
    paragraphs = [sentences for sentences in paragraphs if sentences]
    if paragraphs and paragraphs[0][0][:1].islower():
        paragraphs[0] = paragraphs[0][1:]
    if paragraphs and len(paragraphs[-1]) > 1 and not _ends_sentence(paragraphs[-1][-1]):
        paragraphs[-1] = paragraphs[-1][:-1]
    return [sentence for sentences in paragraphs for sentence in sentences if len(sentence.split()) >= 3]


def _sentences_of(paragraph: str) -> list[str]:
    sentences: list[str] = []
    for part in _SENTENCE_END.split(paragraph):
        if sentences and _ABBREVIATION.search(sentences[-1]):
            sentences[-1] = f"{sentences[-1]} {part}"
        elif part:
            sentences.append(part)
    return sentences


def _ends_sentence(sentence: str) -> bool:
    return sentence.rstrip("\"')]\u201d\u2019").endswith((".", "!", "?", ":", ";"))


def question_terms(question: str) -> tuple[bool, set[str]]:
    """Whether the question asks for a quantity, and the names it asks about (capitalised words
    past its first, identifiers, words with digits), lower-cased."""
    return bool(_WANTS_NUMBER.search(question)), {name.lower() for name in _NAME.findall(question)}


def _focus(sentence: str, wants_number: bool, names: set[str]) -> float:
    """The bonus a sentence earns by holding what the question asks about."""
    bonus = NUMBER_BONUS if wants_number and _NUMBER.search(sentence) else 0.0
    if names:
        lowered = sentence.lower()
        bonus += NAME_BONUS * sum(1 for name in names if name in lowered) / len(names)
    return bonus


def extract_sentences(
    question_vector: np.ndarray,
    hits: Sequence[SearchHit],
    embed: Callable[[Sequence[str]], np.ndarray],
    max_sentences: int = EXTRACTIVE_SENTENCES,
    question: str = "",
) -> list[ExtractedSentence]:
    """The ``max_sentences`` retrieved sentences that best answer the question, best first: their
    cosine with the question times their passage's retrieval score, since the passage ranking
    (both searches, the whole chunk) is the surer signal of the two. A sentence repeated by
    overlapping chunks counts once, from the better-ranked chunk. Given the ``question``'s text, a
    sentence holding the number it asks for, or the names it asks about, gains a little."""
    candidates: dict[str, int] = {}
    for index, hit in enumerate(hits):
        for sentence in split_sentences(hit.text):
            candidates.setdefault(sentence, index)
    if not candidates:
        return []
    texts = list(candidates)
    vectors = embed(texts)
    norms = np.linalg.norm(vectors, axis=1) * max(float(np.linalg.norm(question_vector)), 1e-12)
    similarities = (vectors @ question_vector) / np.maximum(norms, 1e-12)
    passage_scores = np.array([hits[candidates[text]].score for text in texts])
    wants_number, names = question_terms(question)
    # A name the document's title holds ("Raft" in the Raft paper) tells its sentences apart no more.
    focus = np.array([
        1.0 + _focus(text, wants_number, {name for name in names if name not in hits[candidates[text]].doc_title.lower()})
        for text in texts
    ])
    best = np.argsort(-(similarities * passage_scores * focus), kind="stable")[:max_sentences]
    return [
        ExtractedSentence(text=texts[position], hit_index=candidates[texts[position]], similarity=float(similarities[position]))
        for position in best
    ]
