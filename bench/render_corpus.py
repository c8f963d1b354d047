"""Render Markdown sources to PDF (reportlab) and DOCX (python-docx), as a team's exported documents.

    python bench/render_corpus.py data/sources OUT --formats pdf docx docx-styled [--outline]

Each `<source>/<name>.md` becomes `OUT/<format>/<source>/<name>.<ext>`. Headings are styled text
(PDF: bold and larger; `docx`: Word's Heading styles; `docx-styled`: bold, larger runs and no
Heading style), code blocks are in a monospace font, lists keep their bullets, tables are rows,
and every page has a running header (the document title) and a footer with the page number.
`--outline` adds PDF bookmarks for the headings. Needs the `docs` extra (reportlab, python-docx).
"""

from __future__ import annotations

import argparse
import html
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from markdown_it import MarkdownIt

_INLINE_MARKS = re.compile(r"\[([^\]]*)\]\([^)]*\)")  # [text](link) -> text


@dataclass
class Element:
    kind: str  # heading, paragraph, code, item, row
    text: str
    level: int = 0


def markdown_elements(markdown: str) -> list[Element]:
    """The Markdown as a flat list of headings, paragraphs, code blocks, list items and table rows."""
    from ai_assets.core.documents.markdown import split_front_matter

    _, body = split_front_matter(markdown)
    tokens = MarkdownIt("commonmark").enable("table").parse(body)
    elements: list[Element] = []
    in_item, heading_level, row = 0, 0, None
    for token in tokens:
        if token.type == "heading_open":
            heading_level = int(token.tag[1])
        elif token.type == "list_item_open":
            in_item += 1
        elif token.type == "list_item_close":
            in_item -= 1
        elif token.type == "tr_open":
            row = []
        elif token.type == "tr_close" and row is not None:
            elements.append(Element("row", " | ".join(row)))
            row = None
        elif token.type in ("fence", "code_block"):
            elements.append(Element("code", token.content.rstrip("\n")))
        elif token.type == "inline":
            text = _INLINE_MARKS.sub(r"\1", token.content)
            if row is not None:
                row.append(text)
            elif heading_level:
                elements.append(Element("heading", text, heading_level))
                heading_level = 0
            elif text.strip():
                elements.append(Element("item" if in_item else "paragraph", text))
    return elements


def render_pdf(elements: list[Element], title: str, path: Path, outline: bool) -> None:
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
    from reportlab.platypus import Paragraph, Preformatted, SimpleDocTemplate

    base = getSampleStyleSheet()
    body = ParagraphStyle("body", parent=base["BodyText"], fontName="Helvetica", fontSize=10, leading=13)
    heading_sizes = {1: 18, 2: 14, 3: 12, 4: 11, 5: 10.5, 6: 10.5}
    headings = {
        level: ParagraphStyle(f"h{level}", parent=body, fontName="Helvetica-Bold", fontSize=size,
                              leading=size * 1.3, spaceBefore=8, spaceAfter=4)
        for level, size in heading_sizes.items()
    }
    code = ParagraphStyle("code", parent=body, fontName="Courier", fontSize=8.5, leading=10.5, leftIndent=12)
    item = ParagraphStyle("item", parent=body, leftIndent=14, bulletIndent=4)

    def inline(text: str) -> str:
        escaped = html.escape(text, quote=False)
        return re.sub(r"`([^`]+)`", r'<font face="Courier">\1</font>', escaped)

    class Document(SimpleDocTemplate):
        def afterFlowable(self, flowable):  # noqa: N802 (reportlab's hook name)
            level = getattr(flowable, "outline_level", None)
            if outline and level is not None:
                key = f"h{id(flowable)}"
                self.canv.bookmarkPage(key)
                self.canv.addOutlineEntry(flowable.getPlainText(), key, level=level - 1)

    def furniture(canvas, doc) -> None:
        canvas.saveState()
        canvas.setFont("Helvetica", 8)
        canvas.drawString(doc.leftMargin, A4[1] - 30, title)
        canvas.drawCentredString(A4[0] / 2, 25, f"{title} - page {doc.page}")
        canvas.restoreState()

    story = []
    for element in elements:
        if element.kind == "heading":
            paragraph = Paragraph(inline(element.text), headings[element.level])
            paragraph.outline_level = min(element.level, 3)
            story.append(paragraph)
        elif element.kind == "code":
            story.append(Preformatted(element.text, code, maxLineLength=95))
        elif element.kind == "item":
            story.append(Paragraph(inline(element.text), item, bulletText="\u2022"))
        else:
            story.append(Paragraph(inline(element.text), body))
    document = Document(str(path), pagesize=A4, title=title, topMargin=50, bottomMargin=45)
    document.build(story, onFirstPage=furniture, onLaterPages=furniture)


