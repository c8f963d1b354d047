"""What a line of a PDF's text says about itself: the text-only rules the PDF reader applies to
the lines it found (pure functions, each tested on its own).

- Does a line end a sentence, and does the next one carry the sentence on (a line, column or page
  end inside a sentence is not a paragraph end)?
- How are two lines joined (a word hyphenated across them, an identifier cut at ``_`` or ``-``)?
- Is a line a numbered heading (``8.``, ``3.6``, ``4.2.8.``, ``A.1``), and how deep?
- Could a line be a heading or a title at all (not a caption, a formula, a sentence or a number)?
- Is a line a table-of-contents or index entry (dot leaders, page numbers after a term)?
- Is a metadata title one a person would recognise (not a file name or a tool's placeholder)?
"""

from __future__ import annotations

import re

# A sentence ends at . ! ? : ; (also before a closing bracket or quote), or at an ellipsis.
_SENTENCE_END = re.compile(r"[.!?:;][)\]\"'\u201d\u2019]*$|\u2026$")
# Words after which a line cannot end a sentence ("described in" / "Section 5.4").
_OPEN_WORDS = frozenset(
    "a an the of to in on at by for from with and or nor but as is are was were be than that which "
    "who whose whom this these those its their our your his her into onto over under between via per "
    "e.g. i.e. cf. see".split()
)
_HYPHENS = ("-", "\u00ad", "\u2010", "\x02")
# A word cut at a line end that is an identifier, an option or a path, not a hyphenated word.
_IDENTIFIER = re.compile(r"(?:^-|[_/.=:\\\d]|[a-z][A-Z])")
# "8. Simplified Payment Verification", "3.6 Reads", "4.2.8. Caching", "A.1 Proofs", "II. Design".
_NUMBERED = re.compile(
    r"^(?P<number>(?:\d{1,2}(?:\.\d{1,2}){0,4}|[A-Z](?:\.\d{1,2}){1,4}|[IVX]{1,4})\.?)\s+(?P<title>\S.*)$"
)
_CAPTION = re.compile(r"^(?:fig(?:ure)?|table|tab|listing|algorithm|example|chart|plate|exhibit)\.?\s*\d", re.IGNORECASE)
_SUBFIGURE = re.compile(r"^\([a-z]\)\s")
_MATH = re.compile(r"[=<>+\u2212\u00d7\u00f7\u2211\u220f\u222b\u221a\u2264\u2265\u2260\u2248\u2208\u2200\u2203\u03b1-\u03c9^|]")
# A contents or index entry: a term, dot leaders or spaces, a page number (or several, for an index).
_DOT_LEADER = re.compile(r"(?:\.\s?){3,}\s*(?:\d{1,4}|[ivxlc]{1,6})\s*$", re.IGNORECASE)
_INDEX_ENTRY = re.compile(r"^[^\d\s].{0,80}?[\s,](?P<numbers>\d{1,4}(?:\s*[,\u2013-]\s*\d{1,4})*)$")
_FILE_NAME = re.compile(r"\.(?:dvi|ps|eps|pdf|docx?|rtf|odt|tex|qrk|indd|pages|txt|html?|pptx?|xlsx?|fm|wpd)$", re.IGNORECASE)
_TOOL_TITLE = re.compile(r"^(?:microsoft (?:word|powerpoint)|untitled|document\d*|slide \d+|title|draft|paper|template)\b", re.IGNORECASE)


def ends_sentence(text: str) -> bool:
    return bool(_SENTENCE_END.search(text.rstrip()))


def continues_sentence(previous: str, text: str) -> bool:
    """Whether ``text`` carries on the sentence ``previous`` left open: the next line starts in lower
    case, or the previous one ends on a comma, an opening bracket, a hyphen or a word that cannot
    end a sentence."""
    previous, text = previous.rstrip(), text.lstrip()
    if not previous or not text or ends_sentence(previous):
        return False
    if text[0].islower() or previous.endswith((",", "(", "[", "_", *_HYPHENS)):
        return True
    if previous.rfind("(") > previous.rfind(")"):
        return True  # "a fixed interval (currently" / "150-300ms) so that ..."
    return previous.split()[-1].lower() in _OPEN_WORDS


