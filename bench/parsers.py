"""The parsers tried for PDF and HTML, on the same files: speed and extraction quality.

    python bench/parsers.py [--rounds 3] [--work DIR]

PDF: the demo corpus rendered by bench/render_corpus.py (styled headings, a running header and a
page-numbered footer); per parser, pages per second (one process, parsers interleaved, median of
`--rounds`) and the words it extracts against the words of the Markdown each PDF was rendered
from (recall: the source's words found; precision: extracted words that are the source's, which
running headers, footers and page numbers lower). Parsers: pypdfium2's plain text, pypdf's `extract_text()`, and the project's
parser (pypdfium2 with furniture removal, paragraphs and headings), whose sections are also
compared with the Markdown's headings.

HTML: the same Markdown rendered to pages inside typical boilerplate (a header and navigation of
links, a sidebar, a cookie banner, a footer, scripts); per extractor, pages per second, recall and
precision of the source's words, boilerplate words leaked, and headings kept. Extractors: the
project's (selectolax) and trafilatura. Needs the `docs` extra.
"""

from __future__ import annotations

import argparse
import io
import re
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from render_corpus import markdown_elements, render_source_tree  # noqa: E402

_WORD = re.compile(r"[a-z0-9]+")
BOILERPLATE_WORDS = ("navlinkterm", "sidebarterm", "cookieterm", "footerterm", "scriptterm")


def words(text: str) -> Counter:
    return Counter(_WORD.findall(text.lower()))


def overlap(reference: Counter, extracted: Counter) -> tuple[float, float]:
    common = sum((reference & extracted).values())
    return common / max(1, sum(reference.values())), common / max(1, sum(extracted.values()))


def reference_text(markdown_path: Path) -> tuple[str, list[str]]:
    elements = markdown_elements(markdown_path.read_text(encoding="utf-8"))
    text = "\n".join(element.text.replace("`", "") for element in elements)
    return text, [element.text.replace("`", "") for element in elements if element.kind == "heading"]


def pypdfium2_text(data: bytes) -> tuple[str, int]:
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(data)
    try:
        texts = []
        for index in range(len(pdf)):
            page = pdf[index]
            textpage = page.get_textpage()
            texts.append(textpage.get_text_range())
            textpage.close()
            page.close()
        return "\n".join(texts), len(pdf)
    finally:
        pdf.close()


def pypdf_text(data: bytes) -> tuple[str, int]:
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(data))
    return "\n".join(page.extract_text() or "" for page in reader.pages), len(reader.pages)


def project_pdf_text(data: bytes) -> tuple[str, int]:
    from ai_assets.core.documents.pdf import parse_pdf

    parsed = parse_pdf(data)
    return "\n".join(block.text for block in parsed.blocks), parsed.pages or 0


def project_html_text(html: bytes) -> tuple[str, list[str]]:
    from ai_assets.core.documents.html import parse_html

    parsed = parse_html(html)
    sections = list(dict.fromkeys(block.section.split(" > ")[-1] for block in parsed.blocks if block.section))
    return "\n".join(block.text for block in parsed.blocks), sections


def trafilatura_text(html: bytes) -> tuple[str, list[str]]:
    import trafilatura

    markdown = trafilatura.extract(html.decode("utf-8"), output_format="markdown", include_formatting=True,
                                   include_tables=True, favor_recall=True) or ""
    headings = [line.lstrip("#").strip() for line in markdown.splitlines() if line.startswith("#")]
    return markdown, headings


def html_page(markdown_path: Path, title: str) -> bytes:
    from markdown_it import MarkdownIt

    from ai_assets.core.documents.markdown import split_front_matter

    _, body = split_front_matter(markdown_path.read_text(encoding="utf-8"))
    article = MarkdownIt("commonmark").enable("table").render(body)
    links = "".join(f'<li><a href="/docs/{n}">navlinkterm {n}</a></li>' for n in range(30))
    return (
        f"<!doctype html><html><head><title>{title} | Docs</title><style>.x{{color:red}}</style>"
        f"<script>var scriptterm = 1;</script></head><body>"
        f'<header class="site-header"><a href="/">navlinkterm home</a></header><nav><ul>{links}</ul></nav>'
        f'<div class="sidebar"><h3>sidebarterm related</h3><ul><li>sidebarterm one</li></ul></div>'
        f"<main><article>{article}</article></main>"
        f'<div id="cookie-banner">cookieterm we use cookies</div>'
        f"<footer><p>footerterm copyright</p><a>footerterm privacy</a></footer>"
        f"<script>track('scriptterm')</script></body></html>"
    ).encode("utf-8")