def render_docx(elements: list[Element], title: str, path: Path, heading_styles: bool) -> None:
    import docx
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn
    from docx.shared import Pt

    document = docx.Document()
    document.core_properties.title = title
    footer = document.sections[0].footer.paragraphs[0]
    footer.add_run(f"{title} - page ")
    run = footer.add_run()
    for kind, text in (("begin", None), (None, "PAGE"), ("end", None)):
        if kind:
            field = OxmlElement("w:fldChar")
            field.set(qn("w:fldCharType"), kind)
        else:
            field = OxmlElement("w:instrText")
            field.text = text
        run._r.append(field)
    document.sections[0].header.paragraphs[0].text = title
    sizes = {1: 20, 2: 16, 3: 13, 4: 12, 5: 11, 6: 11}
    for element in elements:
        element = Element(element.kind, element.text if element.kind == "code" else element.text.replace("`", ""), element.level)
        if element.kind == "heading":
            if heading_styles:
                document.add_heading(element.text, level=element.level)
            else:
                styled = document.add_paragraph().add_run(element.text)
                styled.bold, styled.font.size = True, Pt(sizes[element.level])
        elif element.kind == "code":
            paragraph = document.add_paragraph()
            for number, line in enumerate(element.text.split("\n")):
                run = paragraph.add_run(line)
                run.font.name, run.font.size = "Courier New", Pt(9)
                if number:
                    run._r.addprevious(OxmlElement("w:br"))
        elif element.kind == "item":
            document.add_paragraph(element.text, style="List Bullet")
        elif element.kind == "row":
            document.add_paragraph(element.text)
        else:
            document.add_paragraph(element.text)
    document.save(str(path))


def render_source_tree(sources: Path, out: Path, formats: list[str], outline: bool = False) -> dict[str, int]:
    """Render every Markdown file of every source folder; returns files written per format."""
    from ai_assets.core.documents.markdown import parse_markdown

    written = dict.fromkeys(formats, 0)
    for markdown_path in sorted(sources.glob("*/*.md")):
        raw = markdown_path.read_bytes()
        title = parse_markdown(raw).title or markdown_path.stem
        elements = markdown_elements(raw.decode("utf-8"))
        for format_name in formats:
            extension = "pdf" if format_name == "pdf" else "docx"
            target = out / format_name / markdown_path.parent.name / f"{markdown_path.stem}.{extension}"
            target.parent.mkdir(parents=True, exist_ok=True)
            if format_name == "pdf":
                render_pdf(elements, title, target, outline)
            else:
                render_docx(elements, title, target, heading_styles=format_name == "docx")
            written[format_name] += 1
    return written


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sources", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--formats", nargs="+", default=["pdf", "docx", "docx-styled"], choices=["pdf", "docx", "docx-styled"])
    parser.add_argument("--outline", action="store_true", help="add PDF bookmarks for the headings")
    args = parser.parse_args()
    print(render_source_tree(args.sources, args.out, args.formats, args.outline))
    return 0


if __name__ == "__main__":
    sys.exit(main())
