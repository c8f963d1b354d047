"""Answers from a served table version with the real model and LanceDB: extractive offline, generated
with a chat model (a real HTTP server speaking OpenAI's protocol), and every kind of bad input."""

from __future__ import annotations

from collections.abc import Iterator

import lancedb
import pytest

from ai_assets.core.answering.ask import EmptyQuestion, answer_question, without_citations
from ai_assets.core.answering.extractive import extract_sentences, split_sentences
from ai_assets.core.answering.generated import passage_label
from ai_assets.core.chunking.chunker import ChunkerConfig, chunk_document
from ai_assets.core.documents.model import Document, content_hash
from ai_assets.core.embedding.base import MINILM, Embedder
from ai_assets.core.embedding.registry import create_embedder
from ai_assets.core.embedding.tokenizer import minilm_tokenizer
from ai_assets.core.llm import OpenAIChatModel
from ai_assets.core.retrieval.search import SearchHit, Searcher
from ai_assets.core.store.indexes import build_indexes
from ai_assets.core.store.tables import open_journal, open_table
from ai_assets.core.store.versions import checkout, move_served
from ai_assets.core.store.writes import sync_source_embeddings
from ai_assets_tests.core.test_llm import ScriptedChat
from ai_assets_tests.openai_server import OpenAIServer, running_openai_server

PAGES = {
    "retries.md": (
        "Retries",
        "A run retry starts the whole run again after a failure. Set the maximum number of retries with "
        "the max_retries tag. Retries back off exponentially between attempts.",
    ),
    "schedules.md": (
        "Schedules",
        "A schedule launches a job at fixed times, written as a cron expression. The daemon must be "
        "running for schedules to tick.",
    ),
    "sensors.md": (
        "Sensors",
        "A sensor polls for new files and requests runs when something changed. Its cursor remembers "
        "what it has already seen.",
    ),
}


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return create_embedder("minilm")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Searcher:
    """A searcher over the served version of a table holding the three pages."""
    db = lancedb.connect(str(tmp_path_factory.mktemp("lancedb")))
    table = open_table(db, MINILM)
    documents = [
        Document(
            doc_key=f"docs/{path}", source="docs", path=path, title=title, text=text,
            content_hash=content_hash(title, text), size_bytes=len(text), mtime=0.0,
        )
        for path, (title, text) in PAGES.items()
    ]
    config = ChunkerConfig(tokenizer=MINILM.model, max_tokens=64, overlap_tokens=8)
    chunks = [chunk for document in documents for chunk in chunk_document(document, minilm_tokenizer(), config)]
    sync_source_embeddings(table, "docs", chunks, embedder, run_id="run-1", journal=open_journal(db, MINILM))
    move_served(table, build_indexes(table).version)
    pinned = open_table(db, MINILM, create=False)
    checkout(pinned, "served")
    return Searcher(pinned, embedder)


def test_extractive_answer_quotes_the_best_sentences_and_cites_their_passage(served: Searcher) -> None:
    answer = answer_question(served, "  which cron expression launches a job?\n")
    assert answer.question == "which cron expression launches a job?"
    assert answer.answer_kind == "extractive" and answer.warnings == []
    assert answer.answer.startswith("A schedule launches a job at fixed times, written as a cron expression. [1]")
    first = answer.citations[0]
    assert (first.number, first.doc_key, first.doc_title, first.run_id) == (1, "docs/schedules.md", "Schedules", "run-1")
    assert "A schedule launches a job at fixed times" in first.text  # the span the answer quotes
    assert first.section is None and first.page is None  # until documents carry them
    assert (answer.table, answer.index_version, answer.mode) == ("chunks__minilm", served.table.version, "hybrid")
    cited = {f"[{citation.number}]" for citation in answer.citations}
    assert cited == {marker for marker in ("[1]", "[2]", "[3]", "[4]", "[5]") if marker in answer.answer}
    assert "[" not in without_citations(answer.answer)


def test_extraction_dedupes_sentences_of_overlapping_chunks(served: Searcher, embedder: Embedder) -> None:
    hits = served.search("cursor of a sensor", limit=5)
    doubled = [hits[0], hits[0].model_copy(update={"chunk_id": "copy"}), *hits[1:]]
    sentences = extract_sentences(served.encode_query("cursor of a sensor"), doubled, embedder.embed, max_sentences=5)
    assert len({sentence.text for sentence in sentences}) == len(sentences)
    assert all(sentence.hit_index != 1 for sentence in sentences)  # the copy's sentences count for the original
    assert split_sentences("Too short. This one has words enough!\n\nA third sentence here.") == [
        "This one has words enough!", "A third sentence here.",
    ]


