"""Reading source folders: every supported type, and every kind of bad input quarantined alone."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ai_assets.core.documents.folders import LocalSourceFolders, SourcesUnavailable
from ai_assets.core.documents.loading import load_source
from ai_assets.core.documents.model import InvalidSourceName, validate_source_name


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


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("empty.md", b"", "empty file"),
        ("blank.md", b"  \n\t\n", "empty file"),
        ("binary.txt", b"abc\x00def", "binary file (contains NUL bytes)"),
        ("latin1.md", "caf\xe9".encode("latin-1"), "not valid UTF-8: byte 0xe9 at offset 3"),
        ("big.md", b"x" * 2_000, "file is 2000 bytes, over the limit of 1000 bytes"),
        ("script.html", b"<p>a</p><script>never closed", "broken HTML: <script> element is never closed"),
        ("comment.html", b"<p>a</p><!-- never closed <p>b</p>", "broken HTML: unterminated comment"),
        ("tags.html", b"<div><span></span></div>", "no text after extraction"),
    ],
)
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
