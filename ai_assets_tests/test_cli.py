"""End to end through the console script: import a tiny BEIR set, build, search, report."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

BEIR_CORPUS = [
    {"_id": "d1", "title": "Photosynthesis", "text": "Plants turn sunlight, water and carbon dioxide into sugar and oxygen."},
    {"_id": "d2", "title": "Volcano", "text": "A volcano erupts when magma rises through the crust to the surface."},
    {"_id": "d3", "title": "Tides", "text": "Ocean tides are caused by the gravitational pull of the moon and the sun."},
    {"_id": "d4", "title": "Rust", "text": "Iron rusts when it reacts with oxygen and moisture, forming iron oxide."},
    {"_id": "d5", "title": "Rainbows", "text": "A rainbow appears when sunlight is refracted and reflected in raindrops."},
    {"_id": "d6", "title": "Earthquakes", "text": "Earthquakes happen when tectonic plates slip along a fault line."},
]
BEIR_QUERIES = [
    {"_id": "q1", "text": "why does the sea level rise and fall every day"},
    {"_id": "q2", "text": "how do plants make food from light"},
    {"_id": "q3", "text": "what makes the ground shake"},
]


def write_beir(directory: Path) -> None:
    (directory / "qrels").mkdir(parents=True)
    (directory / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in BEIR_CORPUS), encoding="utf-8")
    (directory / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in BEIR_QUERIES), encoding="utf-8")
    # No header row, as in MS MARCO's BEIR release; a score-0 row is "judged not relevant".
    (directory / "qrels" / "test.tsv").write_text("q1\td3\t1\nq2\td1\t2\nq2\td5\t0\nq3\td6\t1\n", encoding="utf-8")


def ai_assets(*args: str, env: dict[str, str], check: bool = True) -> subprocess.CompletedProcess[str]:
    executable = shutil.which("ai-assets", path=str(Path(sys.executable).parent)) or "ai-assets"
    result = subprocess.run([executable, *args], env=env, capture_output=True, text=True, timeout=600)
    if check and result.returncode != 0:
        pytest.fail(f"ai-assets {' '.join(args)} exited {result.returncode}\n{result.stdout}\n{result.stderr}")
    return result


@pytest.fixture
def cli_env(tmp_path: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("AI_ASSETS_", "DAGSTER_"))}
    env["AI_ASSETS_DATA_DIR"] = str(tmp_path / "data")
    env["DAGSTER_HOME"] = str(tmp_path / "dagster_home")
    return env


def test_import_build_search_report(tmp_path: Path, cli_env: dict[str, str]) -> None:
    write_beir(tmp_path / "beir")
    imported = ai_assets("import-beir", str(tmp_path / "beir"), "--name", "science", env=cli_env)
    assert "imported 6 documents" in imported.stdout

    built = ai_assets("build", env=cli_env)
    assert "build complete" in built.stdout
    assert "[1/3] ingest_source_job science" in built.stdout
    # Off a terminal, the embedding step's progress is plain lines, the last at the total.
    assert re.search(r"embedding minilm\|science: (\d+)/\1 chunks, [\d,]+/s, done", built.stdout), built.stdout

    hits = json.loads(ai_assets("search", "moon gravity and the ocean", "--json", "--k", "3", env=cli_env).stdout)
    assert len(hits) == 3
    assert {"chunk_id", "doc_key", "score", "text"} <= hits[0].keys()
    assert hits[0]["doc_key"] == "science/d3"
    for mode in ("dense", "fts"):
        mode_hits = json.loads(ai_assets("search", "tectonic plates", "--mode", mode, "--json", env=cli_env).stdout)
        assert mode_hits[0]["doc_key"] == "science/d6", mode

    # A blank query would return arbitrary chunks; a source the table does not hold, nothing.
    for command in ("search", "trace"):
        blank = ai_assets(command, "  ", env=cli_env, check=False)
        assert blank.returncode == 2 and "the query is empty" in blank.stderr, command
        unknown = ai_assets(command, "moon", "--source", "nosuch", env=cli_env, check=False)
        assert unknown.returncode == 2, command
        assert unknown.stderr == "ai-assets: error: no source 'nosuch' in table chunks__minilm; known sources: science\n"

    everything = json.loads(ai_assets("report", "--json", env=cli_env).stdout)
    # The imported eval set, and beside it the one eval_questions drew from the imported corpus.
    assert {(row["eval_set"], row["mode"]) for row in everything} == {
        (eval_set, mode) for eval_set in ("science", "generated/science") for mode in ("dense", "fts", "hybrid")
    }
    report = [row for row in everything if row["eval_set"] == "science"]
    for row in report:
        assert row["embedder"] == "minilm"
        assert {"ndcg@10", "recall@100", "mrr@10"} <= row.keys()
        assert row["queries"] == 3
    dense = next(row for row in report if row["mode"] == "dense")
    assert dense["ndcg@10"] == pytest.approx(1.0)
    assert "science" in ai_assets("report", env=cli_env).stdout

    rebuilt = ai_assets("build", env=cli_env)
    assert "build complete" in rebuilt.stdout


def test_cli_errors_are_clear(tmp_path: Path, cli_env: dict[str, str]) -> None:
    missing = ai_assets("import-beir", str(tmp_path / "nowhere"), "--name", "x", env=cli_env, check=False)
    assert missing.returncode == 2 and "missing corpus.jsonl" in missing.stderr

    bad_name = ai_assets("import-beir", str(tmp_path), "--name", "no/slash", env=cli_env, check=False)
    assert bad_name.returncode == 2 and "invalid source name" in bad_name.stderr

    no_instance = ai_assets("report", env=cli_env, check=False)
    assert no_instance.returncode == 2 and "run `ai-assets build` first" in no_instance.stderr

    bad_setting = ai_assets("search", "x", env={**cli_env, "AI_ASSETS_EMBEDDERS": "nonsense"}, check=False)
    assert bad_setting.returncode == 2 and "AI_ASSETS_EMBEDDERS" in bad_setting.stderr

    no_index = ai_assets("search", "x", env=cli_env, check=False)
    assert no_index.returncode == 2 and "run `ai-assets build`" in no_index.stderr
