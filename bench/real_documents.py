"""Real PDFs nobody on the project wrote, through the project's parser and chunker: how clean is the text?

    python bench/real_documents.py [--work DIR] [--papers DIR] [--sample N] [--only NAME ...]

Gathers Debian manuals by script (`apt-get download` of the `*-doc` packages below and
`dpkg-deb -x` into `--work`; nothing is installed or committed) plus any PDFs in `--papers` (e.g.
the Raft, Bigtable, Dynamo, MapReduce, GFS papers copied from public repositories), parses each
with `parse_pdf` and chunks it as a build does (all-MiniLM-L6-v2's tokenizer, 254 tokens, 32
overlap), and reports per document and in total:

- mid-sentence breaks: share of chunks with a paragraph break ("\\n\\n") inside a sentence: the
  paragraph before it does not end a sentence (no `.!?:;` or closing bracket/quote after it) and
  is not a heading of the document, and the next one starts with a lower-case letter and is not
  code (a call, an assignment, a command, several lines): a line, column or page end read as a
  paragraph end;
- contents lines: share of chunks that are table-of-contents or index text: three or more dot
  leaders followed by a page number, or mostly bare page numbers after terms (`abline 12, 34`);
- chunks with a section, over the documents that have any heading;
- parse speed in pages per second (one process);

and prints `--sample` chunks per document (text cut to 300 characters) to look at. With
`--questions`, it also asks the hand-written QUESTIONS (page, section and fact found by hand)
over all the documents' chunks and reports page@1, page@5, the top hit's section and whether
the offline answer holds the fact.
"""

from __future__ import annotations

import argparse
import gzip
import inspect
import random
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

# Debian packages that ship PDF manuals, and which of their PDFs to read (a path suffix).
PACKAGES = {
    "r-doc-pdf": ("R-intro.pdf", "R-FAQ.pdf", "R-admin.pdf", "R-data.pdf", "R-lang.pdf", "R-exts.pdf"),
    "python-reportlab-doc": ("reportlab-userguide.pdf",),
    "camlidl-doc": ("camlidl-1.04.doc.pdf",),
    "why3-doc-pdf": ("manual.pdf",),
    "nettle-dev": ("nettle.pdf.gz",),
    "valgrind": ("valgrind_manual.pdf.gz",),
    "auto-multiple-choice-doc-pdf": ("auto-multiple-choice.en.pdf",),
}

@dataclass(frozen=True)
class Question:
    """A question found by hand in one document: the pages and the section that answer it, and the
    fact (a regular expression) the answer must hold."""

    document: str  # file name
    question: str
    pages: tuple[int, ...]
    section: str  # the deepest heading of the answering section, as the PDF prints it
    fact: str


QUESTIONS = [
    Question("raft.pdf", "How are election timeouts chosen in Raft?", (6,), "5.2 Leader election", r"150.300 ?ms"),
    Question("mapreduce.pdf", "How much longer does the sort take when backup tasks are disabled?", (6, 10),
             "Backup Tasks", r"44%"),
    Question("bigtable.pdf", "How large can a Bigtable row key be?", (2,), "2 Data Model", r"64 ?KB"),
    Question("gfs.pdf", "What chunk size does GFS use?", (3,), "2.5 Chunk Size", r"64 MB"),
    Question("dynamo.pdf", "At which percentile are Amazon's SLAs measured?", (2, 3, 11), "Service Level Agreements", r"99\.9"),
    Question("vm-ft.pdf", "How much does fault tolerance reduce the performance of real applications?", (1, 8),
             "Basic Performance Results", r"less than 10%"),
    Question("f1.pdf", "What replication does the Spanner configuration behind F1 use?", (10,), "DEPLOYMENT", r"5-way Paxos"),
    Question("nettle.pdf", "What is the size of a SHA256 digest in Nettle?", (13,), "SHA256", r"\b32\b"),
    Question("R-intro.pdf", "Which function creates ordered factors in R?", (24,), "4.3 Ordered factors", r"ordered\(\)"),
]

_DOT_LEADER = re.compile(r"(?:\.\s?){4,}\s*(?:\d+|[ivxlc]+)\b|(?:\s\.){3,}\s*\d+")
_SENTENCE_END = re.compile(r"[.!?:;)\]\"'\u201d\u2019]$")
_CODE = re.compile(r"^(?:[\w.:]+\(|[\w.\[\]]+\s*<?-?=[^=]|[\\{}#%<$>])")
_BARE_NUMBER = re.compile(r"^\d{1,4}[,;]?$")


