"""A source of real documents through the assets and the CLI: PDF and DOCX indexed with sections
and pages, bad files quarantined and listed, a link out of the sources never read, hits cited."""

from __future__ import annotations

import json
import os
from pathlib import Path

import dagster as dg
import pytest

from ai_assets.cli import main
from ai_assets.cli.instance import dagster_instance
from ai_assets.core.retrieval.search import citation
from ai_assets.core.store.tables import scan
from ai_assets.settings import Settings
from ai_assets_tests.document_files import docx_bytes, pdf_bytes
from ai_assets_tests.test_assets_pipeline import build, latest_metadata, table_for

SECRET = "zebra-quartz-7731 root:x:0:0"


@pytest.fixture
def documents_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    data = tmp_path / "data"
    folder = data / "sources" / "handbook"
    folder.mkdir(parents=True)
    filler = [("body", f"Line {n} of the handbook describes routine checks of the platform in detail.") for n in range(12)]
    pages = [  # each section longer than half a chunk, so each is its own chunk
        [("h1", "Operations"), ("body", "How the platform team runs production."), *filler],
        [("h2", "Retries"), ("body", "A failed run is retried three times with exponential backoff and jitter."), *filler],
        [("h2", "Escalation"), ("body", "After the third failure the on-call engineer is paged."), *filler],
    ]
    (folder / "ops.pdf").write_bytes(pdf_bytes(pages))
    (folder / "runbook.docx").write_bytes(
        docx_bytes([("h1", "Runbook"), ("h2", "Restarts"), ("body", "Restart the scheduler daemon before the webserver.")])
    )
    (folder / "cut.pdf").write_bytes(pdf_bytes(pages)[:1200])
    (folder / "locked.pdf").write_bytes(pdf_bytes(pages, password="pw"))
    (folder / "photo.png").write_bytes(b"\x89PNG\r\n")
    outside = tmp_path / "outside.txt"
    outside.write_text(SECRET, encoding="utf-8")
    (folder / "passwd.md").symlink_to(outside)
    os.mkfifo(folder / "pipe.md")
    monkeypatch.setenv("AI_ASSETS_DATA_DIR", str(data))
    # Once ops.pdf is deleted one document is left, too few to draw eval questions from: this test
    # is about documents, so an index nothing can score may be served (test_eval_questions.py covers the refusal).
    monkeypatch.setenv("AI_ASSETS_QUALITY_ALLOW_NO_EVAL_SETS", "true")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    return data


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert main(list(args)) == 0
    return capsys.readouterr().out


