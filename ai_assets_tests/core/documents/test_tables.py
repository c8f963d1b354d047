"""Tables keep their rows: Word and PDF tables (ruled and unruled) become Markdown tables whose
chunks hold whole rows and repeat the header."""

from __future__ import annotations

import pytest

from ai_assets.core.chunking.chunker import Chunk, ChunkerConfig, chunk_document
from ai_assets.core.documents.docx import parse_docx
from ai_assets.core.documents.model import ParsedDocument, assemble_document
from ai_assets.core.documents.pdf import parse_pdf
from ai_assets.core.embedding.base import MINILM
from ai_assets.core.embedding.tokenizer import minilm_tokenizer
from ai_assets_tests.document_files import docx_bytes, pdf_table_bytes

HEADER = ["Region", "Servers", "Latency"]
ROWS = [[f"zone-{n}", str(100 + n), f"{n * 3} ms"] for n in range(1, 31)]


def chunks_of(parsed: ParsedDocument, max_tokens: int = 64) -> list[Chunk]:
    document = assemble_document(parsed, source="s", path="t", size_bytes=1, mtime=0.0, fallback_title="t")
    config = ChunkerConfig(tokenizer=MINILM.model, max_tokens=max_tokens, overlap_tokens=8)
    return chunk_document(document, minilm_tokenizer(), config)


def assert_rows_whole_under_header(chunks: list[Chunk]) -> None:
    """Every row is a whole line of some chunk, every chunk holding a row has the header above
    it, no chunk holds part of a row, and no chunk is over its token limit."""
    header = "| " + " | ".join(HEADER) + " |"
    rows = ["| " + " | ".join(row) + " |" for row in ROWS]
    table_chunks = [chunk for chunk in chunks if any(row in chunk.text for row in rows)]
    assert len(table_chunks) > 1, "the table should span several chunks"
    for chunk in table_chunks:
        lines = chunk.text.split("\n")
        assert header in lines and lines[lines.index(header) + 1] == "| --- | --- | --- |", chunk.text
        table_lines = [line for line in lines if line.startswith("|")]
        assert all(line in {header, "| --- | --- | --- |", *rows} for line in table_lines), chunk.text
        assert chunk.token_count == len(minilm_tokenizer().token_offsets(chunk.text)) <= 64
    found = [line for chunk in table_chunks for line in chunk.text.split("\n") if line in rows]
    assert sorted(set(found)) == sorted(rows)


def test_a_word_table_becomes_rows_with_their_header_in_every_chunk() -> None:
    table = "\n".join(" | ".join(row) for row in [HEADER, *ROWS])
    parsed = parse_docx(docx_bytes([("h1", "Capacity"), ("body", "Servers per region."), ("table", table),
                                    ("body", "Numbers as of last quarter.")]))
    kinds = [(block.kind, block.section) for block in parsed.blocks]
    assert kinds == [("text", "Capacity"), ("table", "Capacity"), ("text", "Capacity")]
    chunks = chunks_of(parsed)
    assert_rows_whole_under_header(chunks)
    assert chunks[0].text.startswith("Capacity\n\nServers per region.\n\n| Region |")
    assert chunks[-1].text.endswith("Numbers as of last quarter.")


@pytest.mark.parametrize("ruled", [True, False], ids=["ruled", "unruled"])
def test_a_pdf_table_becomes_rows_with_their_header_in_every_chunk(ruled: bool) -> None:
    parsed = parse_pdf(pdf_table_bytes([HEADER, *ROWS], ruled=ruled, before="Servers per region.", after="Numbers as of last quarter."))
    assert [block.kind for block in parsed.blocks] == ["text", "table", "text"]
    assert [block.text for block in parsed.blocks if block.kind == "text"] == ["Servers per region.", "Numbers as of last quarter."]
    assert_rows_whole_under_header(chunks_of(parsed))


PROSE = ["The tablet server keeps the recent writes", "in memory, and the older ones in files", "on disk that are never changed again."]


@pytest.mark.parametrize(
    ("rows", "column_width"),
    [([[line, line] for line in PROSE * 2], 270), ([["\u2022", line] for line in PROSE * 2], 30)],
    ids=["two-columns-of-prose", "bullets-set-apart"],
)
def test_prose_in_columns_and_lists_are_not_tables(rows: list[list[str]], column_width: float) -> None:
    parsed = parse_pdf(pdf_table_bytes(rows, ruled=False, before="Before.", after="After.", column_width=column_width, bold_header=False))
    assert all(block.kind == "text" for block in parsed.blocks)