def interleaved_seconds(files: list[bytes], parsers: dict[str, Callable[[bytes], object]], rounds: int) -> dict[str, float]:
    """Median seconds of each parser over all files, parsers interleaved round by round, so a slow
    minute on this shared machine falls on every parser alike."""
    seconds: dict[str, list[float]] = {name: [] for name in parsers}
    for _ in range(rounds):
        for name, parse in parsers.items():
            started = time.perf_counter()
            for data in files:
                parse(data)
            seconds[name].append(time.perf_counter() - started)
    return {name: statistics.median(values) for name, values in seconds.items()}


def bench_pdf(rendered: Path, rounds: int) -> None:
    from ai_assets.core.documents.pdf import parse_pdf

    pdfs = sorted((rendered / "pdf").glob("*/*.pdf"))
    data = [path.read_bytes() for path in pdfs]
    references = [reference_text(ROOT / "data" / "sources" / path.parent.name / f"{path.stem}.md") for path in pdfs]
    parsers = {"pypdfium2 get_text_range": pypdfium2_text, "pypdf extract_text": pypdf_text, "ai_assets parse_pdf (pypdfium2)": project_pdf_text}
    pages = sum(pypdfium2_text(item)[1] for item in data)
    seconds = interleaved_seconds(data, parsers, rounds)
    print(f"### PDF: {len(pdfs)} files, {pages} pages\n")
    print("| parser | pages/s | word recall | word precision |")
    print("|---|---:|---:|---:|")
    for name, parse in parsers.items():
        reference, extracted = Counter(), Counter()
        for item, (text, _) in zip(data, references, strict=True):
            reference += words(text)
            extracted += words(parse(item)[0])
        recall, precision = overlap(reference, extracted)
        print(f"| {name} | {pages / seconds[name]:.0f} | {recall:.4f} | {precision:.4f} |")
    same = total = 0
    for item, (_, headings) in zip(data, references, strict=True):
        sections = {block.section.split(" > ")[-1] for block in parse_pdf(item).blocks}
        total += len(headings)
        same += sum(1 for heading in headings if heading in sections)
    print(f"\nHeadings of the Markdown found as sections by parse_pdf: {same}/{total} ({same / max(1, total):.1%}).")


def bench_html(rounds: int) -> None:
    sources = sorted((ROOT / "data" / "sources").glob("*/*.md"))
    pages, references = [], []
    for path in sources:
        text, headings = reference_text(path)
        pages.append(html_page(path, headings[0] if headings else path.stem))
        references.append((text, headings))
    extractors = {"ai_assets parse_html (selectolax)": project_html_text, "trafilatura (markdown output)": trafilatura_text}
    seconds = interleaved_seconds(pages, extractors, rounds)
    print(f"\n### HTML: {len(pages)} pages\n")
    print("| extractor | pages/s | word recall | word precision | boilerplate words leaked | headings kept |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, extract in extractors.items():
        reference, extracted, leaked, kept, headings_total = Counter(), Counter(), 0, 0, 0
        for page, (text, headings) in zip(pages, references, strict=True):
            found, sections = extract(page)
            found_words = words(found)
            reference += words(text)
            extracted += found_words
            leaked += sum(found_words[term] for term in BOILERPLATE_WORDS)
            normalized = {" ".join(_WORD.findall(section.lower())) for section in sections}
            headings_total += len(headings)
            kept += sum(1 for heading in headings if " ".join(_WORD.findall(heading.lower())) in normalized)
        recall, precision = overlap(reference, extracted)
        print(f"| {name} | {len(pages) / seconds[name]:.0f} | {recall:.4f} | {precision:.4f} | "
              f"{leaked} | {kept}/{headings_total} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--work", type=Path, default=None)
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="ai_assets-parsers-"))
    if not (work / "pdf").is_dir():
        render_source_tree(ROOT / "data" / "sources", work, ["pdf"])
    bench_pdf(work, args.rounds)
    bench_html(args.rounds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
