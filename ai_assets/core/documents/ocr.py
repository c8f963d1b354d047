"""Text of scanned PDF pages by OCR: RapidOCR's PP-OCRv4 models in ONNX Runtime.

The models ship inside the ``rapidocr-onnxruntime`` wheel (Apache-2.0, like PaddleOCR's models),
so nothing is downloaded. A page is read when it has no text layer but holds an image: it is
rendered at ``_DPI``, its text lines found and recognised, and the lines joined into paragraphs
(a gap wider than a line starts one). The engine is loaded once per parsing worker, on the first
scanned page, and runs on one thread: there is a worker per core already.

Each page's confidence is the recognizer's score averaged over its characters; a page under
``LOW_CONFIDENCE`` is listed in the document's metadata, so a bad scan can be found and redone.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Protocol

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_raw

from ai_assets.core.documents.model import ParsedBlock, UnreadableDocument
from ai_assets.core.documents.parsing import ask_for_more_time, memory_limit_lifted

# 10 pt text is ~42 px high, about the recognizer's own line height (48 px): at 200 dpi (or at the
# engine's default cap of 2,000 px a side) it drops many spaces between words ("Wesettled onthis").
_DPI = 300
_MAX_SIDE = 3600  # an A4 or Letter page at _DPI, not shrunk
LOW_CONFIDENCE = 0.8
# What a scanned page adds to its file's parsing time limit: a full page of a paper took 27 CPU
# seconds on this (loaded) machine (bench/RESULTS.md).
OCR_SECONDS_PER_PAGE = 60.0
# Document metadata: the pages OCR read ("3, 4"), and those under LOW_CONFIDENCE ("4 (0.62)").
OCR_PAGES, OCR_LOW_CONFIDENCE_PAGES = "ocr_pages", "ocr_low_confidence_pages"
# A page whose middle is crossed by more than this share of its lines is set in one column.
_SPANNING = 0.2
_PARAGRAPH_GAP = 0.9  # a vertical gap wider than this many line heights ends a paragraph


@dataclass(frozen=True)
class OcrPage:
    page: int  # 1-based
    paragraphs: list[str]
    confidence: float  # 0..1, over the page's characters; 0 for a page without text


class _TextLine(Protocol):
    page: int
    text: str


@dataclass(frozen=True)
class _Box:
    top: float
    bottom: float
    left: float
    right: float
    text: str
    score: float


def needs_ocr(page: pdfium.PdfPage, text_chars: int) -> bool:
    """A page with (almost) no text layer that holds an image: a scan. A page of drawings only,
    or a blank one, has nothing to read."""
    return text_chars < 16 and any(True for _ in page.get_objects(filter=[pdfium_raw.FPDF_PAGEOBJ_IMAGE], max_depth=2))


def read_page(page: pdfium.PdfPage, number: int) -> OcrPage:
    import numpy as np

    # At _DPI, but never past _MAX_SIDE pixels a side: a page's size is the file's to choose, and
    # the rendering runs without the worker's memory cap (memory_limit_lifted).
    scale = min(_DPI / 72, _MAX_SIDE / max(page.get_width(), page.get_height(), 1.0))
    image = page.render(scale=scale, grayscale=True).to_pil().convert("RGB")
    result, _ = _engine()(np.asarray(image), use_cls=False)
    boxes = [
        _Box(
            top=min(y for _, y in corners), bottom=max(y for _, y in corners), left=min(x for x, _ in corners),
            right=max(x for x, _ in corners), text=text, score=score,
        )
        for corners, text, score in (result or []) if text.strip()
    ]
    chars = sum(len(box.text) for box in boxes)
    confidence = sum(box.score * len(box.text) for box in boxes) / chars if chars else 0.0
    paragraphs = [paragraph for group in _reading_order(boxes) for paragraph in _paragraphs(group)]
    return OcrPage(page=number, paragraphs=paragraphs, confidence=round(confidence, 3))


def ocr_unavailable() -> str | None:
    """Why OCR cannot start on this machine (OpenCV, which the engine loads, needs the system's
    libGL and GLib, which a slim image lacks), or None."""
    try:
        import cv2  # noqa: F401
    except ImportError as error:
        return (
            f"OCR cannot start here ({error}): install the system libraries "
            "(apt-get install libgl1 libglib2.0-0), or set AI_ASSETS_OCR=false"
        )
    return None


@cache
def _engine():
    unavailable = ocr_unavailable()
    if unavailable:
        raise UnreadableDocument(f"a scanned page needs OCR, and {unavailable}")
    from rapidocr_onnxruntime import RapidOCR

    # No angle classifier: scans are upright, and it costs a model run per line. Pages come
    # rendered at a readable resolution: the detector's default of enlarging an image to 736 px on
    # its short side only makes a small page 4x slower to read (measured), never better.
    return RapidOCR(
        intra_op_num_threads=1, inter_op_num_threads=1, use_cls=False, det_limit_side_len=320, max_side_len=_MAX_SIDE
    )


def _reading_order(boxes: list[_Box]) -> list[list[_Box]]:
    """The page's boxes in groups to read one after the other: on a page set in two columns, the
    left column then the right one, between the lines that span both (a title, a wide figure)."""
    if not boxes:
        return []
    left_edge, right_edge = min(box.left for box in boxes), max(box.right for box in boxes)
    middle_third = [left_edge + (right_edge - left_edge) * step / 20 for step in range(7, 14)]
    gutter = min(middle_third, key=lambda x: sum(box.left < x < box.right for box in boxes))
    if sum(box.left < gutter < box.right for box in boxes) > _SPANNING * len(boxes):
        return [boxes]  # one column
    groups: list[list[_Box]] = []
    left: list[_Box] = []
    right: list[_Box] = []
    for box in sorted(boxes, key=lambda box: box.top):
        if box.left < gutter < box.right:
            if left or right:
                groups.extend([left, right])
                left, right = [], []
            if not groups or not groups[-1] or not (groups[-1][-1].left < gutter < groups[-1][-1].right):
                groups.append([])
            groups[-1].append(box)
        else:
            (left if box.right <= gutter else right).append(box)
    groups.extend([left, right])
    return [group for group in groups if group]


def _paragraphs(boxes: list[_Box]) -> list[str]:
    """Boxes into lines (vertical overlap), left to right; lines into paragraphs by their gaps."""
    lines: list[list[_Box]] = []
    for box in sorted(boxes, key=lambda box: box.top):
        middle = (box.top + box.bottom) / 2
        if lines and min(b.top for b in lines[-1]) <= middle <= max(b.bottom for b in lines[-1]):
            lines[-1].append(box)
        else:
            lines.append([box])
    paragraphs: list[list[str]] = []
    previous: list[_Box] | None = None
    for line in lines:
        text = " ".join(box.text.strip() for box in sorted(line, key=lambda box: box.left))
        if previous is not None:
            height = max(b.bottom for b in previous) - min(b.top for b in previous)
            gap = min(b.top for b in line) - max(b.bottom for b in previous)
            if gap <= _PARAGRAPH_GAP * height:
                paragraphs[-1].append(text)
                previous = line
                continue
        paragraphs.append([text])
        previous = line
    return [_joined(lines) for lines in paragraphs]


def _joined(lines: list[str]) -> str:
    """A paragraph's lines as one text, words hyphenated at a line end joined."""
    text = lines[0]
    for line in lines[1:]:
        if text.endswith("-") and text[-2:-1].isalpha() and line[:1].islower():
            text = text[:-1] + line
        else:
            text = f"{text} {line}"
    return text


