"""The KnowledgeBase component: YAML over the environment, and clear load errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ai_assets.components.knowledge_base import KnowledgeBase, knowledge_base_settings, unset_template_variables
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


def test_a_second_knowledge_base_in_one_code_location_is_a_clear_load_error(tmp_path: Path) -> None:
    root = project(tmp_path, {"handbook": "", "policies": ""})
    last = load_error(root)
    assert last.startswith("ai_assets.components.knowledge_base.DuplicateKnowledgeBase: knowledge base ")
    assert "'handbook'" in last and "'policies'" in last and "one knowledge base" in last


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
    with pytest.raises(ValueError, match=r"no knowledge base 'docs' in ai_assets/defs/ \(declared: handbook\)"):
        knowledge_base_settings("docs", root / "kbcli")
