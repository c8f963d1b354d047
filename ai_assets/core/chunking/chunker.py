"""Token-aware, section-aware chunking with the embedding model's own tokenizer.

Chunks hold at most ``max_tokens`` model tokens (special tokens excluded), so the model
never truncates them silently. A document's blocks are grouped into sections (consecutive
blocks under one heading path); sections are packed whole into chunks while they fit, a section
longer than a chunk is cut into windows that end at the best nearby boundary (paragraph, line,
sentence, then word) and overlap by ``overlap_tokens``, and a chunk never spans two top-level
sections unless the first is too small to stand alone (a lone heading). A table (a block of kind
``table``: a Markdown header, then one line per row) too long for its chunk is cut between rows
only, and each chunk after its first starts with the table's header again. Each chunk records the
section of its first block and the pages it spans. A chunk's id is a stable hash of (document
key, chunk text, chunker configuration): unchanged text keeps its id and vector.

With ``context_prefix``, a chunk carries a short context (document title and section path)
that is embedded before its text, and its window is shortened by the context's tokens.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from pydantic import BaseModel, ConfigDict, model_validator

from ai_assets.core.documents.model import SECTION_SEPARATOR, TABLE_HEADER_LINES, Block, Document
from ai_assets.core.hashing import config_hash, sha256_hex


class Tokenizer(Protocol):
    """What chunking needs from a tokenizer: token character offsets, without special tokens."""

    name: str

    def token_offsets(self, text: str) -> list[tuple[int, int]]: ...

    def token_offsets_batch(self, texts: Sequence[str]) -> list[list[tuple[int, int]]]:
        """``token_offsets`` of each text, in one call (a tokenizer may spread it over the cores)."""
        ...


# Documents tokenized per call when a source is chunked: the minilm tokenizer spreads a batch
# over the cores (msmarco's 5,000 passages: 0.9 s in batches vs 1.7 s one by one, 2 cores), and
# a batch bounds the offsets held at once.
TOKENIZE_BATCH = 256


class ChunkerConfig(BaseModel):
    model_config = ConfigDict(frozen=True)

    tokenizer: str
    max_tokens: int
    overlap_tokens: int
    # Bump when the algorithm changes, so every chunk id (and stale vector) is replaced.
    algorithm_version: int = 2
    # Embed each chunk after its document title and section path (see ``context_for``).
    context_prefix: bool = False

    @model_validator(mode="after")
    def _check_sizes(self) -> ChunkerConfig:
        if self.max_tokens < 16:
            raise ValueError(f"chunk max_tokens must be at least 16, got {self.max_tokens}")
        if not 0 <= self.overlap_tokens <= self.max_tokens // 2:
            raise ValueError(
                f"chunk overlap_tokens must be between 0 and max_tokens/2 "
                f"({self.max_tokens // 2}), got {self.overlap_tokens}"
            )
        return self

    @property
    def config_hash(self) -> str:
        return config_hash(self.model_dump())


class ChunkReference(BaseModel):
    """What identifies a chunk and the document version it came from."""

    model_config = ConfigDict(frozen=True)

    chunk_id: str
    source: str
    doc_key: str
    doc_path: str
    doc_title: str
    doc_content_hash: str
    chunk_index: int
    text: str
    # Where in its document the chunk is: the heading path of its first block (" > "-joined) and
    # the 1-based pages it spans. None where the document has no headings or no pages.
    section: str | None = None
    page: int | None = None
    page_end: int | None = None


class Chunk(ChunkReference):
    # ``text`` is the document's text[char_start:char_end], except a table's continuation chunk,
    # which opens with the table's header lines (not part of that span).
    char_start: int
    char_end: int
    token_count: int
    chunker_config: str  # ChunkerConfig.config_hash
    context: str = ""  # embedded before the text when the chunker adds a context prefix

    @property
    def embedding_text(self) -> str:
        """The exact text sent to the model (and hashed as its cache key)."""
        return f"{self.context}\n\n{self.text}" if self.context else self.text


def chunk_id_for(doc_key: str, text: str, chunker_config_hash: str) -> str:
    return sha256_hex(doc_key, text, chunker_config_hash)


def chunk_document(document: Document, tokenizer: Tokenizer, config: ChunkerConfig) -> list[Chunk]:
    """Split one document into chunks; identical repeated passages of a document are kept once."""
    return _cut_document(document, tokenizer.token_offsets(document.text), tokenizer, config, config.config_hash)


def _cut_document(
    document: Document,
    offsets: Sequence[tuple[int, int]],
    tokenizer: Tokenizer,
    config: ChunkerConfig,
    config_key: str,
) -> list[Chunk]:
    """``chunk_document`` given the document's token offsets and its config's hash."""
    text = document.text
    blocks = document.structure()
    chunks: list[Chunk] = []
    seen_ids: set[str] = set()
    block_starts = [block.start for block in blocks]
    for start_token, end_token, context, header in _section_windows(document, offsets, tokenizer, config):
        char_start, char_end = offsets[start_token][0], offsets[end_token - 1][1]
        chunk_text = f"{header}\n{text[char_start:char_end]}" if header else text[char_start:char_end]
        chunk_id = chunk_id_for(document.doc_key, chunk_text, config_key)
        if chunk_id in seen_ids:
            continue
        seen_ids.add(chunk_id)
        first = blocks[max(0, bisect_right(block_starts, char_start) - 1)]
        last = blocks[max(0, bisect_right(block_starts, char_end - 1) - 1)]
        chunks.append(
            Chunk(
                chunk_id=chunk_id,
                source=document.source,
                doc_key=document.doc_key,
                doc_path=document.path,
                doc_title=document.title,
                doc_content_hash=document.content_hash,
                chunk_index=len(chunks),
                char_start=char_start,
                char_end=char_end,
                token_count=end_token - start_token + (len(tokenizer.token_offsets(header)) if header else 0),
                text=chunk_text,
                chunker_config=config_key,
                section=first.section or None,
                page=first.page,
                page_end=last.page,
                context="" if context and _starts_with(chunk_text, context) else context,
            )
        )
    return chunks


@dataclass(frozen=True)
class _Section:
    """Consecutive blocks under one heading path, as a range of the document's tokens."""

    path: str
    first_token: int
    end_token: int

    @property
    def tokens(self) -> int:
        return self.end_token - self.first_token

    @property
    def top_level(self) -> str:
        return self.path.split(SECTION_SEPARATOR)[0]


