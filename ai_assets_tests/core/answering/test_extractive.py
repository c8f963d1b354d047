"""The offline answer's sentences: whole ones, and the ones holding what the question asks about."""

from __future__ import annotations

import pytest

from ai_assets.core.answering.extractive import question_terms, split_sentences


@pytest.mark.parametrize(
    ("text", "sentences"),
    [
        ("The key is 32 octets, i.e. 256 bits. It is random.", ["The key is 32 octets, i.e. 256 bits.", "It is random."]),
        ("As Fig. 3 and J. Smith show, it grows by 44% per year. Then it stops.",
         ["As Fig. 3 and J. Smith show, it grows by 44% per year.", "Then it stops."]),
        ("Timeouts are chosen from a fixed interval (currently 150-300 ms). Splits are rare.",
         ["Timeouts are chosen from a fixed interval (currently 150-300 ms).", "Splits are rare."]),
        ("interval, so that votes split rarely. Leaders are elected quickly. The leader then sends",
         ["Leaders are elected quickly."]),
        ("# Leader election here\n\n- a list item without an end\n\nThe end is near.",
         ["# Leader election here", "- a list item without an end", "The end is near."]),
        ("Version 1.2.3 was released. It fixed bugs.", ["Version 1.2.3 was released.", "It fixed bugs."]),
        ("[4] Bressoud, T. C. TFT: A Software System.\n\nFT costs less than 10% of throughput.",
         ["FT costs less than 10% of throughput."]),
    ],
    ids=["i.e.", "initials-and-figures", "brackets", "window-cut-both-ends", "headings-and-items", "decimals", "bibliography"],
)
def test_split_sentences_gives_whole_sentences(text: str, sentences: list[str]) -> None:
    assert split_sentences(text) == sentences


@pytest.mark.parametrize(
    ("question", "wants_number", "names"),
    [
        ("How long is the election timeout in Raft?", True, {"raft"}),
        ("What percentage of the data is compressed?", True, set()),
        ("What does nettle_sha256_digest return?", False, {"nettle_sha256_digest"}),
        ("What chunk size does GFS use?", True, {"gfs"}),
        ("which cron expression launches a job?", False, set()),
    ],
)
def test_question_terms(question: str, wants_number: bool, names: set[str]) -> None:
    assert question_terms(question) == (wants_number, names)

