"""Token-aware chunking with the model's real tokenizer."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from ai_assets.core.chunking.chunker import TOKENIZE_BATCH, ChunkerConfig, chunk_document, chunk_documents
from ai_assets.core.documents.folders import LocalSourceFolders
from ai_assets.core.documents.loading import load_source
from ai_assets.core.documents.model import Document, content_hash
from ai_assets.core.embedding.base import MINILM
from ai_assets.core.embedding.tokenizer import minilm_tokenizer

DATA = Path(__file__).resolve().parents[3] / "data" / "sources"


def document(text: str, key: str = "s/doc.md") -> Document:
    return Document(doc_key=key, source="s", path="doc.md", title="Doc", text=text,
                    content_hash=content_hash("Doc", text), size_bytes=len(text), mtime=0.0)


def config(max_tokens: int = 64, overlap: int = 8) -> ChunkerConfig:
    return ChunkerConfig(tokenizer=MINILM.model, max_tokens=max_tokens, overlap_tokens=overlap)


def check_invariants(doc: Document, chunks, cfg: ChunkerConfig) -> None:
    tokenizer = minilm_tokenizer()
    covered = [False] * len(doc.text)
    for chunk in chunks:
        assert chunk.text == doc.text[chunk.char_start : chunk.char_end]
        recount = len(tokenizer.token_offsets(chunk.text))
        assert recount == chunk.token_count <= cfg.max_tokens, (recount, chunk.token_count)
        for position in range(chunk.char_start, chunk.char_end):
            covered[position] = True
    for start, end in tokenizer.token_offsets(doc.text):
        assert all(covered[start:end]), f"token at {start} not in any chunk"


def test_demo_corpus_chunks_fit_the_window_and_cover_every_token() -> None:
    cfg = config(254, 32)
    tokenizer = minilm_tokenizer()
    for source in ("dagster", "prefect", "airflow"):
        for doc in load_source(LocalSourceFolders(DATA), source, 5_000_000).documents:
            check_invariants(doc, chunk_document(doc, tokenizer, cfg), cfg)


def test_overlong_word_and_many_paragraphs() -> None:
    cfg = config(40, 8)
    tokenizer = minilm_tokenizer()
    blob = document("start " + "Zq9" * 1500 + " end")  # one 4500-character "word"
    check_invariants(blob, chunk_document(blob, tokenizer, cfg), cfg)
    paragraphs = document("\n\n".join(f"Paragraph {i} says a few words about topic {i}." for i in range(60)))
    chunks = chunk_document(paragraphs, tokenizer, cfg)
    check_invariants(paragraphs, chunks, cfg)
    # Every window but the last ends where a paragraph does.
    assert all(paragraphs.text[chunk.char_end : chunk.char_end + 2] == "\n\n" for chunk in chunks[:-1])


@pytest.mark.parametrize("overlap", [0, 8])
def test_overlap(overlap: int) -> None:
    text = " ".join(f"word{i}" for i in range(400))
    chunks = chunk_document(document(text), minilm_tokenizer(), config(64, overlap))
    for previous, current in zip(chunks, chunks[1:]):
        assert (current.char_start < previous.char_end) == (overlap > 0)


def test_chunk_ids_are_stable_and_change_only_where_the_text_changed() -> None:
    tokenizer, cfg = minilm_tokenizer(), config(40, 0)
    paragraphs = [f"Section {i}. " + " ".join(f"fact{i}-{j}" for j in range(12)) for i in range(12)]
    original = chunk_document(document("\n\n".join(paragraphs)), tokenizer, cfg)
    assert [c.chunk_id for c in original] == [c.chunk_id for c in chunk_document(document("\n\n".join(paragraphs)), tokenizer, cfg)]
    edited_paragraphs = list(paragraphs)
    edited_paragraphs[6] += " One more fact."
    edited = chunk_document(document("\n\n".join(edited_paragraphs)), tokenizer, cfg)
    changed = {c.chunk_id for c in edited} - {c.chunk_id for c in original}
    assert 1 <= len(changed) <= 2 and len(original) >= 8
    assert {c.chunk_id for c in chunk_document(document("\n\n".join(paragraphs), key="s/other.md"), tokenizer, cfg)}.isdisjoint(
        {c.chunk_id for c in original}
    )
    assert {c.chunk_id for c in chunk_document(document("\n\n".join(paragraphs)), tokenizer, config(48, 0))}.isdisjoint(
        {c.chunk_id for c in original}
    )


@pytest.mark.parametrize(("max_tokens", "overlap"), [(8, 0), (64, 40), (64, -1)])
def test_bad_sizes_are_refused(max_tokens: int, overlap: int) -> None:
    with pytest.raises(ValueError, match="chunk"):
        config(max_tokens, overlap)


class CountingTokenizer:
    """The real tokenizer, counting the documents it is asked to tokenize."""

    def __init__(self) -> None:
        self._tokenizer = minilm_tokenizer()
        self.name = self._tokenizer.name
        self.texts: list[str] = []

    def token_offsets(self, text: str) -> list[tuple[int, int]]:
        self.texts.append(text)
        return self._tokenizer.token_offsets(text)

    def token_offsets_batch(self, texts: Sequence[str]) -> list[list[tuple[int, int]]]:
        self.texts.extend(texts)
        return self._tokenizer.token_offsets_batch(texts)


def test_unchanged_documents_reuse_their_chunks_and_only_edits_are_tokenized() -> None:
    cfg = config(40, 8)
    docs = [document(" ".join(f"{key} word{i}." for i in range(120)), key=f"s/{key}.md") for key in "abc"]
    previous = chunk_documents(docs, minilm_tokenizer(), cfg).chunks

    edited = document(docs[1].text + " One more sentence.", key="s/b.md")
    tokenizer = CountingTokenizer()
    result = chunk_documents([docs[0], edited, docs[2]], tokenizer, cfg, previous)

    assert (result.rechunked_documents, result.reused_documents) == (1, 2)
    assert tokenizer.texts and all("b word" in text for text in tokenizer.texts)  # only the edited document
    # Exactly what chunking everything again gives, in the same order.
    assert result.chunks == chunk_documents([docs[0], edited, docs[2]], minilm_tokenizer(), cfg).chunks
    # Another chunker config reuses nothing.
    assert chunk_documents(docs, minilm_tokenizer(), config(48, 8), previous).reused_documents == 0


def test_a_source_tokenized_in_batches_is_cut_as_each_document_alone() -> None:
    """Past one tokenizer batch, with edited documents among reused ones, in the documents' order."""
    cfg = config(24, 4)
    count = TOKENIZE_BATCH + 44
    docs = [document(f"Page {i}. " + " ".join(f"w{i}x{j}" for j in range(i % 40 + 1)), key=f"s/{i}.md") for i in range(count)]
    previous = chunk_documents(docs, minilm_tokenizer(), cfg).chunks
    assert previous == [chunk for doc in docs for chunk in chunk_document(doc, minilm_tokenizer(), cfg)]

    edited = [document(doc.text + " Edited.", key=doc.doc_key) if i % 7 == 0 else doc for i, doc in enumerate(docs)]
    tokenizer = CountingTokenizer()
    result = chunk_documents(edited, tokenizer, cfg, previous)
    assert result.rechunked_documents == len(tokenizer.texts) == len(range(0, count, 7))
    assert result.chunks == [chunk for doc in edited for chunk in chunk_document(doc, minilm_tokenizer(), cfg)]