def resolve_soft_hyphens(text: str) -> str:
    """PDFium joins a word it found hyphenated at a line end and marks the place with U+FFFE: the
    mark goes in a word ("recov-ers"), but stays a hyphen in an identifier or an option ("--pre-vote")."""
    if "\ufffe" not in text:
        return text
    return re.sub(
        r"(\S*)\ufffe(?=(.?))",
        lambda match: match.group(1) + ("-" if _IDENTIFIER.search(match.group(1)) or not match.group(2).islower() else ""),
        text,
    )


def join_lines(previous: str, text: str) -> str:
    """``previous`` and the next line of its paragraph as one text: a word hyphenated across them
    joined, an identifier cut at ``_`` or ``-`` kept whole, else a space between."""
    if previous.endswith("_"):
        return previous + text
    if previous.endswith(_HYPHENS) and text[:1].isalnum():
        word = previous.split()[-1] if previous.split() else ""
        if previous.endswith("-") and (_IDENTIFIER.search(word[:-1]) or not text[:1].islower()):
            return previous + text  # "--enable-" "shared", "non-" "English": the hyphen is real
        if word[-2:-1].isalpha() and text[:1].islower():
            return previous[:-1] + text
    return f"{previous} {text}"


def heading_number(text: str) -> tuple[str, int] | None:
    """The number of a numbered heading and its depth (``4.2.8.`` is 3), or None."""
    match = _NUMBERED.match(text.strip())
    if not match:
        return None
    title = match.group("title")
    if not (title[:1].isupper() or title[:1].isdigit()) or title.endswith((",", ";")) or title.count(")") > title.count("("):
        return None  # a line of a sentence: "2.2 MB/s per client), about half"
    number = match.group("number").rstrip(".")
    if re.fullmatch(r"[IVX]{1,4}", number) and not match.group("number").endswith("."):
        return None  # "I think ..." is not part I
    return number, number.count(".") + 1


def could_be_heading(text: str) -> bool:
    """A line that may be a heading by its style: some letters, not a caption, a formula, a list
    item's run-on or a sentence (a long line ending in a full stop)."""
    text = text.strip()
    letters = sum(char.isalpha() for char in text)
    if letters < 2 or not (text[:1].isupper() or text[:1].isdigit()):
        return False
    if _CAPTION.match(text) or _SUBFIGURE.match(text) or text.endswith((",", ";", ":")):
        return False
    if len(_MATH.findall(text)) >= 2 or letters < len(text.replace(" ", "")) * 0.6:
        return False
    words = text.split()
    if len(words) > 14 or (len(words) > 6 and text.endswith(".") and heading_number(text) is None):
        return False
    # A sentence run on from the previous line ("from 30 MB/s to 1 MB/s. The cluster ...").
    return not re.search(r"[a-z0-9)]\.\s+[A-Z]", text) or heading_number(text) is not None


def could_be_title(text: str) -> bool:
    """A first-page line fit to be a document's title: a heading-like line of two words or more."""
    return could_be_heading(text) and len(text.split()) >= 2 and heading_number(text) is None


def is_contents_line(text: str, pages: int) -> bool:
    """A table-of-contents, list-of-figures or index entry of a document of ``pages`` pages: dot
    leaders before a page number, or a term followed by page numbers only (comma-separated, none
    past the last page: a reference's year or page range is not one)."""
    text = text.strip()
    if _DOT_LEADER.search(text):
        return True
    match = _INDEX_ENTRY.match(text)
    if not match or len(text.split()) > 10:
        return False
    numbers = [int(number) for number in re.findall(r"\d+", match.group("numbers"))]
    return all(number <= pages for number in numbers)


def is_meaningful_title(title: str) -> bool:
    """A metadata title a person would recognise: not a file name, a placeholder or a tool's name."""
    title = " ".join(title.split())
    if sum(char.isalpha() for char in title) < 3 or _FILE_NAME.search(title) or _TOOL_TITLE.match(title):
        return False
    # One token with digits or separators is a file or job name ("sosp067-decandia1", "linux_sc_depth").
    return " " in title or not re.search(r"[\d_.]", title)

