"""Each format read from a real file: sections, pages, titles and metadata as a reader sees them."""

from __future__ import annotations

import pytest

from ai_assets.core.documents.docx import parse_docx
from ai_assets.core.documents.html import parse_html
from ai_assets.core.documents.markdown import parse_markdown
from ai_assets.core.documents.model import UnreadableDocument, assemble_document
from ai_assets.core.documents.pdf import parse_pdf
from ai_assets.core.documents.pptx import parse_pptx
from ai_assets.core.documents.text import parse_rst
from ai_assets_tests.document_files import docx_bytes, pdf_bytes, pptx_bytes, scanned_pdf_bytes

HANDBOOK = [
    [("h1", "Operations handbook"), ("body", "How we run the platform day to day."), ("body", ""),
     ("h2", "Retries"), ("body", "A failed run is retried three times with an exponential"),
     ("body", "backoff between attempts, so that a flaky dependency recov-"),
     ("body", "ers before the run gives up.")],
    [("h3", "Backoff"), ("body", "The backoff doubles after each attempt and adds jitter."),
     ("code", "retry_policy = RetryPolicy(max_retries=3)"), ("code", "backoff = Backoff.EXPONENTIAL"),
     ("body", ""), ("h2", "Schedules"), ("body", "Schedules run in UTC unless a timezone is set.")],
    [("h3", "Time zones"), ("body", "Set the timezone parameter to run in local time.")],
]


def by_section(parsed) -> dict[str, list[tuple[int | None, str]]]:
    found: dict[str, list[tuple[int | None, str]]] = {}
    for block in parsed.blocks:
        found.setdefault(block.section, []).append((block.page, block.text))
    return found


@pytest.mark.parametrize("outline", [False, True], ids=["styled-headings", "outline"])
def test_pdf_headings_become_sections_with_their_pages(outline: bool) -> None:
    parsed = parse_pdf(pdf_bytes(HANDBOOK, outline=outline, header="Operations handbook"))
    sections = by_section(parsed)
    assert parsed.pages == 3 and parsed.title == "Operations handbook"
    assert list(sections) == [
        "Operations handbook",
        "Operations handbook > Retries",
        "Operations handbook > Retries > Backoff",
        "Operations handbook > Schedules",
        "Operations handbook > Schedules > Time zones",
    ]
    assert [page for page, _ in sections["Operations handbook > Retries > Backoff"]] == [2]
    assert [page for page, _ in sections["Operations handbook > Schedules > Time zones"]] == [3]
    text = "\n".join(block.text for block in parsed.blocks)
    # Lines of a paragraph joined, the hyphenated word whole, code lines kept apart.
    assert "with an exponential backoff between attempts, so that a flaky dependency recovers before" in text
    assert "retry_policy = RetryPolicy(max_retries=3)\nbackoff = Backoff.EXPONENTIAL" in text
    # The running header and the page-numbered footer are not text.
    assert "Handbook - page" not in text
    assert text.count("Operations handbook") == 1


def test_pdf_repeated_furniture_is_dropped_but_a_heading_like_it_stays() -> None:
    pages = [[("h1", f"Chapter {number}"), ("body", f"Body text of chapter {number}.")] for number in range(1, 5)]
    parsed = parse_pdf(pdf_bytes(pages, header="ACME Corp confidential", footer="{page}"))
    text = "\n".join(block.text for block in parsed.blocks)
    assert "confidential" not in text and not any(block.text.strip().isdigit() for block in parsed.blocks)
    assert [block.section for block in parsed.blocks] == [f"Chapter {n}" for n in range(1, 5)]
    assert [block.page for block in parsed.blocks] == [1, 2, 3, 4]


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (pdf_bytes(HANDBOOK, password="secret"), "encrypted PDF"),
        (pdf_bytes(HANDBOOK)[:1500], "truncated PDF"),
        (scanned_pdf_bytes(), "no text layer on any of its 2 page(s)"),
        (b"%PDF-1.7\n" + b"\x00garbage" * 50 + b"\n%%EOF\n", "not a readable PDF"),
        (b"just some text, not a PDF", "not a PDF file"),
    ],
    ids=["encrypted", "truncated", "scanned", "corrupt", "not-pdf"],
)
def test_bad_pdfs_are_refused_with_their_reason(data: bytes, reason: str) -> None:
    with pytest.raises(UnreadableDocument, match=reason.replace("(", r"\(").replace(")", r"\)")):
        parse_pdf(data)


DOCX_PARTS = [
    ("h1", "Runbook"), ("body", "What to do when a job fails."),
    ("h2", "Retries"), ("body", "Retry a run from the failed step."), ("item", "Open the run page"),
    ("item", "Click re-execute"), ("table", "setting | default\nmax_retries | 3"),
    ("h3", "Backoff"), ("body", "Wait longer after each failure."), ("code", "backoff = 2 ** attempt"),
    ("h2", "Escalation"), ("body", "Page the on-call engineer after three failures."),
]


