"""Reading source folders: every supported type, every kind of bad input quarantined alone, and the
folder as a boundary (links out of it, special files)."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from ai_assets.core.documents.folders import LocalSourceFolders, SourcesUnavailable
from ai_assets.core.documents.loading import ParseSettings, load_source
from ai_assets.core.documents.model import InvalidSourceName, validate_source_name
from ai_assets_tests.document_files import docx_bytes, pdf_bytes, pptx_bytes, scanned_pdf_bytes


def write(folder: Path, files: dict[str, bytes | str]) -> None:
    for name, content in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))


def test_each_supported_type_becomes_a_document(tmp_path: Path) -> None:
    write(tmp_path / "docs", {
        "guide.md": "# Retries\n\nRuns retry.",
        "notes/plain.txt": "Just text.",
        "api.rst": "Operators\n=========\n\nAn operator is a task template.",
        "page.html": "<html><head><title>Sensors</title><style>x{}</style></head><body><p>Poll</p><script>y()</script></body></html>",
        "corpus.jsonl": json.dumps({"_id": "7", "title": "Tides", "text": "The moon pulls."}) + "\n",
        "image.png": b"\x89PNG",
        ".hidden.md": "# secret",
    })
    loaded = load_source(LocalSourceFolders(tmp_path), "docs", 10_000)
    by_key = {doc.doc_key: doc for doc in loaded.documents}
    assert set(by_key) == {"docs/guide.md", "docs/notes/plain.txt", "docs/api.rst", "docs/page.html", "docs/7"}
    assert by_key["docs/guide.md"].title == "Retries"
    assert by_key["docs/api.rst"].title == "Operators"
    assert by_key["docs/page.html"].title == "Sensors" and by_key["docs/page.html"].text == "Poll"
    assert by_key["docs/7"].text == "Tides\n\nThe moon pulls." and by_key["docs/7"].native_id == "7"
    assert by_key["docs/notes/plain.txt"].title == "plain"
    assert [(entry.relative, entry.reason) for entry in loaded.skipped] == [("image.png", "unsupported file type (.png)")]
    assert loaded.quarantined == []


BAD_FILES = [
    ("empty.md", b"", "empty file"),
    ("blank.md", b"  \n\t\n", "empty file"),
    ("binary.txt", b"abc\x00def", "binary file (contains NUL bytes)"),
    ("latin1.md", "caf\xe9".encode("latin-1"), "not valid UTF-8: byte 0xe9 at offset 3"),
    ("big.md", b"x" * 2_000, "file is 2000 bytes, over the limit of 1000 bytes"),
    ("script.html", b"<p>a</p><script>never closed", "broken HTML: <script> element is never closed"),
    ("comment.html", b"<p>a</p><!-- never closed <p>b</p>", "broken HTML: unterminated comment"),
    ("tags.html", b"<div><span></span></div>", "no text after extraction"),
    ("locked.pdf", pdf_bytes([[("body", "secret plans")]], password="pw"), "encrypted PDF: it needs a password"),
    ("cut.pdf", pdf_bytes([[("body", "half a file")]])[:900], "truncated PDF"),
    ("scan.pdf", scanned_pdf_bytes(1), "no text layer"),
    ("fake.docx", b"not a zip archive at all", "not a Word document"),
    ("fake.pptx", b"neither is this", "not a PowerPoint deck"),
    ("matter.md", b"---\n: [\n---\ntext", "invalid YAML front matter"),
]


# Ids by file name: generated PDFs differ by their creation time, and every xdist worker must collect the same ids.
@pytest.mark.parametrize(("name", "content", "reason"), BAD_FILES, ids=[name for name, _, _ in BAD_FILES])
def test_bad_file_is_quarantined_and_the_rest_kept(tmp_path: Path, name: str, content: bytes, reason: str) -> None:
    write(tmp_path / "docs", {"good.md": "# Good\n\nStill here.", name: content})
    loaded = load_source(LocalSourceFolders(tmp_path), "docs", 1_000)
    assert [doc.doc_key for doc in loaded.documents] == ["docs/good.md"]
    assert len(loaded.quarantined) == 1
    item = loaded.quarantined[0]
    assert item.path == name and item.reason.startswith(reason), item.reason


def test_bad_corpus_lines_are_quarantined_one_by_one(tmp_path: Path) -> None:
    lines = [
        json.dumps({"_id": "a", "title": "", "text": "first \u2028 with a line separator \u0085 inside"}),
        '{"_id": "b", "text": ',
        json.dumps(["not", "an", "object"]),
        json.dumps({"title": "no id", "text": "x"}),
        json.dumps({"_id": "a", "text": "duplicate id"}),
        json.dumps({"_id": "c", "title": "", "text": ""}),
        json.dumps({"_id": "d", "text": "last good"}),
    ]
    write(tmp_path / "beir", {"corpus.jsonl": "\n".join(lines) + "\n"})
    loaded = load_source(LocalSourceFolders(tmp_path), "beir", 10_000)
    assert [doc.doc_key for doc in loaded.documents] == ["beir/a", "beir/d"]
    assert "\u2028" in loaded.documents[0].text  # JSON strings may hold U+2028: not a line break
    reasons = {(item.line, item.reason.split(":")[0].split(" `")[0]) for item in loaded.quarantined}
    assert {line for line, _ in reasons} == {2, 3, 4, 5, 6}
    assert any(item.line == 2 and "invalid JSON" in item.reason for item in loaded.quarantined)
    assert any("duplicate document key 'beir/a'" in item.reason for item in loaded.quarantined)


def test_content_hash_changes_only_with_content(tmp_path: Path) -> None:
    folders = LocalSourceFolders(tmp_path)
    write(tmp_path / "s", {"a.md": "# A\n\ntext"})
    first = load_source(folders, "s", 1000).documents[0]
    (tmp_path / "s" / "a.md").write_text("# A\n\ntext", encoding="utf-8")  # same bytes, new mtime
    assert load_source(folders, "s", 1000).documents[0].content_hash == first.content_hash
    (tmp_path / "s" / "a.md").write_text("# A\n\ntext!", encoding="utf-8")
    assert load_source(folders, "s", 1000).documents[0].content_hash != first.content_hash


def test_source_names(tmp_path: Path) -> None:
    for name in ("dagster", ".git", "ok_2.x"):
        (tmp_path / name).mkdir()
    (tmp_path / "README.md").write_text("not a source")
    folders = LocalSourceFolders(tmp_path)
    assert folders.source_names() == ["dagster", "ok_2.x"]
    assert load_source(folders, "dagster", 1000).documents == []  # empty source: no error
    for bad in ("", "a/b", "-x", "with space", "x" * 65):
        with pytest.raises(InvalidSourceName):
            validate_source_name(bad)


def test_a_missing_sources_root_is_never_read_as_no_sources(tmp_path: Path) -> None:
    # An unmounted drive or a mistyped data dir must not look like "every source was removed".
    with pytest.raises(SourcesUnavailable, match="does not exist"):
        LocalSourceFolders(tmp_path / "nowhere").source_names()


def test_pdf_docx_pptx_and_markdown_front_matter_become_documents(tmp_path: Path) -> None:
    write(tmp_path / "docs", {
        "handbook.pdf": pdf_bytes([[("h1", "Handbook"), ("body", "Page one text.")], [("h2", "Later"), ("body", "Page two text.")]]),
        "runbook.docx": docx_bytes([("h1", "Runbook"), ("body", "Restart the worker.")]),
        "deck.pptx": pptx_bytes([("Roadmap", "Ship the parser")]),
        "notes.md": "---\ntitle: Team notes\nowner: ops\n---\nSome notes.\n",
    })
    loaded = load_source(LocalSourceFolders(tmp_path), "docs", 10_000)
    by_key = {doc.doc_key: doc for doc in loaded.documents}
    assert loaded.quarantined == [] and loaded.skipped == []
    pdf = by_key["docs/handbook.pdf"]
    assert (pdf.title, pdf.pages) == ("Handbook", 2)
    assert [(block.section, block.page) for block in pdf.blocks] == [("Handbook", 1), ("Handbook > Later", 2)]
    assert by_key["docs/runbook.docx"].title == "Runbook"
    assert by_key["docs/deck.pptx"].blocks[0].page == 1
    notes = by_key["docs/notes.md"]
    assert (notes.title, notes.metadata, notes.text) == ("Team notes", {"owner": "ops"}, "Some notes.")


def test_binary_formats_are_limited_by_their_text_and_file_size(tmp_path: Path) -> None:
    big_text = [[("body", f"Line {i} of a long report with many words on it.")] for i in range(40)]
    write(tmp_path / "docs", {"report.pdf": pdf_bytes(big_text), "small.pdf": pdf_bytes([[("body", "short")]])})
    folders = LocalSourceFolders(tmp_path)
    by_text = load_source(folders, "docs", 1_000)  # the file is larger than this, its text too
    assert [doc.path for doc in by_text.documents] == ["small.pdf"]
    assert "its text is" in by_text.quarantined[0].reason and "AI_ASSETS_MAX_DOCUMENT_BYTES" in by_text.quarantined[0].reason
    by_file = load_source(folders, "docs", 1_000_000, ParseSettings(max_file_bytes=2_000))
    assert [doc.path for doc in by_file.documents] == ["small.pdf"]
    assert "AI_ASSETS_MAX_FILE_BYTES" in by_file.quarantined[0].reason


def test_a_parse_over_the_time_limit_is_quarantined(tmp_path: Path) -> None:
    # A PDF of many pages with a limit far below what it needs: its worker is killed, the rest is read.
    pages = [[("h1", f"Part {i}"), *[("body", f"Sentence {j} of part {i}.") for j in range(40)]] for i in range(1000)]
    write(tmp_path / "docs", {"huge.pdf": pdf_bytes(pages), "good.md": "# Good\n\nStill here."})
    loaded = load_source(LocalSourceFolders(tmp_path), "docs", 10_000_000, ParseSettings(timeout_seconds=0.5))
    assert [doc.path for doc in loaded.documents] == ["good.md"]
    (item,) = loaded.quarantined
    assert item.path == "huge.pdf"
    assert item.reason == "parsing took longer than the limit of 0.5 s (setting AI_ASSETS_PARSE_TIMEOUT_SECONDS)"


def test_the_source_folder_is_a_boundary(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "passwd").write_text("root:x:0:0:root:/root:/bin/bash\n", encoding="utf-8")
    docs = tmp_path / "sources" / "docs"
    write(docs, {"guide.md": "# Guide\n\nInside.", "shared/inner.md": "# Inner\n\nLinked from inside."})
    (docs / "passwd.md").symlink_to(outside / "passwd")
    (docs / "outside-folder").symlink_to(outside)
    (docs / "inner-link.md").symlink_to(docs / "shared" / "inner.md")
    (docs / "again").symlink_to(docs)  # a loop back to the source folder
    (docs / "self.md").symlink_to(docs / "self.md")  # a link to itself
    (docs / "gone.md").symlink_to(docs / "deleted.md")
    (docs / "dir.md").mkdir()
    (docs / "dir.md" / "nested.md").write_text("# Nested\n\nIn a folder named like a document.", encoding="utf-8")
    os.mkfifo(docs / "pipe.md")
    folders = LocalSourceFolders(tmp_path / "sources")

    listing = folders.listing("docs")
    assert [file.relative for file in listing.files] == ["dir.md/nested.md", "guide.md", "inner-link.md", "shared/inner.md"]
    assert {(entry.relative, entry.reason) for entry in listing.quarantined} == {
        ("outside-folder", "points outside the source folder"), ("passwd.md", "points outside the source folder"),
    }
    assert {entry.relative: entry.reason for entry in listing.skipped} == {
        "again": "symlink loop: folder already listed",
        "dir.md": "a folder named like a document (its files are listed on their own)",
        "gone.md": "dangling link: its target does not exist",
        "pipe.md": "special file (FIFO), not a document",
        "self.md": "symlink loop",
    }
    loaded = load_source(folders, "docs", 10_000)
    assert all("root:x" not in doc.text for doc in loaded.documents)
    assert {item.path for item in loaded.quarantined} == {"passwd.md", "outside-folder"}
    assert len(loaded.skipped) == 5
    # A link re-pointed outside after the listing is refused when read.
    (docs / "inner-link.md").unlink()
    (docs / "inner-link.md").symlink_to(outside / "passwd")
    with pytest.raises(PermissionError, match="points outside the source folder"):
        folders.read_bytes("docs", "inner-link.md")


def test_a_file_the_process_may_not_read_is_quarantined(tmp_path: Path) -> None:
    """As a user who may not read one file: root reads everything, so as root the listing runs in a
    forked child that became nobody (the listing is where unreadable entries are found)."""
    root = Path(tempfile.mkdtemp(prefix="ai_assets-perm-"))
    try:
        root.chmod(0o755)
        write(root / "docs", {"good.md": "# Good\n\nReadable.", "locked/inside.md": "# Inside", "secret.md": "# Secret"})
        for path in [root / "docs", root / "docs" / "locked", *(root / "docs").rglob("*.md")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
        (root / "docs" / "secret.md").chmod(0)
        (root / "docs" / "locked").chmod(0)
        listing = listing_as_another_user(LocalSourceFolders(root), "docs")
        assert [file.relative for file in listing.files] == ["good.md"]
        assert {(entry.relative, entry.reason) for entry in listing.quarantined} == {
            ("secret.md", "unreadable: permission denied"), ("locked", "unreadable folder: permission denied"),
        }
    finally:
        (root / "docs" / "locked").chmod(0o755)
        shutil.rmtree(root, ignore_errors=True)


def listing_as_another_user(folders: LocalSourceFolders, source: str):
    from ai_assets.core.documents.folders import SourceListing

    if os.geteuid() != 0:
        return folders.listing(source)
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: become nobody, list, report, and leave without running anything else
        try:
            os.close(reader)
            os.setgid(65534)
            os.setuid(65534)
            os.write(writer, folders.listing(source).model_dump_json().encode())
        finally:
            os._exit(0)
    os.close(writer)
    with os.fdopen(reader, "rb") as pipe:
        data = pipe.read()
    os.waitpid(pid, 0)
    return SourceListing.model_validate_json(data)
