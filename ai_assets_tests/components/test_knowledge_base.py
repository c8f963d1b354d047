"""The KnowledgeBase component: YAML over the environment, and clear load errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from ai_assets.components.knowledge_base import (
    KnowledgeBase,
    knowledge_base_settings,
    load_knowledge_bases,
    unset_template_variables,
)
from ai_assets.settings import SettingsError

COMPONENT = "ai_assets.components.knowledge_base.KnowledgeBase"


def test_yaml_attributes_take_precedence_over_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AI_ASSETS_CHUNK_MAX_TOKENS", "100")
    monkeypatch.setenv("AI_ASSETS_CHUNK_OVERLAP_TOKENS", "10")
    settings = KnowledgeBase(name="handbook", data_dir=str(tmp_path), chunk_max_tokens=120).settings()
    assert (settings.data_dir, settings.chunk_max_tokens, settings.chunk_overlap_tokens) == (str(tmp_path), 120, 10)


def test_a_bad_attribute_is_one_line_naming_the_setting() -> None:
    with pytest.raises(SettingsError, match=r"^invalid setting .*AI_ASSETS_CHUNK_OVERLAP_TOKENS"):
        KnowledgeBase(name="handbook", chunk_max_tokens=64, chunk_overlap_tokens=60).settings()


def test_unset_template_variables_are_found() -> None:
    text = "data_dir: \"{{ env.KB_BUCKET }}\"\nrefresh_cron: \"{{ env('KB_CRON') }}\"\nother: \"{{ env.SET }}\"\n"
    assert unset_template_variables(text, {"SET": "1"}) == ["KB_BUCKET", "KB_CRON"]
    assert unset_template_variables("name: docs\n", {}) == []


def project(root: Path, knowledge_bases: dict[str, str], module: str = "kbproject") -> Path:
    """A dg project at ``root`` whose defs folder holds one YAML per knowledge base."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text(
        f'[tool.dg]\ndirectory_type = "project"\n\n[tool.dg.project]\nroot_module = "{module}"\n', encoding="utf-8"
    )
    for folder in (root / module, root / module / "defs"):
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "__init__.py").write_text("", encoding="utf-8")
    for name, attributes in knowledge_bases.items():
        (root / module / "defs" / name).mkdir()
        (root / module / "defs" / name / "defs.yaml").write_text(
            f"type: {COMPONENT}\nattributes:\n  name: {name}\n{attributes}", encoding="utf-8"
        )
    return root