@pytest.mark.parametrize("question", ["", "   ", "\n\t "])
def test_an_empty_question_is_refused(served: Searcher, question: str) -> None:
    with pytest.raises(EmptyQuestion, match="the question is empty"):
        answer_question(served, question)


def test_a_question_longer_than_the_window_is_truncated_with_a_notice(served: Searcher) -> None:
    question = "which cron expression launches a job " + " ".join(f"filler{number}" for number in range(400))
    answer = answer_question(served, question)
    (warning,) = answer.warnings
    assert "longer than the sentence-transformers/all-MiniLM-L6-v2 window of 254 tokens" in warning
    assert "of 406 words were embedded" in warning
    assert answer.citations and answer.citations[0].doc_key == "docs/schedules.md"


def test_no_matching_passage_is_said_plainly(served: Searcher) -> None:
    answer = answer_question(served, "cron", sources=["nowhere"])
    assert answer.answer_kind == "none" and answer.citations == []
    assert f"No passage of chunks__minilm (version {served.table.version}) matches" in answer.answer


def test_a_generated_answer_cites_its_passages_inline(served: Searcher) -> None:
    chat = ScriptedChat(['{"answer": "Write a cron expression on a schedule [1]; the daemon runs it [1][9]."}'])
    answer = answer_question(served, "how do I run a job every night?", chat=chat)
    assert answer.answer_kind == "generated"
    assert answer.answer == "Write a cron expression on a schedule [1]; the daemon runs it [1]."
    (cited,) = answer.citations
    assert cited.number == 1 and cited.text == served.search("how do I run a job every night?", limit=5)[0].text
    assert "[1] Schedules (docs/schedules.md)" in chat.prompts[0]


@pytest.fixture
def chat_server() -> Iterator[OpenAIServer]:
    with running_openai_server() as server:
        yield server


@pytest.mark.parametrize("fault", ["401", "garbage"])
def test_a_failing_chat_model_gives_the_extractive_answer_with_a_warning(
    served: Searcher, chat_server: OpenAIServer, fault: str
) -> None:
    chat_server.chat_faults.extend([fault] * 3)
    chat = OpenAIChatModel("gpt-4o-mini", api_key="sk-test-secret", base_url=chat_server.base_url, max_retries=0)
    answer = answer_question(served, "which cron expression launches a job?", chat=chat)
    assert answer.answer_kind == "extractive" and answer.citations[0].doc_key == "docs/schedules.md"
    (warning,) = answer.warnings
    assert warning.startswith("the chat model failed (") and warning.endswith("); this is the extractive answer")
    assert "sk-test-secret" not in warning
    assert len(chat_server.chat_requests) == (1 if fault == "401" else 3)  # garbage is asked again, twice


def test_the_chat_model_through_the_protocol_cites_passage_one(served: Searcher, chat_server: OpenAIServer) -> None:
    chat_server.chat_requests.append({})  # the server's first reply is invalid JSON on purpose; spend it
    chat = OpenAIChatModel("gpt-4o-mini", api_key=None, base_url=chat_server.base_url, max_retries=0)
    answer = answer_question(served, "what does a sensor's cursor remember?", chat=chat)
    assert (answer.answer_kind, answer.answer) == ("generated", "See passage [1].")
    assert [cited.doc_key for cited in answer.citations] == ["docs/sensors.md"]


def test_a_passage_is_labelled_with_its_section_and_pages_when_it_has_them(served: Searcher) -> None:
    hit = served.search("cron", limit=1)[0].model_copy(update={"section": "Schedules > Cron", "page": 3, "page_end": 4})
    # The section without the heading that repeats the title: one label in ask, search and trace.
    assert passage_label(hit) == hit.citation == "Schedules · Cron · pp. 3-4"


def test_the_sentence_holding_the_number_asked_for_comes_first(embedder: Embedder) -> None:
    text = ("Raft uses randomized election timeouts to ensure that split votes are rare and resolved quickly. "
            "Election timeouts are chosen randomly from a fixed interval (150-300 ms).")
    hit = SearchHit(chunk_id="c", source="s", doc_key="s/raft.pdf", doc_path="raft.pdf", doc_title="Raft",
                    doc_content_hash="h", chunk_index=0, text=text, run_id="r", score=1.0)
    question = "How long are Raft's election timeouts?"
    (best,) = extract_sentences(embedder.embed([question])[0], [hit], embedder.embed, max_sentences=1, question=question)
    assert "150-300 ms" in best.text