def gather(work: Path) -> list[Path]:
    """The manuals' PDFs, downloaded and unpacked into ``work`` once (apt-get update must have run)."""
    debs = work / "debs"
    tree = work / "tree"
    debs.mkdir(parents=True, exist_ok=True)
    for package in PACKAGES:
        if not list(debs.glob(f"{package}_*.deb")):
            subprocess.run(["apt-get", "download", "-q", package], cwd=debs, check=True, capture_output=True)
    if not tree.is_dir():
        for deb in sorted(debs.glob("*.deb")):
            subprocess.run(["dpkg-deb", "-x", str(deb), str(tree)], check=True)
    found: list[Path] = []
    for suffixes in PACKAGES.values():
        for suffix in suffixes:
            path = next(path for path in sorted(tree.rglob("*")) if path.is_file() and str(path).endswith(suffix))
            if path.suffix == ".gz":
                unpacked = work / path.stem
                if not unpacked.exists():
                    unpacked.write_bytes(gzip.decompress(path.read_bytes()))
                path = unpacked
            found.append(path)
    return found


def looks_like_code(paragraph: str) -> bool:
    """A paragraph of code (a call, an assignment, a command, several lines, one dotted token):
    a break before it, after the line introducing it, is a real one."""
    return "\n" in paragraph or bool(_CODE.match(paragraph)) or (len(paragraph.split()) == 1 and bool(re.search(r"[._:/()]", paragraph)))


def mid_sentence_breaks(text: str, headings: set[str]) -> list[str]:
    """Each paragraph break inside a sentence (not after a heading, not before code), as the words around it."""
    paragraphs = [paragraph.strip() for paragraph in text.split("\n\n")]
    return [
        f"{before[-60:]!r} || {after[:40]!r}" for before, after in zip(paragraphs, paragraphs[1:], strict=False)
        if before and after and before not in headings and not _SENTENCE_END.search(before) and after[0].islower()
        and not looks_like_code(after)
    ]


def is_contents(text: str) -> bool:
    if len(_DOT_LEADER.findall(text)) >= 3:
        return True
    words = text.split()
    numbers = sum(1 for word in words if _BARE_NUMBER.match(word))
    return len(words) >= 20 and numbers / len(words) >= 0.3


@dataclass
class DocumentReport:
    name: str
    pages: int
    seconds: float
    title: str
    chunks: int
    broken: int
    contents: int
    with_section: int
    headings: int
    samples: list[str]
    breaks: list[str]
    chunks_of: list


def ask_questions(chunks_by_document: dict[str, list], questions: list[Question]) -> None:
    """Each question over the chunks of all the documents: dense search (all-MiniLM-L6-v2, the
    chunks' context prefix embedded, cosine, top 5: not the build's hybrid search) and the offline
    answer's sentences from the top 5; prints page@1, page@5, the top hit's section, the fact held."""
    import numpy as np

    from ai_assets.core.answering.extractive import extract_sentences
    from ai_assets.core.embedding.registry import create_embedder
    from ai_assets.core.retrieval.search import SearchHit

    embedder = create_embedder("minilm")
    chunks = [chunk for found in chunks_by_document.values() for chunk in found]
    # A chunk whose text re-tokenizes one token longer than the chunker counted (seen once, at a
    # "−1/2" the window starts on) would be refused whole: it is embedded without its context.
    counts = embedder.count_tokens([chunk.embedding_text for chunk in chunks])
    vectors = embedder.embed([
        chunk.embedding_text if count <= embedder.max_text_tokens else chunk.text for chunk, count in zip(chunks, counts, strict=True)
    ])
    vectors = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    print("\n| document | question | page@1 | page@5 | top hit's section | answer holds the fact |")
    print("|---|---|---|---|---|---|")
    totals = np.zeros(4)
    for question in questions:
        query = embedder.embed([question.question])[0]
        scores = vectors @ (query / np.linalg.norm(query))
        top = np.argsort(-scores)[:5]
        hits = [
            SearchHit(**chunks[index].model_dump(include=set(SearchHit.model_fields) - {"run_id", "score"}),
                      run_id="bench", score=float(scores[index]))
            for index in top
        ]
        on_page = [hit.doc_path == question.document and any(hit.page <= page <= (hit.page_end or hit.page) for page in question.pages)
                   for hit in hits]
        # The question's text where extract_sentences takes it (not before it preferred numbers and names).
        takes_question = "question" in inspect.signature(extract_sentences).parameters
        sentences = extract_sentences(query, hits, embedder.embed, **({"question": question.question} if takes_question else {}))
        answer = " ".join(sentence.text for sentence in sentences)
        section = (hits[0].section or "").split(" > ")[-1]
        row = [on_page[0], any(on_page), question.section.lower() in section.lower(), bool(re.search(question.fact, answer))]
        totals += row
        print(f"| {question.document} | {question.question} | {'yes' if row[0] else 'no'} | {'yes' if row[1] else 'no'} | "
              f"{section or '-'} ({'sensible' if row[2] else 'not'}) | {'yes' if row[3] else 'no'}: {answer[:160]} |")
    print(f"\n{len(questions)} questions: page@1 {totals[0]:.0f}, page@5 {totals[1]:.0f}, top hit's section sensible "
          f"{totals[2]:.0f}, answer holds the fact {totals[3]:.0f}")


