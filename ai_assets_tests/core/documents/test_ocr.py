"""Scanned pages read by OCR in the parsing workers, marked as OCR; OCR off quarantines them."""

from __future__ import annotations

from pathlib import Path

from ai_assets.core.documents.folders import LocalSourceFolders
from ai_assets.core.documents.loading import ParseSettings, load_source
from ai_assets.core.documents.ocr import OcrPage, _Box, _paragraphs, _reading_order, ocr_metadata, ocr_unavailable
from ai_assets_tests.document_files import pdf_bytes, scanned_text_pdf_bytes
from ai_assets_tests.system import missing_system_package

SCAN = ["Scanned lease agreement", "The monthly rent is 1250 euros,", "due on the first day of each month."]


def test_a_scanned_pdf_is_read_by_ocr_and_quarantined_with_ocr_off(tmp_path: Path) -> None:
    unavailable = ocr_unavailable()
    if unavailable:
        missing_system_package(unavailable)  # .ci/run installs libgl1 and libglib2.0-0
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "lease.pdf").write_bytes(scanned_text_pdf_bytes(SCAN))
    (folder / "typed.pdf").write_bytes(pdf_bytes([[("body", "A typed page keeps its text layer.")]], footer=None))

    # A time limit that the OCR (model load and reading, seconds) exceeds: the worker asks for
    # more time per scanned page, so the scan is read, not quarantined for its time.
    loaded = load_source(LocalSourceFolders(tmp_path), "docs", 1_000_000, ParseSettings(workers=1, timeout_seconds=1.0))
    by_path = {document.path: document for document in loaded.documents}
    assert loaded.quarantined == []
    lease = by_path["lease.pdf"]
    assert "monthly rent is 1250 euros" in lease.text.lower()
    assert [(block.page, block.ocr) for block in lease.blocks] == [(1, True)]
    assert lease.metadata["ocr_pages"] == "1" and "ocr_low_confidence_pages" not in lease.metadata
    assert [block.ocr for block in by_path["typed.pdf"].blocks] == [False]

    off = load_source(LocalSourceFolders(tmp_path), "docs", 1_000_000, ParseSettings(workers=1, ocr=False))
    assert [document.path for document in off.documents] == ["typed.pdf"]
    assert [(item.path, item.reason.split(" (")[0]) for item in off.quarantined] == [
        ("lease.pdf", "no text layer on any of its 1 page(s)")
    ]
    assert "run OCR on it first" in off.quarantined[0].reason


def test_pages_read_with_low_confidence_are_listed() -> None:
    pages = [OcrPage(page=2, paragraphs=["clear"], confidence=0.97), OcrPage(page=3, paragraphs=["bl rry"], confidence=0.55)]
    assert ocr_metadata(pages) == {"ocr_pages": "2, 3", "ocr_low_confidence_pages": "3 (0.55)"}
    assert ocr_metadata([]) == {}


def box(top: float, left: float, right: float, text: str) -> _Box:
    return _Box(top=top, bottom=top + 20, left=left, right=right, text=text, score=0.9)


def test_a_scanned_page_in_two_columns_is_read_column_by_column() -> None:
    rows = range(1, 5)
    boxes = [
        box(0, 50, 550, "A title across the page"),
        *[box(20 + 22 * row, 50, 280, f"left {row}") for row in rows],
        *[box(20 + 22 * row, 320, 550, f"right {row}") for row in rows],
        box(150, 50, 550, "A caption across the page"),
        box(190, 50, 280, "left 5"), box(190, 320, 550, "right 5"),
    ]
    order = [[b.text for b in group] for group in _reading_order(boxes)]
    assert order == [["A title across the page"], [f"left {row}" for row in rows], [f"right {row}" for row in rows],
                     ["A caption across the page"], ["left 5"], ["right 5"]]
    assert _paragraphs(boxes[1:3]) == ["left 1 left 2"]
    one_column = [box(0, 50, 550, "one column"), box(22, 50, 540, "of prose")]
    assert _reading_order(one_column) == [one_column]