def read_scanned_pages(pdf: pdfium.PdfDocument, lines: Sequence[_TextLine]) -> list[OcrPage]:
    """OCR of every page of ``pdf`` that needs it, given the text-layer lines read from it."""
    chars = Counter()
    for line in lines:
        chars[line.page] += len(line.text.strip())
    scanned = []
    for index in range(len(pdf)):
        page = pdf[index]
        try:
            if needs_ocr(page, chars[index + 1]):
                scanned.append(index)
        finally:
            page.close()
    if scanned:
        ask_for_more_time(len(scanned) * OCR_SECONDS_PER_PAGE)
    found = []
    with memory_limit_lifted():
        for index in scanned:
            page = pdf[index]
            try:
                found.append(read_page(page, index + 1))
            finally:
                page.close()
    return found


def no_text_reason(pages: int, ocr: bool) -> str:
    if ocr:
        return f"no text layer on any of its {pages} page(s), and no text that OCR could read"
    return f"no text layer on any of its {pages} page(s) (a scanned PDF?): run OCR on it first (OCR is off: AI_ASSETS_OCR)"


def with_ocr_pages(blocks: Sequence[ParsedBlock], ocr_pages: Sequence[OcrPage]) -> list[ParsedBlock]:
    """The text layer's blocks with each OCR'd page's paragraphs in page order, as one block per
    page (marked ``ocr``) under the heading path in force where the page falls."""
    result = list(blocks)
    for scanned in ocr_pages:
        if not scanned.paragraphs:
            continue
        position = next((i for i, block in enumerate(result) if (block.page or 0) > scanned.page), len(result))
        section = result[position - 1].section if position else ""
        text = "\n\n".join(scanned.paragraphs)
        result.insert(position, ParsedBlock(text=text, section=section, page=scanned.page, ocr=True))
    return result


def ocr_metadata(ocr_pages: Sequence[OcrPage]) -> dict[str, str]:
    """Which pages OCR read, and which of them it read with low confidence (a scan to redo)."""
    if not ocr_pages:
        return {}
    low = [f"{page.page} ({page.confidence:.2f})" for page in ocr_pages if page.confidence < LOW_CONFIDENCE]
    metadata = {OCR_PAGES: ", ".join(str(page.page) for page in ocr_pages)}
    if low:
        metadata[OCR_LOW_CONFIDENCE_PAGES] = ", ".join(low)
    return metadata
