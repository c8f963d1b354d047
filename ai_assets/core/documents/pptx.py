"""PowerPoint decks (.pptx) through python-pptx: one page per slide, the slide title as its section,
then the text of its other shapes (tables as rows) and its speaker notes."""

from __future__ import annotations

import io
import zipfile

from ai_assets.core.documents.model import ParsedBlock, ParsedDocument, UnreadableDocument


def parse_pptx(raw: bytes) -> ParsedDocument:
    from pptx import Presentation
    from pptx.exc import PackageNotFoundError

    if not zipfile.is_zipfile(io.BytesIO(raw)):
        raise UnreadableDocument("not a PowerPoint deck: a .pptx file is a zip archive, this is not one")
    try:
        deck = Presentation(io.BytesIO(raw))
    except (PackageNotFoundError, KeyError, ValueError, zipfile.BadZipFile) as error:
        raise UnreadableDocument(f"not a readable PowerPoint deck: {error}") from None
    blocks = []
    for number, slide in enumerate(deck.slides, start=1):
        title_shape = slide.shapes.title
        title = " ".join(title_shape.text_frame.text.split()) if title_shape is not None and title_shape.has_text_frame else ""
        texts = [title] if title else []
        for shape in slide.shapes:
            if title_shape is not None and shape.shape_id == title_shape.shape_id:
                continue
            if shape.has_text_frame:
                texts.extend(p for p in (" ".join(par.text.split()) for par in shape.text_frame.paragraphs) if p)
            elif getattr(shape, "has_table", False) and shape.has_table:
                for row in shape.table.rows:
                    cells = [" ".join(cell.text.split()) for cell in row.cells]
                    if any(cells):
                        texts.append(" | ".join(cells))
        if slide.has_notes_slide:
            notes = slide.notes_slide.notes_text_frame.text.strip()
            if notes:
                texts.append(notes)
        if texts:
            blocks.append(ParsedBlock(text="\n\n".join(texts), section=title, page=number))
    title = (deck.core_properties.title or "").strip() or next((block.section for block in blocks if block.section), "")
    return ParsedDocument(title=title, blocks=blocks, pages=len(deck.slides))