def measure(path: Path, tokenizer, config, sample: int, rng: random.Random) -> DocumentReport:
    from ai_assets.core.chunking.chunker import chunk_document
    from ai_assets.core.documents.model import SECTION_SEPARATOR, assemble_document
    from ai_assets.core.documents.pdf import parse_pdf

    data = path.read_bytes()
    started = time.perf_counter()
    parsed = parse_pdf(data)
    seconds = time.perf_counter() - started
    document = assemble_document(parsed, source="real", path=path.name, size_bytes=len(data), mtime=0.0, fallback_title=path.stem)
    chunks = chunk_document(document, tokenizer, config)
    picked = rng.sample(chunks, min(sample, len(chunks)))
    headings = {block.section.split(SECTION_SEPARATOR)[-1] for block in document.blocks if block.section}
    return DocumentReport(
        name=path.name,
        pages=parsed.pages or 0,
        seconds=seconds,
        title=document.title,
        chunks=len(chunks),
        broken=sum(1 for chunk in chunks if mid_sentence_breaks(chunk.text, headings)),
        contents=sum(1 for chunk in chunks if is_contents(chunk.text)),
        with_section=sum(1 for chunk in chunks if chunk.section),
        headings=len(headings),
        samples=[f"[p.{chunk.page} | {chunk.section or '-'}]\n{chunk.text[:300]}" for chunk in picked],
        breaks=[found for chunk in chunks for found in mid_sentence_breaks(chunk.text, headings)],
        chunks_of=chunks,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "ai_assets-real-documents")
    parser.add_argument("--papers", type=Path, default=None, help="a folder of further PDFs (papers)")
    parser.add_argument("--sample", type=int, default=2)
    parser.add_argument("--breaks", type=int, default=0, help="print this many mid-sentence breaks per document")
    parser.add_argument("--only", nargs="*", default=None, help="only files whose name contains one of these")
    parser.add_argument("--questions", action="store_true", help="also ask the questions of QUESTIONS (embeds the chunks)")
    args = parser.parse_args()
    from ai_assets.core.chunking.chunker import ChunkerConfig
    from ai_assets.core.embedding.tokenizer import minilm_tokenizer

    tokenizer = minilm_tokenizer()
    config = ChunkerConfig(tokenizer=tokenizer.name, max_tokens=254, overlap_tokens=32, context_prefix=True)
    paths = gather(args.work) + (sorted(args.papers.glob("*.pdf")) if args.papers else [])
    if args.only:
        paths = [path for path in paths if any(part in path.name for part in args.only)]
    rng = random.Random(7)
    reports = [measure(path, tokenizer, config, args.sample, rng) for path in paths]
    print("| document | pages | pages/s | title | chunks | mid-sentence breaks | contents/index | with section |")
    print("|---|---:|---:|---|---:|---:|---:|---:|")
    for report in reports:
        print(
            f"| {report.name} | {report.pages} | {report.pages / report.seconds:.0f} | {report.title[:40]} | {report.chunks} | "
            f"{report.broken / report.chunks:.1%} | {report.contents / report.chunks:.1%} | "
            f"{report.with_section / report.chunks:.1%} |"
        )
    chunks = sum(report.chunks for report in reports)
    sectioned = [report for report in reports if report.headings]
    print(
        f"\nTotal: {len(reports)} PDFs, {sum(r.pages for r in reports)} pages, {chunks} chunks; "
        f"{sum(r.pages for r in reports) / sum(r.seconds for r in reports):.0f} pages/s; "
        f"mid-sentence breaks {sum(r.broken for r in reports) / chunks:.1%}; "
        f"contents/index {sum(r.contents for r in reports) / chunks:.1%}; "
        f"with a section {sum(r.with_section for r in sectioned) / max(1, sum(r.chunks for r in sectioned)):.1%} "
        f"(the {len(sectioned)} documents with headings)"
    )
    if args.questions:
        ask_questions({report.name: report.chunks_of for report in reports},
                      [question for question in QUESTIONS if any(report.name == question.document for report in reports)])
    for report in reports:
        print(f"\n===== {report.name}: {report.title}")
        for text in report.samples:
            print(f"--- {text}")
        for found in report.breaks[: args.breaks]:
            print(f"break: {found}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
