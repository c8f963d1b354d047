"""Token-aware chunking with the model's real tokenizer."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from ai_assets.core.chunking.chunker import TOKENIZE_BATCH, ChunkerConfig, chunk_document, chunk_documents
from ai_assets.core.documents.folders import LocalSourceFolders
from ai_assets.core.documents.loading import load_source
from ai_assets.core.documents.model import (
    Document,
    ParsedBlock,
    ParsedDocument,
    assemble_document,
    content_hash,
)
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


def structured(parts: list[tuple[str, int | None, str]], key: str = "s/doc.pdf", title: str = "Guide") -> Document:
    """A document of (section, page, text) blocks, assembled as a parser's blocks are."""
    parsed = ParsedDocument(title=title, blocks=[ParsedBlock(text=text, section=section, page=page) for section, page, text in parts])
    return assemble_document(parsed, source="s", path=key.split("/", 1)[1], size_bytes=1, mtime=0.0, fallback_title=title)


def sentences(word: str, count: int) -> str:
    return " ".join(f"{word} sentence number {i} says something." for i in range(count))


def test_sections_are_packed_whole_and_never_across_top_level_sections() -> None:
    cfg = config(64, 8)
    doc = structured([
        ("Guide", 1, "Guide\n\n" + sentences("intro", 1)),
        ("Guide > Install", 1, "Install\n\n" + sentences("install", 2)),
        ("Guide > Configure", 1, "Configure\n\n" + sentences("configure", 2)),
        ("Guide > Configure", 2, sentences("more", 12)),  # a long section across a page break
        ("Reference", 2, "Reference\n\n" + sentences("reference", 1)),
        ("Reference > API", 3, "API\n\n" + sentences("api", 2)),
    ])
    chunks = chunk_document(doc, minilm_tokenizer(), cfg)
    check_invariants(doc, chunks, cfg)
    top_levels = [{block.section.split(" > ")[0] for block in doc.blocks if block.start < chunk.char_end and block.end > chunk.char_start} for chunk in chunks]
    assert all(len(levels) == 1 for levels in top_levels), top_levels
    # The short sections of one top-level section share a chunk; each fits whole in one.
    first = chunks[0]
    assert first.text.startswith("Guide") and "Install" in first.text and first.section == "Guide"
    assert (first.page, first.page_end) == (1, 1)
    for block in doc.blocks:
        if len(minilm_tokenizer().token_offsets(doc.text[block.start:block.end])) <= 64 and block.section != "Guide > Configure":
            assert any(c.char_start <= block.start and block.end <= c.char_end for c in chunks), block
    configure = [chunk for chunk in chunks if chunk.section == "Guide > Configure"]
    assert len(configure) >= 2 and configure[0].page == 1 and configure[-1].page_end == 2
    assert any(chunk.page == 1 and chunk.page_end == 2 for chunk in configure)  # spans the page break
    reference = [chunk for chunk in chunks if chunk.section and chunk.section.startswith("Reference")]
    assert reference[0].text.startswith("Reference") and (reference[0].page, reference[-1].page_end) == (2, 3)


def test_a_lone_heading_joins_the_next_section_even_across_top_levels() -> None:
    cfg = config(64, 8)
    doc = structured([("Preface", None, "Preface"), ("Chapter", None, "Chapter\n\n" + sentences("chapter", 2))])
    chunks = chunk_document(doc, minilm_tokenizer(), cfg)
    assert len(chunks) == 1 and chunks[0].section == "Preface" and chunks[0].page is None


def test_context_prefix_is_embedded_not_stored_and_fits_the_window() -> None:
    cfg = ChunkerConfig(tokenizer=MINILM.model, max_tokens=64, overlap_tokens=8, context_prefix=True)
    doc = structured([("Guide > Configure", 1, sentences("configure", 20))], title="Admin guide")
    tokenizer = minilm_tokenizer()
    chunks = chunk_document(doc, tokenizer, cfg)
    assert len(chunks) > 2
    for chunk in chunks:
        assert chunk.context == "Admin guide > Guide > Configure"
        assert chunk.embedding_text == f"{chunk.context}\n\n{chunk.text}"
        assert len(tokenizer.token_offsets(chunk.embedding_text)) <= 64
        assert "Admin guide" not in chunk.text
    without = chunk_document(doc, tokenizer, config(64, 8))
    assert all(chunk.context == "" and chunk.embedding_text == chunk.text for chunk in without)
    assert {c.chunk_id for c in chunks}.isdisjoint({c.chunk_id for c in without})


def test_context_prefix_skips_what_the_chunk_already_starts_with_and_id_titles() -> None:
    cfg = ChunkerConfig(tokenizer=MINILM.model, max_tokens=64, overlap_tokens=8, context_prefix=True)
    tokenizer = minilm_tokenizer()
    titled = Document(doc_key="s/7", source="s", path="corpus.jsonl", native_id="7", title="Tides",
                      text="Tides\n\n" + sentences("moon", 12), content_hash="h", size_bytes=1, mtime=0.0)
    chunks = chunk_document(titled, tokenizer, cfg)
    assert chunks[0].context == "" and all(chunk.context == "Tides" for chunk in chunks[1:])
    untitled = titled.model_copy(update={"title": "7", "text": sentences("moon", 12)})
    assert all(chunk.context == "" for chunk in chunk_document(untitled, tokenizer, cfg))
