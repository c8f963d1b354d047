"""`ai-assets search --where` and `ask --where`: the same filters as the HTTP API, from the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ai_assets.cli import main


def test_search_and_ask_filter_with_where(served_data: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setenv("AI_ASSETS_DATA_DIR", str(served_data))
    monkeypatch.setenv("AI_ASSETS_LOCAL_PRECISION", "fp32-onnx")
    question = "who is paged after the third failure"
    assert main(["search", question, "--k", "3", "--json", "--where", "source=alpha"]) == 0
    hits = json.loads(capsys.readouterr().out)
    assert len(hits) == 3 and {hit["source"] for hit in hits} == {"alpha"}
    assert main(["ask", question, "--json", "--where", "pages=1-1"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["citations"] and {cited["page"] for cited in answer["citations"]} == {1}
    assert main(["search", question, "--where", "team=platform"]) == 2
    assert "unknown field 'team'" in capsys.readouterr().err
