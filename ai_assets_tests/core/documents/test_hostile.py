"""A hostile corpus beside good files: names that are not UTF-8 or that act on a terminal, files
that would exhaust memory or time. Each bad file is quarantined with a reason that names it (or
read), and the rest of the source is still loaded."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from ai_assets.core.documents.fingerprints import ReadLimits, content_fingerprint
from ai_assets.core.documents.folders import LocalSourceFolders
from ai_assets.core.documents.loading import ParseSettings, load_source
from ai_assets.core.documents.formats import parse_document
from ai_assets.core.documents.model import ParsedBlock, ParsedDocument, QuarantinedItem
from ai_assets.core.documents.names import escape_name, shown_name, unescape_name
from ai_assets.core.documents.parsing import ParseJob, parse_files
from ai_assets.core.documents.reports import quarantine_table
from ai_assets_tests.document_files import docx_bytes, rewritten_docx, zip_bomb_docx


def write(folder: Path, files: dict[str | bytes, bytes | str]) -> None:
    """Files by name; a bytes name is written as those exact bytes (not UTF-8 where it is not)."""
    for name, content in files.items():
        path = Path(os.fsdecode(os.path.join(os.fsencode(folder), name if isinstance(name, bytes) else name.encode())))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))


@pytest.mark.parametrize(
    "name",
    [b"latin1-caf\xe9.md", b"back\\slash.md", b"literal-\\xe9.md", "caf\u00e9.md".encode(), b"\xff\xfe", b"a\\"],
)
def test_a_name_escapes_to_utf8_and_back(name: bytes) -> None:
    key = escape_name(os.fsdecode(name))
    key.encode("utf-8")  # a key is always valid UTF-8
    assert os.fsencode(unescape_name(key)) == name


def test_names_that_are_not_utf8_or_escape_the_terminal_are_read_and_shown_escaped(tmp_path: Path) -> None:
    write(tmp_path / "docs", {
        b"latin1-caf\xe9.md": "# Caf\u00e9\n\nCoffee is served at nine.",
        b"dossier-\xe9t\xe9/notes.txt": "Summer notes.",
        "forged\nquarantined  evil.md: ok.md": "Line forging name.",
        "\u202egnp.md": "Right to left.",
        "good.md": "# Good\n\nA good file.",
    })
    folders = LocalSourceFolders(tmp_path)
    loaded = load_source(folders, "docs", 10_000)
    keys = sorted(document.doc_key for document in loaded.documents)
    assert keys == sorted([
        "docs/latin1-caf\\xe9.md", "docs/dossier-\\xe9t\\xe9/notes.txt", "docs/forged\nquarantined  evil.md: ok.md",
        "docs/\u202egnp.md", "docs/good.md",
    ])
    assert loaded.quarantined == []
    # The fingerprint hashes the escaped key (no UnicodeEncodeError), and changes with the bytes.
    before = content_fingerprint(folders, "docs")
    (tmp_path / "docs" / os.fsdecode(b"latin1-caf\xe9.md")).write_text("# Caf\u00e9\n\nTea at ten.")
    assert content_fingerprint(folders, "docs") != before
    assert shown_name("forged\nquarantined  evil.md") == "forged\\nquarantined  evil.md"
    assert shown_name("\u202egnp.md\x1b[2J\t") == "\\u202egnp.md\\x1b[2J\\t"
    assert shown_name("caf\u00e9 \u00a0x") == "caf\u00e9 \u00a0x"
    assert "`docs/forged\\nquarantined" in quarantine_table([QuarantinedItem(source="docs", path="docs/forged\nquarantined", reason="x")])


class OpenedFiles(LocalSourceFolders):
    """The local folders, recording every file opened."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.opened: list[str] = []

    def open_file(self, source: str, relative: str):
        self.opened.append(relative)
        return super().open_file(source, relative)


def test_a_file_over_the_size_limit_is_never_read_to_fingerprint_or_load(tmp_path: Path) -> None:
    write(tmp_path / "docs", {"good.md": "# Good\n\nA good file."})
    huge = tmp_path / "docs" / "huge.pdf"
    with huge.open("wb") as sparse:
        sparse.truncate(2_000_000_000)  # 2 GB, sparse: free to make, slow to read
    folders = OpenedFiles(tmp_path)
    limits = ReadLimits(max_file_bytes=1_000_000)
    first = content_fingerprint(folders, "docs", limits)
    os.utime(huge, (1, 1))
    assert content_fingerprint(folders, "docs", limits) != first  # a new version is still seen, unread
    loaded = load_source(folders, "docs", 10_000, ParseSettings(max_file_bytes=1_000_000))
    assert [document.doc_key for document in loaded.documents] == ["docs/good.md"]
    assert [(item.path, item.reason) for item in loaded.quarantined] == [
        ("huge.pdf", "file is 2000000000 bytes, over the limit of 1000000 bytes (setting AI_ASSETS_MAX_FILE_BYTES)")
    ]
    assert set(folders.opened) == {"good.md"}


