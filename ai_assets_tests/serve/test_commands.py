"""The commands: `search --where` and `ask --where` (the HTTP API's filters), and `serve`'s refusals."""

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


def test_serve_refuses_to_listen_beyond_localhost_without_tokens_or_with_bad_ones(
    served_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.setenv("AI_ASSETS_DATA_DIR", str(served_data))
    assert main(["serve", "--host", "0.0.0.0"]) == 2
    assert "--host 0.0.0.0 would let anyone read the index: configure tokens" in capsys.readouterr().err
    tokens = tmp_path / "tokens.json"
    tokens.write_text(json.dumps([{"name": "team-a", "sha256": "s3cret-plain-token"}]))
    monkeypatch.setenv("AI_ASSETS_SERVE_TOKENS_FILE", str(tokens))
    assert main(["serve", "--host", "0.0.0.0"]) == 2
    error = capsys.readouterr().err
    assert "token 'team-a': sha256 must be 64 lower-case hex digits" in error and "s3cret-plain-token" not in error
    tokens.write_text("[{")
    assert main(["serve"]) == 2
    assert f"AI_ASSETS_SERVE_TOKENS_FILE={tokens}: cannot read a JSON list of tokens" in capsys.readouterr().err