def load_error(root: Path, **environ: str) -> str:
    """The last line a process loading the project's defs prints (it must fail)."""
    code = "import sys; from pathlib import Path; from ai_assets.components.knowledge_base import load_knowledge_bases; load_knowledge_bases(Path(sys.argv[1]))"
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("AI_ASSETS_")}, **environ, "PYTHONPATH": str(root)}
    env["AI_ASSETS_DATA_DIR"] = str(root / "data")
    result = subprocess.run(
        [sys.executable, "-c", code, str(root)], env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode != 0, result.stdout
    return result.stderr.strip().splitlines()[-1]


def test_knowledge_bases_that_would_collide_are_a_clear_load_error(tmp_path: Path) -> None:
    shared = project(tmp_path / "shared", {"handbook": "", "policies": ""}, "kbshared")
    last = load_error(shared)  # both read AI_ASSETS_DATA_DIR
    assert last.startswith("ai_assets.components.knowledge_base.DuplicateKnowledgeBase: knowledge bases ")
    assert "'handbook' and 'policies' share the data dir" in last and "its own data_dir" in last
    unprefixed = {"a": "  prefix_asset_keys: false\n  data_dir: /tmp/kb-a\n", "b": "  prefix_asset_keys: false\n"}
    last = load_error(project(tmp_path / "unprefixed", unprefixed, "kbunprefixed"))
    assert "'a' and 'b' both set prefix_asset_keys: false" in last, last
    last = load_error(project(tmp_path / "badname", {"Hand-Book": ""}, "kbbadname"))
    assert last.endswith("knowledge base name 'Hand-Book': lower-case letters, digits and _, starting with a letter "
                         "(it prefixes asset keys and job names)"), last


def test_an_unset_environment_variable_in_the_yaml_is_a_clear_load_error(tmp_path: Path) -> None:
    root = project(tmp_path, {"handbook": '  data_dir: "{{ env.KB_TEST_UNSET_BUCKET }}"\n'})
    last = load_error(root)
    assert last.endswith("reads unset environment variable(s) KB_TEST_UNSET_BUCKET"), last


def test_the_cli_names_the_knowledge_bases_when_kb_names_none_of_them(tmp_path: Path) -> None:
    executable = Path(sys.executable).parent / "ai-assets"
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("AI_ASSETS_")}, "AI_ASSETS_DATA_DIR": str(tmp_path)}
    result = subprocess.run(
        [str(executable), "search", "--kb", "nope", "retries"], env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 2
    assert result.stderr == "ai-assets: error: no knowledge base 'nope' in ai_assets/defs/ (declared: docs)\n"
    assert not any(tmp_path.iterdir())  # nothing made


def test_the_cli_reads_the_declared_knowledge_base_without_building_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = project(tmp_path, {"handbook": f"  data_dir: {tmp_path / 'handbook'}\n  chunk_max_tokens: 128\n"}, "kbcli")
    monkeypatch.syspath_prepend(str(root))
    name, settings = knowledge_base_settings(None, root / "kbcli")
    assert (name, settings.data_dir, settings.chunk_max_tokens) == ("handbook", str(tmp_path / "handbook"), 128)
    with pytest.raises(ValueError, match=r"no knowledge base 'docs' in .*/kbcli/defs/ \(declared: handbook\)"):
        knowledge_base_settings("docs", root / "kbcli")


HANDBOOK_PAGE = (
    "# Leave\n\n## Parental leave\n\nEmployees get sixteen weeks of paid parental leave, taken within a year "
    "of the birth.\n\n## Sick days\n\nTell your manager before ten in the morning when you are sick.\n"
)


def two_knowledge_bases(root: Path, module: str) -> Path:
    """A dg project with the repository's layout (an unprefixed ``docs``) and a ``handbook`` beside it,
    each on its own data dir with one source; ``<module>.definitions`` loads them as ours does."""
    for kb, (source, page) in {"docs": ("alpha", "# Retries\n\nA run retry starts the run again.\n"),
                               "handbook": ("policies", HANDBOOK_PAGE)}.items():
        (root / f"{kb}_data" / "sources" / source).mkdir(parents=True)
        (root / f"{kb}_data" / "sources" / source / "page.md").write_text(page, encoding="utf-8")
    # A second document, so that eval_questions can draw known-item questions (one among one measures nothing).
    (root / "handbook_data" / "sources" / "policies" / "holidays.md").write_text(
        "# Holidays\n\nBook holidays in the calendar two weeks ahead; the office closes between Christmas and New Year.\n",
        encoding="utf-8",
    )
    project(root, {
        "docs": f"  prefix_asset_keys: false\n  data_dir: {root / 'docs_data'}\n",
        "handbook": f"  data_dir: {root / 'handbook_data'}\n",
    }, module)
    (root / module / "definitions.py").write_text(
        "from pathlib import Path\n\nfrom ai_assets.components.knowledge_base import load_knowledge_bases\n\n"
        "defs = load_knowledge_bases(Path(__file__).parent)\n",
        encoding="utf-8",
    )
    return root


def test_a_second_knowledge_base_gets_prefixed_keys_and_names_of_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = two_knowledge_bases(tmp_path, "kbtwo")
    monkeypatch.syspath_prepend(str(root))
    defs = load_knowledge_bases(root / "kbtwo")
    dg.Definitions.validate_loadable(defs)
    keys = {key.to_user_string() for key in defs.resolve_all_asset_keys()}
    ours = {"source_files", "source_documents", "document_chunks", "chunk_embeddings", "search_index",
            "retrieval_evaluation", "served_index", "answer_evaluation", "model_leaderboard", "feedback_eval_set",
            "eval_questions"}
    assert keys == ours | {f"handbook/{key}" for key in ours}
    jobs = {job.name for job in defs.resolve_all_job_defs()} - {"__ASSET_JOB"}
    base_jobs = {"ingest_source_job", "embed_source_job", "index_and_evaluate_job"}
    assert jobs == base_jobs | {f"handbook__{job}" for job in base_jobs}
    sensors = {sensor.name for sensor in defs.sensors}
    assert sensors == {"source_sensor", "automation_sensor", "handbook__source_sensor", "handbook__automation_sensor"}
    assert {schedule.name for schedule in defs.schedules} == {"daily_refresh", "handbook__daily_refresh"}
    handbook = defs.resolve_assets_def(dg.AssetKey(["handbook", "chunk_embeddings"]))
    dimensions = {dimension.name: dimension.partitions_def for dimension in handbook.partitions_def.partitions_defs}  # type: ignore[union-attr]
    assert dimensions["source"].name == "handbook__source"  # type: ignore[attr-defined]
    assert {key.to_user_string() for key in handbook.dependency_keys} == {"handbook/document_chunks"}
    assert defs.resources["handbook__source_files"].sources_uri == str(root / "handbook_data" / "sources")  # type: ignore[union-attr]


def test_the_cli_builds_and_searches_the_second_knowledge_base_without_touching_the_first(tmp_path: Path) -> None:
    root = two_knowledge_bases(tmp_path, "kbcli2")
    bin_dir = Path(sys.executable).parent
    # Run from the project, as a user does; its package is not installed, so it is on PYTHONPATH
    # (what Dagster's own error advises).
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("AI_ASSETS_", "DAGSTER_"))}, "PYTHONPATH": str(root)}

    def run(*command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, timeout=600, check=False)

    built = run(str(bin_dir / "ai-assets"), "build", "--kb", "handbook")
    assert built.returncode == 0, built.stdout + built.stderr
    assert "[1/3] handbook__ingest_source_job policies" in built.stdout
    assert "build complete: 3 runs succeeded" in built.stdout

    found = run(str(bin_dir / "ai-assets"), "search", "--kb", "handbook", "how long is parental leave", "--json")
    assert found.returncode == 0, found.stderr
    hits = json.loads(found.stdout)
    assert hits[0]["doc_key"] == "policies/page.md" and "sixteen weeks" in hits[0]["text"]
    assert {hit["source"] for hit in hits} == {"policies"}

    # The first knowledge base: nothing built, nothing written beside its sources.
    assert sorted(path.name for path in (root / "docs_data").iterdir()) == ["sources"]
    unbuilt = run(str(bin_dir / "ai-assets"), "search", "retry")  # the default: the unprefixed docs
    assert unbuilt.returncode == 2 and str(root / "docs_data" / "lancedb") in unbuilt.stderr

    instance = dg.DagsterInstance.from_config(str(root / "handbook_data" / "dagster_home"))
    materialized = instance.get_latest_materialization_event(dg.AssetKey(["handbook", "source_documents"]))
    assert materialized is not None
    assert instance.get_dynamic_partitions("handbook__source") == ["policies"]
    assert instance.get_latest_materialization_event(dg.AssetKey("source_documents")) is None

    listed = run(str(bin_dir / "dg"), "list", "defs", "--json")
    assert listed.returncode == 0, listed.stderr
    keys = {asset["asset_key"] for asset in json.loads(listed.stdout)["assets"]}
    assert {"source_documents", "handbook/source_documents", "handbook/served_index"} <= keys