@pytest.mark.parametrize("heading_styles", [True, False], ids=["heading-styles", "bold-larger-runs"])
def test_docx_headings_lists_and_tables_in_order(heading_styles: bool) -> None:
    parsed = parse_docx(docx_bytes(DOCX_PARTS, heading_styles=heading_styles))
    sections = by_section(parsed)
    assert parsed.title == "Runbook" and parsed.pages is None
    assert list(sections) == ["Runbook", "Runbook > Retries", "Runbook > Retries > Backoff", "Runbook > Escalation"]
    retries = [text for _, text in sections["Runbook > Retries"]]
    assert retries == [
        "Retries\n\nRetry a run from the failed step.\n\n- Open the run page\n\n- Click re-execute",
        "| setting | default |\n| --- | --- |\n| max_retries | 3 |",
    ]
    assert all(page is None for blocks in sections.values() for page, _ in blocks)


def test_docx_pages_from_words_own_page_breaks() -> None:
    parsed = parse_docx(docx_bytes(DOCX_PARTS, new_pages=[7, 10]))
    pages = {block.section: block.page for block in parsed.blocks}
    assert pages == {"Runbook": 1, "Runbook > Retries": 1, "Runbook > Retries > Backoff": 2, "Runbook > Escalation": 3}
    assert parsed.pages == 3


def test_a_docx_that_is_not_a_zip_is_refused() -> None:
    with pytest.raises(UnreadableDocument, match="not a Word document"):
        parse_docx(b"PK? no, plain text pretending to be Word")


def test_pptx_slides_are_pages_and_titles_sections() -> None:
    parsed = parse_pptx(pptx_bytes([("Retries", "Back off exponentially"), ("Pools", "Limit concurrency")]))
    assert [(block.section, block.page) for block in parsed.blocks] == [("Retries", 1), ("Pools", 2)]
    assert "Back off exponentially" in parsed.blocks[0].text


PAGE = b"""<!doctype html><html><head><title>Sensors | Docs</title><style>body{color:red}</style>
<script>var tracker = "TRACKING-SCRIPT";</script></head><body>
<header><a href="/">Home</a> <a href="/docs">NAVLINK Docs</a></header>
<nav><ul><li>MENU Assets</li><li>MENU Jobs</li></ul></nav>
<div class="sidebar">SIDEBAR related pages</div>
<main><article><header><h1>Sensors</h1></header><p>A sensor polls for <b>new files</b> and requests runs.</p>
<h2>Cursors</h2><p>Its cursor remembers<br>what it has seen.</p><ul><li>one</li><li>two</li></ul>
<table><tr><th>setting</th><th>default</th></tr><tr><td>interval</td><td>30</td></tr></table>
<h3>Resetting</h3><pre><code>sensor.reset()
    # keeps indentation</code></pre></article></main>
<footer>COPYRIGHT 2026 <a href="/privacy">Privacy</a></footer><div id="cookie-banner">COOKIES accept</div>
<script>track("FOOTER-SCRIPT")</script></body></html>"""


def test_html_main_content_with_headings_as_sections() -> None:
    parsed = parse_html(PAGE)
    assert parsed.title == "Sensors | Docs"
    sections = by_section(parsed)
    assert list(sections) == ["Sensors", "Sensors > Cursors", "Sensors > Cursors > Resetting"]
    text = "\n".join(block.text for block in parsed.blocks)
    for boilerplate in ("TRACKING", "NAVLINK", "MENU", "SIDEBAR", "COPYRIGHT", "COOKIES", "FOOTER-SCRIPT", "color:red"):
        assert boilerplate not in text, boilerplate
    assert "A sensor polls for new files and requests runs." in text
    assert "Its cursor remembers\nwhat it has seen." in text
    assert "- one\n\n- two" in text and "setting | default\n\ninterval | 30" in text
    assert "sensor.reset()\n    # keeps indentation" in text


MARKDOWN = b"""---
title: Operations handbook
owner: platform-team
tags: [ops, retries]
reviewed: 2026-01-15
---
# Handbook

Intro text.

```python
# a comment, not a heading
```

## Retries with `RetryPolicy`

Retry three times.

Backoff
-------

Doubles each time.
"""


def test_markdown_front_matter_is_metadata_and_headings_are_sections() -> None:
    parsed = parse_markdown(MARKDOWN)
    assert parsed.title == "Operations handbook"
    assert parsed.metadata == {"owner": "platform-team", "tags": '["ops", "retries"]', "reviewed": "2026-01-15"}
    document = assemble_document(parsed, source="s", path="h.md", size_bytes=len(MARKDOWN), mtime=0.0, fallback_title="h")
    assert "platform-team" not in document.text and "title:" not in document.text
    assert [block.section for block in document.blocks] == [
        "Handbook", "Handbook > Retries with RetryPolicy", "Handbook > Backoff",
    ]
    assert "# a comment, not a heading" in document.text


@pytest.mark.parametrize(
    ("data", "reason"),
    [(b"---\ntitle: [unclosed\n---\n# Body\n", "invalid YAML front matter"),
     (b"---\n- a\n- b\n---\n# Body\n", "front matter is not a YAML mapping"),
     (b"---\ntitle: Only metadata\n---\n", "only front matter, no text")],
)
def test_bad_front_matter_is_refused(data: bytes, reason: str) -> None:
    with pytest.raises(UnreadableDocument, match=reason):
        parse_markdown(data)


def test_rst_titles_by_adornment_order() -> None:
    parsed = parse_rst(b"Guide\n=====\n\nintro\n\nInstall\n-------\n\nsteps\n\nUse\n===\n\nrun it\n")
    assert [block.section for block in parsed.blocks] == ["Guide", "Guide > Install", "Use"]
    assert parsed.title == "Guide"