def test_documents_are_indexed_with_sections_and_pages_and_bad_ones_listed(
    documents_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = Settings(data_dir=documents_dir, quality_allow_no_eval_sets=True)
    instance: dg.DagsterInstance = dagster_instance(settings, create=True)
    build(settings, instance)

    documents = latest_metadata(instance, "source_documents", "handbook")
    assert (documents["documents"], documents["quarantined"], documents["skipped"]) == (2, 3, 2)
    assert documents["pages"] == 3
    reasons = {item["path"]: item["reason"] for item in documents["quarantined_files"]}
    assert reasons["passwd.md"] == "points outside the source folder"
    assert reasons["cut.pdf"].startswith("truncated PDF") and reasons["locked.pdf"].startswith("encrypted PDF")
    skipped = {entry["relative"]: entry["reason"] for entry in documents["skipped_entries"]}
    assert skipped == {"photo.png": "unsupported file type (.png)", "pipe.md": "special file (FIFO), not a document"}
    chunks = latest_metadata(instance, "document_chunks", "handbook")
    assert "| document | chunk | section | page | page_end |" in chunks["sample"]
    assert "| `handbook/ops.pdf` | 0 | Operations | 1 | 1 |" in chunks["sample"]

    rows = scan(table_for(settings), ["doc_key", "section", "page", "page_end", "text"]).to_pylist()
    assert all(SECRET.split()[0] not in row["text"] for row in rows)
    pdf_rows = [row for row in rows if row["doc_key"] == "handbook/ops.pdf"]
    assert pdf_rows and all(row["page"] >= 1 for row in pdf_rows) and max(row["page_end"] for row in pdf_rows) == 3
    docx_rows = [row for row in rows if row["doc_key"] == "handbook/runbook.docx"]
    assert docx_rows and all(row["page"] is None for row in docx_rows)
    assert all(row["section"] for row in rows)

    hits = json.loads(run_cli(capsys, "search", "who is paged after the third failure", "--json", "--k", "3"))
    assert {"section", "page", "page_end"} <= hits[0].keys()
    top = hits[0]
    assert (top["doc_key"], top["section"], top["page"]) == ("handbook/ops.pdf", "Operations > Escalation", 3)
    # One label in search, trace and ask: the title, the section under it, the page.
    label = citation(top["doc_title"] or top["doc_key"], top["section"], top["page"], top["page_end"])
    assert label.endswith("Escalation · p. 3"), label
    text = run_cli(capsys, "search", "who is paged after the third failure", "--k", "1")
    assert f"  {label}\n    handbook/ops.pdf, chunk" in text
    docx_hit = run_cli(capsys, "search", "restart the scheduler daemon", "--k", "1")
    assert "    handbook/runbook.docx, chunk 0 (" in docx_hit  # small sections share one chunk
    traced = run_cli(capsys, "trace", "who is paged after the third failure", "--k", "1")
    assert f"cited as  {label}" in traced
    assert f"] {label}  (handbook/ops.pdf" in run_cli(capsys, "ask", "who is paged after the third failure")
    assert json.loads(run_cli(capsys, "trace", "who is paged", "--k", "1", "--json"))[0]["page"] == 3

    listed = run_cli(capsys, "quarantine", "--skipped")
    assert "handbook: 2 documents, 3 quarantined, 2 skipped" in listed
    assert "quarantined  passwd.md: points outside the source folder" in listed
    assert "skipped      pipe.md: special file (FIFO), not a document" in listed
    report = json.loads(run_cli(capsys, "quarantine", "--json"))
    assert {item["path"] for item in report[0]["quarantined"]} == {"cut.pdf", "locked.pdf", "passwd.md"}

    # A truncated copy replaces the good, indexed ops.pdf: its passages stay found, marked stale;
    # the bad files that did not change are not parsed again.
    good_pdf = (documents_dir / "sources" / "handbook" / "ops.pdf").read_bytes()
    (documents_dir / "sources" / "handbook" / "ops.pdf").write_bytes(good_pdf[:1200])
    build(settings, instance)
    documents = latest_metadata(instance, "source_documents", "handbook")
    assert (documents["documents"], documents["quarantined"], documents["stale"]) == (1, 4, 1)
    assert documents["quarantined_remembered"] == 2  # cut.pdf and locked.pdf, unchanged
    stale = documents["stale_documents"][0]
    assert stale["doc_key"] == "handbook/ops.pdf" and stale["reason"].startswith("truncated PDF")
    assert latest_metadata(instance, "document_chunks", "handbook")["chunks_kept_stale"] == len(pdf_rows)
    traced = json.loads(run_cli(capsys, "trace", "who is paged after the third failure", "--k", "1", "--json"))[0]
    assert (traced["doc_key"], traced["document_status"]) == ("handbook/ops.pdf", "stale")
    assert traced["stale_since"] == stale["since"] and traced["stale_reason"].startswith("truncated PDF")
    assert "stale        handbook/ops.pdf: last good version kept since" in run_cli(capsys, "quarantine")

    # Deleted, it leaves the index.
    (documents_dir / "sources" / "handbook" / "ops.pdf").unlink()
    build(settings, instance)
    assert latest_metadata(instance, "source_documents", "handbook")["stale"] == 0
    doc_keys = {row["doc_key"] for row in scan(table_for(settings), ["doc_key"]).to_pylist()}
    assert doc_keys == {"handbook/runbook.docx"}