ENTITY_DOCTYPE = b'<!DOCTYPE w:document [<!ENTITY ext SYSTEM "file:///etc/hostname">]>'


NESTED_DIVS = 20_000


@pytest.fixture(scope="module")
def hostile_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("hostile")
    write(root / "docs", {
        "good.md": "# Good\n\nA good file.",
        "good.docx": docx_bytes([("h1", "Runbook"), ("body", "Restart the scheduler first.")]),
        "good.html": "<html><body><h1>Page</h1><p>Plain page.</p></body></html>",
        "bomb.docx": zip_bomb_docx(200 << 20),
        "entity.docx": rewritten_docx(b"MARK", b"&ext;", ENTITY_DOCTYPE),
        "nested.html": "<html><body>" + "<div>" * NESTED_DIVS + "deep" + "</div>" * NESTED_DIVS + "</body></html>",
    })
    return root


GOOD_KEYS = ["docs/good.docx", "docs/good.html", "docs/good.md"]


def test_bombs_entities_and_deep_nesting_are_refused_fast_with_reasons(hostile_source: Path) -> None:
    started = time.perf_counter()
    loaded = load_source(LocalSourceFolders(hostile_source), "docs", 10_000_000, ParseSettings(workers=2))
    assert time.perf_counter() - started < 20
    assert sorted(document.doc_key for document in loaded.documents) == GOOD_KEYS
    reasons = {item.path: item.reason for item in loaded.quarantined}
    assert set(reasons) == {"bomb.docx", "entity.docx", "nested.html"}
    assert reasons["bomb.docx"].startswith("compressed ") and "AI_ASSETS_OFFICE_MAX_COMPRESSION_RATIO" in reasons["bomb.docx"]
    assert reasons["entity.docx"].startswith("word/document.xml declares a DOCTYPE")
    assert reasons["nested.html"].startswith("elements nested more than 1000 deep (setting AI_ASSETS_MAX_NESTING_DEPTH)")
    assert loaded.parse_seconds < 5  # refused before parsing, not at the timeout

    # A low unpacked-size limit names itself instead.
    low = load_source(
        LocalSourceFolders(hostile_source), "docs", 10_000_000, ParseSettings(workers=1, office_max_unpacked_bytes=50_000_000)
    )
    reason = {item.path: item.reason for item in low.quarantined}["bomb.docx"]
    assert reason.startswith("unpacks to 2105") and reason.endswith("(setting AI_ASSETS_OFFICE_MAX_UNPACKED_BYTES)")


def test_an_unchanged_quarantined_file_is_not_parsed_again(hostile_source: Path) -> None:
    folders = OpenedFiles(hostile_source)
    first = load_source(folders, "docs", 10_000_000, ParseSettings(workers=1))
    folders.opened.clear()
    again = load_source(folders, "docs", 10_000_000, ParseSettings(workers=1), first.quarantined)
    assert sorted(folders.opened) == ["good.docx", "good.html", "good.md"]
    assert [(item.path, item.reason, item.remembered) for item in again.quarantined] == [
        (item.path, item.reason, True) for item in first.quarantined
    ]
    assert sorted(document.doc_key for document in again.documents) == GOOD_KEYS

    # A limit that could change a verdict tries every bad file again; so does a changed file.
    folders.opened.clear()
    load_source(folders, "docs", 10_000_000, ParseSettings(workers=1, max_nesting_depth=900), first.quarantined)
    assert {"bomb.docx", "entity.docx", "nested.html"} <= set(folders.opened)
    folders.opened.clear()
    os.utime(hostile_source / "docs" / "nested.html", (5, 5))
    load_source(folders, "docs", 10_000_000, ParseSettings(workers=1), first.quarantined)
    assert sorted(folders.opened) == ["good.docx", "good.html", "good.md", "nested.html"]


def hungry_parser(format_name: str, data: bytes, *, ocr: bool = True) -> ParsedDocument:
    """Allocates 2 GB for a file saying HUNGRY, else parses as usual."""
    if data.startswith(b"HUNGRY"):
        hoard = bytearray(2_000_000_000)
        return ParsedDocument(blocks=[ParsedBlock(text=str(len(hoard)))])
    return parse_document(format_name, data, ocr=ocr)


def test_a_worker_over_its_memory_limit_is_quarantined_and_the_rest_parsed() -> None:
    jobs = [ParseJob("hungry.md", "markdown", b"HUNGRY"), ParseJob("good.md", "markdown", b"# Good\n\nText.")]
    outcomes = {
        outcome.key: outcome
        for outcome in parse_files(jobs, workers=1, timeout_seconds=30, parser=hungry_parser, memory_bytes=200_000_000)
    }
    assert outcomes["hungry.md"].reason == (
        "over the memory limit of 200000000 bytes (setting AI_ASSETS_PARSE_MEMORY_BYTES)"
    )
    assert outcomes["good.md"].parsed is not None and outcomes["good.md"].parsed.title == "Good"
