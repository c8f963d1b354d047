"""PDFs laid out as papers and manuals are (two columns, running headers that change per chapter,
a contents page, numbered headings, captions and formulas), read back as a person reads them."""

from __future__ import annotations

import pytest

from ai_assets.core.documents.pdf import parse_pdf
from ai_assets_tests.document_files import layout_pdf_bytes

PAPER = [
    (None, [
        [("h1", "Consensus Made Plain"), ("body", "Ada Lovelace and Alan Turing"), ("body", ""),
         ("bold", "Abstract"), ("body", "We describe a protocol that elects a leader"),
         ("body", "and replicates a log across five servers."), ("body", ""),
         ("bold", "1 Introduction"), ("body", "Servers time out when they hear nothing, and"),
         ("body", "election timeouts are chosen randomly from a"),
         ("body", "fixed interval (currently")],
        [("body", "150-300ms) so that split votes are rare."), ("body", ""),
         ("bold", "2 Design"), ("body", "The design has two parts."), ("body", ""),
         ("bold", "2.1 Leader election"), ("body", "A candidate asks every server for a vote"),
         ("body", "by calling request_"), ("body", "vote with the flag --pre-"),
         ("body", "vote set; the call is idempotent."), ("body", ""),
         ("caption", "Figure 1: Votes needed per cluster size."), ("body", ""),
         ("formula", "q = n/2 + 1"), ("body", ""),
         ("body", "A leader is elected once a majority of the")],
    ]),
    (None, [
        [("body", "servers voted for it in the same term."), ("body", ""),
         ("bold", "2.2 Log replication"), ("body", "The leader appends entries and replicates them."), ("body", ""),
         ("bold", "3 Evaluation"), ("body", "Leaders are elected within 300ms in 99% of trials.")],
    ]),
]


@pytest.fixture(scope="module")
def paper():
    return parse_pdf(layout_pdf_bytes(PAPER, title="paper.dvi"))


def paragraphs(parsed) -> list[str]:
    return [paragraph for block in parsed.blocks for paragraph in block.text.split("\n\n")]


def test_a_sentence_broken_across_lines_columns_and_pages_is_one_paragraph(paper) -> None:
    found = paragraphs(paper)
    assert ("Servers time out when they hear nothing, and election timeouts are chosen randomly from a fixed "
            "interval (currently 150-300ms) so that split votes are rare.") in found
    assert "A leader is elected once a majority of the servers voted for it in the same term." in found
    # The sentence that went on to page 2 stays with the page it started on.
    assert next(block.page for block in paper.blocks if "majority of the servers" in block.text) == 1


def test_an_identifier_cut_at_a_line_end_stays_whole(paper) -> None:
    text = "\n".join(paragraphs(paper))
    assert "by calling request_vote with the flag --pre-vote set" in text


def test_numbered_headings_nest_by_their_numbers_and_captions_formulas_authors_are_not_headings(paper) -> None:
    sections = list(dict.fromkeys(block.section for block in paper.blocks))
    assert sections == [
        "Consensus Made Plain",
        "Abstract",
        "1 Introduction",
        "2 Design",
        "2 Design > 2.1 Leader election",
        "2 Design > 2.2 Log replication",
        "3 Evaluation",
    ]
    text = "\n".join(paragraphs(paper))
    assert "Figure 1: Votes needed per cluster size." in text and "Ada Lovelace and Alan Turing" in text


def test_a_file_name_in_the_metadata_is_not_the_title(paper) -> None:
    assert paper.title == "Consensus Made Plain"


def _chapter_page(number: int, chapter: str, lines: list[tuple[str, str]]) -> tuple[str, list[list[tuple[str, str]]]]:
    """A manual's page with its running header: the page number outside, alternating on odd and even pages."""
    header = f"{chapter} {number}" if number % 2 else f"{number} {chapter}"
    return header, [lines]


MANUAL = [
    (None, [[("h1", "Widget Manual"), ("body", "Version 2.0 of the widget toolkit.")]]),
    (None, [[("h2", "Contents"), ("contents", "1 Basics|3"), ("contents", "1.1 Installing|3"), ("contents", "1.2 Running|4"),
             ("contents", "2 Usage|5"), ("contents", "2.1 Options|5"), ("contents", "2.2 Logging|6"), ("contents", "Index|6")]]),
    _chapter_page(3, "Chapter 1: Basics", [("h2", "1 Basics"), ("body", "The basics come first."), ("body", ""),
                                           ("h3", "1.1 Installing"), ("body", "Install the widget with the package manager.")]),
    _chapter_page(4, "Chapter 1: Basics", [("h3", "1.2 Running"), ("body", "Run the widget from a shell.")]),
    _chapter_page(5, "Chapter 2: Usage", [("h2", "2 Usage"), ("body", "Usage depends on the options."), ("body", ""),
                                          ("h3", "2.1 Options"), ("body", "Options are read from widget.toml.")]),
    _chapter_page(6, "Chapter 2: Usage", [("h3", "2.2 Logging"), ("body", "Logs go to standard error.")]),
    _chapter_page(7, "Chapter 2: Usage", [("body", "Log levels are debug, info and error.")]),
]


def test_contents_pages_and_running_headers_that_change_per_chapter_are_not_text() -> None:
    parsed = parse_pdf(layout_pdf_bytes(MANUAL))
    text = "\n".join(block.text for block in parsed.blocks)
    assert ". . ." not in text and "Contents" not in text
    assert "Chapter 1:" not in text and "Chapter 2:" not in text
    assert [(block.section, block.page) for block in parsed.blocks][1:] == [
        ("1 Basics", 3), ("1 Basics > 1.1 Installing", 3), ("1 Basics > 1.2 Running", 4),
        ("2 Usage", 5), ("2 Usage > 2.1 Options", 5), ("2 Usage > 2.2 Logging", 6), ("2 Usage > 2.2 Logging", 7),
    ]
    assert parsed.title == "Widget Manual"
