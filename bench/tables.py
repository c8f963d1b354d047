"""Tables and OCR on real PDFs: what is found, and what it costs.

    python bench/tables.py [--debian r-doc-pdf ...] [--pdfplumber] [--ocr-pages N] FILE.pdf ...

For each PDF (and the PDF manuals of each Debian package named, fetched with `apt-get download`
and unpacked with `dpkg-deb -x`): parse speed in pages per second with table finding on and off
(best of three), the tables found (pages, rows x columns, header) and, with ``--pdfplumber``,
the speed of pdfplumber's table finder on the same pages (the `docs` extra). ``--ocr-pages N``
renders the first N pages of the first file as images only (a scan at 300 dpi, no text layer),
reads them back by OCR and reports the CPU seconds per page, the share of the text layer's words
that OCR found and the share of the words it read that are the text layer's (words run together
where OCR missed a space are not).
"""

from __future__ import annotations

import argparse
import io
import re
import subprocess
import tempfile
import time
from pathlib import Path
from unittest import mock

from ai_assets.core.documents import pdf as pdf_module
from ai_assets.core.documents.pdf import parse_pdf


def debian_manuals(package: str, work: Path) -> list[Path]:
    subprocess.run(["apt-get", "download", package], cwd=work, check=True, capture_output=True)
    for deb in work.glob(f"{package}_*.deb"):
        subprocess.run(["dpkg-deb", "-x", str(deb), str(work / "root")], check=True)
    return sorted({path.name: path for path in (work / "root").rglob("*.pdf")}.values())


def best_seconds(function, rounds: int = 3) -> float:
    """The least CPU seconds of this process over the rounds: on a shared, loaded machine the
    wall time says more about the neighbours than about the code."""
    times = []
    for _ in range(rounds):
        started = time.process_time()
        function()
        times.append(time.process_time() - started)
    return min(times)


def report_tables(path: Path, use_pdfplumber: bool, max_pages: int, quiet: bool) -> tuple[int, float, float]:
    """(pages, CPU seconds with table finding, without) of one file, after printing what it found."""
    import pypdfium2 as pdfium

    raw = path.read_bytes()
    pages = len(pdfium.PdfDocument(raw))
    if pages > max_pages:
        print(f"{path.name}: {pages} pages, over --max-pages: left out")
        return 0, 0.0, 0.0
    parsed = parse_pdf(raw)
    with_tables = best_seconds(lambda: parse_pdf(raw))
    with mock.patch.object(pdf_module, "find_tables", lambda pdf: []):
        without = best_seconds(lambda: parse_pdf(raw))
    tables = [block for block in parsed.blocks if block.kind == "table"]
    if quiet and not tables:
        return pages, with_tables, without
    print(f"{path.name}: {pages} pages; {pages / with_tables:.0f} pages per CPU second with table finding, "
          f"{pages / without:.0f} without ({with_tables / without - 1:+.0%}); {len(tables)} tables")
    for block in tables:
        lines = block.text.split("\n")
        print(f"  p. {block.page}: {len(lines) - 2} rows x {lines[0].count(' | ') + 1}: {lines[0][:100]}")
    if use_pdfplumber:
        import pdfplumber

        def plumb() -> int:
            found = 0
            with pdfplumber.open(io.BytesIO(raw)) as document:
                for page in document.pages:
                    found += len(page.find_tables())
                    page.close()
            return found

        seconds = best_seconds(plumb, rounds=1)
        print(f"  pdfplumber (lines strategy): {pages / seconds:.1f} pages per CPU second, {plumb()} tables")
    return pages, with_tables, without


def report_ocr(path: Path, pages: int) -> None:
    import pypdfium2 as pdfium
    from reportlab.lib.utils import ImageReader
    from reportlab.pdfgen import canvas

    document = pdfium.PdfDocument(path.read_bytes())
    buffer = io.BytesIO()
    scan = canvas.Canvas(buffer)
    for index in range(min(pages, len(document))):
        page = document[index]
        width, height = page.get_size()
        scan.setPageSize((width, height))
        scan.drawImage(ImageReader(page.render(scale=300 / 72, grayscale=True).to_pil()), 0, 0, width, height)
        scan.showPage()
    scan.save()
    text_layer = parse_pdf(path.read_bytes())
    wanted = [block.text for block in text_layer.blocks if (block.page or 0) <= pages]
    started = time.process_time()
    read = parse_pdf(buffer.getvalue())
    seconds = time.process_time() - started

    def words(text: str) -> set[str]:
        return set(re.findall(r"\w{3,}", text.lower()))

    expected = words(" ".join(wanted))
    found = words(" ".join(block.text for block in read.blocks))
    print(f"OCR of {path.name}, {pages} page(s) as images: {seconds / pages:.1f} CPU s a page (model load included), "
          f"{len(expected & found) / max(1, len(expected)):.0%} of the text layer's words found, "
          f"{len(expected & found) / max(1, len(found)):.0%} of the words read are the text layer's; "
          f"low confidence: {read.metadata.get('ocr_low_confidence_pages', 'none')}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", nargs="*", type=Path)
    parser.add_argument("--debian", nargs="*", default=[], help="Debian packages whose PDF manuals to add")
    parser.add_argument("--pdfplumber", action="store_true", help="time pdfplumber's table finder too")
    parser.add_argument("--quiet", action="store_true", help="print only the files with tables, and the totals")
    parser.add_argument("--max-pages", type=int, default=400, help="leave out longer files")
    parser.add_argument("--ocr-pages", type=int, default=0, help="pages of the first file to read back by OCR")
    args = parser.parse_args()
    files = list(args.files)
    with tempfile.TemporaryDirectory() as work:
        for package in args.debian:
            files.extend(debian_manuals(package, Path(work)))
        totals = [report_tables(path, args.pdfplumber, args.max_pages, args.quiet) for path in files]
        pages, with_tables, without = (sum(column) for column in zip(*totals, strict=True))
        print(f"all {len(files)} files, {pages} pages: {with_tables:.2f} CPU s with table finding, "
              f"{without:.2f} without ({pages / with_tables:.0f} and {pages / without:.0f} pages per CPU second)")
        if args.ocr_pages and files:
            report_ocr(files[0], args.ocr_pages)


if __name__ == "__main__":
    main()