def document_sections(blocks: Sequence[Block], offsets: Sequence[tuple[int, int]]) -> list[_Section]:
    """The token ranges of consecutive blocks sharing a section (empty ranges left out)."""
    token_starts = [start for start, _ in offsets]
    sections: list[_Section] = []
    for block in blocks:
        first, end = bisect_left(token_starts, block.start), bisect_left(token_starts, block.end)
        if first >= end:
            continue
        if sections and sections[-1].path == block.section and sections[-1].end_token == first:
            sections[-1] = _Section(block.section, sections[-1].first_token, end)
        else:
            sections.append(_Section(block.section, first, end))
    return sections


def _section_windows(
    document: Document, offsets: Sequence[tuple[int, int]], tokenizer: Tokenizer, config: ChunkerConfig
) -> Iterator[tuple[int, int, str, str]]:
    """(first token, end token, context, repeated table header) of every chunk: whole sections
    packed while they fit, longer ones cut into overlapping windows (tables between rows)."""
    min_tokens = max(1, config.max_tokens // 8)  # less than this cannot stand alone (a heading)
    pending: _Section | None = None  # sections packed so far, not yet emitted
    pending_context = ""
    budget = config.max_tokens
    tables = _Tables(document, offsets)

    for section in document_sections(document.structure(), offsets):
        if pending is not None:
            too_small = pending.tokens < min_tokens
            same_top = pending.top_level == section.top_level
            if (same_top or too_small) and pending.tokens + section.tokens <= budget:
                pending = _Section(pending.path, pending.first_token, section.end_token)
                continue
            if not too_small:
                yield pending.first_token, pending.end_token, pending_context, ""
                pending = None
        context = context_for(_meaningful_title(document), section.path, tokenizer, config) if config.context_prefix else ""
        if pending is None:
            pending_context, budget = context, _budget(context, tokenizer, config)
            start = section.first_token
        else:  # a too-small section leads into this one, which it does not fit beside: cut them together
            start = pending.first_token
        merged = _Section(pending.path if pending is not None else section.path, start, section.end_token)
        if merged.tokens <= budget:
            pending = merged
            continue
        pending = None
        for first, end, header in _range_windows(document, offsets, tables, start, section.end_token, budget, tokenizer, config):
            yield first, end, pending_context, header
    if pending is not None:
        yield pending.first_token, pending.end_token, pending_context, ""


class _Tables:
    """A document's table blocks, and its token starts to find their rows (made once, and only
    for a document that has tables)."""

    def __init__(self, document: Document, offsets: Sequence[tuple[int, int]]) -> None:
        self.blocks = [block for block in document.structure() if block.kind == "table"]
        self.token_starts = [first for first, _ in offsets] if self.blocks else []


def _range_windows(
    document: Document,
    offsets: Sequence[tuple[int, int]],
    tables: _Tables,
    start: int,
    end: int,
    budget: int,
    tokenizer: Tokenizer,
    config: ChunkerConfig,
) -> Iterator[tuple[int, int, str]]:
    """Windows over tokens [start, end): text in overlapping windows, each table by its rows."""
    token_starts = tables.token_starts
    position = start
    for table in tables.blocks:
        first, stop = max(start, bisect_left(token_starts, table.start)), min(end, bisect_left(token_starts, table.end))
        if first >= stop:
            continue
        if first - position > budget // 4:  # else the text leads into the table (a caption, an intro)
            yield from _text_windows(document.text, offsets, position, first, budget, tokenizer, config)
            position = first
        yield from _table_windows(document.text, offsets, token_starts, table, position, stop, budget, tokenizer)
        position = stop
    yield from _text_windows(document.text, offsets, position, end, budget, tokenizer, config)


def _text_windows(
    text: str, offsets: Sequence[tuple[int, int]], start: int, end: int, budget: int, tokenizer: Tokenizer, config: ChunkerConfig
) -> Iterator[tuple[int, int, str]]:
    if start < end:
        for first, stop in token_windows(text, offsets[start:end], budget, config.overlap_tokens, tokenizer):
            yield start + first, start + stop, ""


def _table_windows(
    text: str,
    offsets: Sequence[tuple[int, int]],
    token_starts: Sequence[int],
    table: Block,
    start: int,
    end: int,
    budget: int,
    tokenizer: Tokenizer,
) -> Iterator[tuple[int, int, str]]:
    """A table's tokens [start, end) in windows of whole rows, packed while they fit: the first
    window opens with the header, every later one repeats it (``header``). Only a row longer than
    a window on its own is cut (by words), each piece under the header."""
    lines = text[table.start : table.end].split("\n")
    header = "\n".join(lines[:TABLE_HEADER_LINES])
    row_starts, position = [], table.start
    for line in lines:
        row_starts.append(position)
        position += len(line) + 1
    # Token index where each row starts (the header is the first "row" of the first window).
    boundaries = sorted({start, *(bisect_left(token_starts, char) for char in row_starts[TABLE_HEADER_LINES:]), end})
    boundaries = [token for token in boundaries if start <= token <= end]
    header_tokens = len(tokenizer.token_offsets(header))
    repeat = header if header_tokens <= budget // 2 else ""  # a header too long to repeat is not
    row_budget = budget - (header_tokens if repeat else 0)
    window_start, prefix = start, ""
    for row, row_end in zip(boundaries, boundaries[1:], strict=False):
        limit = row_budget if prefix else budget
        if row > window_start and row_end - window_start > limit:
            yield window_start, row, prefix
            window_start, prefix = row, repeat
            limit = row_budget if prefix else budget
        if row_end - window_start > limit:  # one row longer than a window: cut it by words
            for first, stop in token_windows(text, offsets[window_start:row_end], limit, 0, tokenizer):
                yield window_start + first, window_start + stop, prefix
            window_start, prefix = row_end, repeat
    if window_start < end:
        yield window_start, end, prefix


def context_for(title: str, section: str, tokenizer: Tokenizer, config: ChunkerConfig) -> str:
    """The context embedded before a chunk: document title and section path, without repeats,
    shortened from the front to a quarter of the window at most."""
    parts: list[str] = []
    for part in [title, *section.split(SECTION_SEPARATOR)]:
        part = " ".join(part.split())
        if part and (not parts or parts[-1].casefold() != part.casefold()):
            parts.append(part)
    limit = config.max_tokens // 4
    while parts:
        context = SECTION_SEPARATOR.join(parts)
        if len(tokenizer.token_offsets(context)) <= limit:
            return context
        parts = parts[1:]
    return ""


def _meaningful_title(document: Document) -> str:
    """The title, unless it is only a corpus line's id standing in for a missing one."""
    return "" if document.native_id is not None and document.title == document.native_id else document.title


def _budget(context: str, tokenizer: Tokenizer, config: ChunkerConfig) -> int:
    if not context:
        return config.max_tokens
    return max(16, config.max_tokens - len(tokenizer.token_offsets(context)))


def _starts_with(text: str, context: str) -> bool:
    """A chunk that opens with its whole context (a corpus passage opening with its title) needs none."""
    return " ".join(text.split()).casefold().startswith(context.casefold())


@dataclass(frozen=True)
class ChunkingResult:
    chunks: list[Chunk]
    rechunked_documents: int  # documents tokenized and cut in this call
    reused_documents: int  # documents whose chunks were carried over unchanged


def chunk_documents(
    documents: Sequence[Document],
    tokenizer: Tokenizer,
    config: ChunkerConfig,
    previous: Iterable[Chunk] = (),
) -> ChunkingResult:
    """Chunks of every document, reusing the previous chunks of each document version seen before.

    Chunking is deterministic in (document version, config), so a document whose key, path,
    title and content hash are unchanged gets exactly the chunks it had: only new and edited
    documents pay for tokenizing, which dominates ingestion of a large, mostly unchanged source.
    """
    config_key = config.config_hash
    wanted = {_version(document): document for document in documents}
    carried: dict[tuple[str, str, str, str], list[Chunk]] = {}
    for chunk in previous:
        version = (chunk.doc_key, chunk.doc_path, chunk.doc_title, chunk.doc_content_hash)
        if chunk.chunker_config == config_key and version in wanted:
            carried.setdefault(version, []).append(chunk)
    chunks: list[Chunk] = []
    reused_documents = 0
    for first in range(0, len(documents), TOKENIZE_BATCH):
        batch = documents[first : first + TOKENIZE_BATCH]
        fresh = [document.text for document in batch if _version(document) not in carried]
        fresh_offsets = iter(tokenizer.token_offsets_batch(fresh) if fresh else [])
        for document in batch:
            reused = carried.get(_version(document))
            if reused is None:
                chunks.extend(_cut_document(document, next(fresh_offsets), tokenizer, config, config_key))
            else:
                reused_documents += 1
                chunks.extend(sorted(reused, key=lambda chunk: chunk.chunk_index))
    return ChunkingResult(chunks, len(documents) - reused_documents, reused_documents)


def _version(document: Document) -> tuple[str, str, str, str]:
    return (document.doc_key, document.path, document.title, document.content_hash)


def token_windows(
    text: str,
    offsets: Sequence[tuple[int, int]],
    max_tokens: int,
    overlap_tokens: int,
    tokenizer: Tokenizer,
) -> Iterator[tuple[int, int]]:
    """Half-open token index windows covering every token, ending at good boundaries."""
    token_count = len(offsets)
    start = 0
    while start < token_count:
        end = min(start + max_tokens, token_count)
        if end < token_count:
            end = _best_break(text, offsets, start, end)
            end = _fit_window(text, offsets, start, end, tokenizer, max_tokens)
        yield start, end
        if end >= token_count:
            return
        next_start = max(end - overlap_tokens, start + 1)
        # Start the overlap on a word, not inside one.
        while next_start < end and not _is_word_start(text, offsets, next_start):
            next_start += 1
        start = next_start


# Preferred window ends, best first: what the text between two tokens must contain.
_BREAK_RANKS = ("\n\n", "\n", "sentence", "word")


def _best_break(text: str, offsets: Sequence[tuple[int, int]], start: int, end: int) -> int:
    """The window end in the last half of the window with the strongest boundary before token `end`."""
    earliest = start + max(1, (end - start) // 2)
    for rank in _BREAK_RANKS:
        for candidate in range(end, earliest - 1, -1):
            if _boundary_matches(text, offsets, candidate, rank):
                return candidate
    return end


def _boundary_matches(text: str, offsets: Sequence[tuple[int, int]], index: int, rank: str) -> bool:
    """Whether the boundary before token `index` is of the given kind."""
    gap = text[offsets[index - 1][1] : offsets[index][0]]
    if rank == "word":
        return _is_word_start(text, offsets, index)
    if rank == "sentence":
        return bool(gap) and text[offsets[index - 1][1] - 1] in ".!?:;"
    return rank in gap


def _is_word_start(text: str, offsets: Sequence[tuple[int, int]], index: int) -> bool:
    """True when cutting before token `index` does not split a word into pieces."""
    if index == 0:
        return True
    previous_end, current_start = offsets[index - 1][1], offsets[index][0]
    if current_start > previous_end:
        return True
    return not (text[current_start].isalnum() and text[previous_end - 1].isalnum())


def _fit_window(
    text: str,
    offsets: Sequence[tuple[int, int]],
    start: int,
    end: int,
    tokenizer: Tokenizer,
    max_tokens: int,
) -> int:
    """Shrink a window cut inside a word until its text re-tokenizes within the limit.

    A cut between whole words re-tokenizes to the same tokens; a cut inside an overlong
    word (a URL, a hash) may not, so it is checked rather than trusted.
    """
    if _is_word_start(text, offsets, end):
        return end
    while end - start > 1:
        chunk_text = text[offsets[start][0] : offsets[end - 1][1]]
        if len(tokenizer.token_offsets(chunk_text)) <= max_tokens:
            return end
        end -= 1
    return end
