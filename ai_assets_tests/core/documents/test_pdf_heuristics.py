"""The text-only rules the PDF reader applies to its lines, one case at a time."""

from __future__ import annotations

import pytest

from ai_assets.core.documents.model import readable_file_title
from ai_assets.core.documents.pdf_heuristics import (
    continues_sentence,
    could_be_heading,
    could_be_title,
    is_contents_line,
    is_meaningful_title,
    join_lines,
    resolve_soft_hyphens,
)
from ai_assets.core.documents.pdf_heuristics import heading_number as number_of


@pytest.mark.parametrize(
    ("previous", "text", "expected"),
    [
        ("election timeouts are chosen randomly from a", "fixed interval", True),
        ("a fixed interval (currently", "150-300ms) so that", True),
        ("as described in", "Section 5.4 of the paper", True),
        ("the leader, the followers,", "Candidates wait", True),
        ("The cluster stays available.", "the next paragraph", False),
        ("Leaders are elected quickly", "Followers wait for them", False),
        ("It ends here:", "a list follows", False),
    ],
)
def test_continues_sentence(previous: str, text: str, expected: bool) -> None:
    assert continues_sentence(previous, text) is expected


@pytest.mark.parametrize(
    ("previous", "text", "joined"),
    [
        ("a flaky dependency recov-", "ers before", "a flaky dependency recovers before"),
        ("call mpz_", "init first", "call mpz_init first"),
        ("configure with --enable-", "shared", "configure with --enable-shared"),
        ("the file rl_config.py-", "style", "the file rl_config.py-style"),
        ("written in non-", "English text", "written in non-English text"),
        ("two words", "on two lines", "two words on two lines"),
    ],
)
def test_join_lines(previous: str, text: str, joined: str) -> None:
    assert join_lines(previous, text) == joined


@pytest.mark.parametrize(
    ("text", "resolved"),
    [("recov\ufffeers before", "recovers before"), ("the flag --pre\ufffevote set", "the flag --pre-vote set"),
     ("set max_\ufffevalue", "set max_-value"), ("no mark", "no mark")],
)
def test_resolve_soft_hyphens(text: str, resolved: str) -> None:
    assert resolve_soft_hyphens(text) == resolved


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("8. Simplified Payment Verification", ("8", 1)),
        ("3.6 Backup Tasks", ("3.6", 2)),
        ("4.2.8. Caching", ("4.2.8", 3)),
        ("A.1 Proofs of safety", ("A.1", 2)),
        ("II. DESIGN", ("II", 1)),
        ("2.2 MB/s per client), about half", None),
        ("I think this is fine", None),
        ("12 servers, 3 racks", None),
        ("Introduction", None),
    ],
)
def test_heading_number(text: str, expected: tuple[str, int] | None) -> None:
    assert number_of(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("5.1 Raft basics", True),
        ("Leader election", True),
        ("Figure 3: Raft guarantees that each property holds", False),
        ("Table 2: Tablet sizes", False),
        ("(a) Facebook Hadoop Mix", False),
        ("1\u2212q/ p", False),
        ("q = n/2 + 1", False),
        ("from 30 MB/s to 1 MB/s. The cluster then recovered", False),
        ("which is why the leader steps down", False),
        ("2014", False),
    ],
)
def test_could_be_heading(text: str, expected: bool) -> None:
    assert could_be_heading(text) is expected


def test_a_title_has_two_words_or_more_and_no_number() -> None:
    assert could_be_title("The Google File System")
    assert not could_be_title("Abstract") and not could_be_title("1 Introduction")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("4.2 Handling Failures . . . . . . . . . 23", True),
        ("Introduction ......................... xii", True),
        ("abline, 12, 24, 36", True),
        ("read.csv 10, 32", True),
        ("In Proc. of SOSP (2003), pp. 29", True),
        ("In Proc. of SOSP, 2003", False),
        ("Random reads 1212 593 479", False),
        ("The leader waits 150 ms before it retries 2", True),
        ("The leader waits 150 ms before it retries.", False),
    ],
)
def test_is_contents_line(text: str, expected: bool) -> None:
    # A line alone proves little: a page is taken for contents when most of its lines are entries.
    assert is_contents_line(text, pages=40) is expected


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        ("Bigtable: A Distributed Storage System for Structured Data", True),
        ("Raft", True),
        ("paper.dvi", False),
        ("linux_sc_depth.ps", False),
        ("Microsoft Word - sosp067-decandia1.doc", False),
        ("rfeet.qrk", False),
        ("untitled", False),
        ("sosp067-decandia1", False),
    ],
)
def test_is_meaningful_title(title: str, expected: bool) -> None:
    assert is_meaningful_title(title) is expected


@pytest.mark.parametrize(("stem", "title"), [("release_notes_2024", "release notes 2024"), ("plain", "plain"), ("__", "__")])
def test_a_file_name_as_a_title_reads_as_words(stem: str, title: str) -> None:
    assert readable_file_title(stem) == title
