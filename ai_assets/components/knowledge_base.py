"""A knowledge base declared in YAML: the `KnowledgeBase` Dagster Component.

``ai_assets/defs/docs/defs.yaml`` declares the repository's knowledge base; ``dg list defs``,
``dg check defs`` and ``dagster dev`` (through ``ai_assets.definitions``) load it. Attributes
left out take their value from the environment (the ``AI_ASSETS_*`` variables of
docs/configuration.md), so a deployment can still move the data with ``AI_ASSETS_DATA_DIR``
while the YAML says what the knowledge base is. Every value is validated as the settings are
(one line naming the attribute's variable and what is allowed).

A second knowledge base is one more YAML file beside it: its asset keys, jobs, sensors,
schedule, resources and partitions carry its name (naming.py), and it keeps its data under its
own data dir. Knowledge bases that would collide (one name twice, two without a prefix, one data
location shared) are refused when the defs load, naming both.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Callable, Sequence
from itertools import combinations
from pathlib import Path
from typing import Any, TypeVar

import dagster as dg

from ai_assets.preview_api import component_loading
from ai_assets.settings import KEY_PREFIX_PATTERN, Settings, SettingsError, load_settings

PROJECT = Path(__file__).resolve().parents[1]  # ai_assets/, in the dg project of this repository


# `{{ env.NAME }}` or `{{ env('NAME') }}` as a whole template: Dagster resolves an unset one to null.
_ENV_TEMPLATE = re.compile(r"""\{\{\s*env(?:\.(\w+)|\(\s*["'](\w+)["']\s*\))\s*\}\}""")


class DuplicateKnowledgeBase(ValueError):
    """Two knowledge bases of one code location that would share names or data."""


class UnsetVariable(ValueError):
    """A knowledge base's YAML reads an environment variable that is not set."""


def unset_template_variables(yaml_text: str, environ: dict[str, str]) -> list[str]:
    """The variables ``{{ env.NAME }}`` templates of ``yaml_text`` name that ``environ`` lacks.

    Dagster resolves an unset one to null, which would quietly fall back to a default: a data
    dir of `./data` instead of the bucket the YAML meant.
    """
    names = [dotted or called for dotted, called in _ENV_TEMPLATE.findall(yaml_text)]
    return sorted({name for name in names if not environ.get(name)})


def require_set_variables(yaml_file: Path) -> None:
    """Raise ``UnsetVariable`` when ``yaml_file`` reads an environment variable that is not set."""
    unset = unset_template_variables(yaml_file.read_text(encoding="utf-8"), dict(os.environ))
    if unset:
        raise UnsetVariable(f"{yaml_file} reads unset environment variable(s) {', '.join(unset)}")


class KnowledgeBase(dg.Component, dg.Resolvable, dg.Model):
    """One knowledge base: its sources, chunks, embeddings, index and evaluations as assets.

    Attributes other than ``name`` and ``prefix_asset_keys`` default to the environment's settings.
    """

    name: str
    """Lower-case letters, digits and _: the prefix of its asset keys (handbook/source_documents) and names."""
    prefix_asset_keys: bool = True
    """False keeps DESIGN.md's unprefixed names (the repository's knowledge base); one per code location."""
    data_dir: str | None = None
    """Sources, eval sets, chunk files and the LanceDB database: a local path or an object-store URI."""
    embedders: list[str] | None = None
    """Enabled embedders, e.g. [minilm] (openai-small needs OPENAI_API_KEY or OPENAI_BASE_URL)."""
    chunk_max_tokens: int | None = None
    chunk_overlap_tokens: int | None = None
    quality_min_ndcg_at_10: float | None = None
    """The quality gate: every eval set and search mode must reach this nDCG@10 to be served."""
    quality_max_ndcg_drop: float | None = None
    """The quality gate: the largest drop below the served version's nDCG@10."""
    freshness_fail_minutes: int | None = None
    freshness_warn_minutes: int | None = None
    refresh_cron: str | None = None
    """The daily refresh schedule (UTC); also when paid answer evaluations run."""

    def settings(self) -> Settings:
        # Checked here too, to name the YAML attribute rather than the variable it sets.
        if not re.match(KEY_PREFIX_PATTERN, self.name):
            raise SettingsError(
                f"knowledge base name {self.name!r}: lower-case letters, digits and _, starting with a letter "
                "(it prefixes asset keys and job names)"
            )
        overrides: dict[str, Any] = {
            field: value
            for field, value in self.model_dump(exclude={"name", "prefix_asset_keys"}).items()
            if value is not None
        }
        return load_settings(**overrides, key_prefix=self.name if self.prefix_asset_keys else None)

    @classmethod
    def get_code_references_for_yaml(
        cls, yaml_path: Path, source_position: object, context: dg.ComponentLoadContext
    ) -> list:
        # None: an asset's "Source code" opens the Python that defines it (graph.py), not defs.yaml.
        return []

    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        # Imported only to build: the CLI reads a knowledge base's attributes without the asset graph.
        from ai_assets.graph import build_definitions

        if (context.path / "defs.yaml").exists():
            require_set_variables(context.path / "defs.yaml")
        return build_definitions(self.settings())


def data_locations(settings: Settings) -> dict[str, str]:
    """Where a knowledge base writes: no two knowledge bases may share one."""
    return {
        "data dir": settings.data_dir,
        "sources": settings.sources_location,
        "chunk files": settings.chunks_location,
        "LanceDB database": settings.resolved_lancedb_uri,
    }


def check_side_by_side(knowledge_bases: Sequence[KnowledgeBase]) -> None:
    """Refuse knowledge bases that would collide in one code location and instance."""
    locations = [data_locations(knowledge_base.settings()) for knowledge_base in knowledge_bases]
    for (first, mine), (second, theirs) in combinations(zip(knowledge_bases, locations, strict=True), 2):
        pair = f"knowledge bases {first.name!r} and {second.name!r}"
        if first.name == second.name:
            raise DuplicateKnowledgeBase(f"two knowledge bases are named {first.name!r}: give each its own name")
        if not first.prefix_asset_keys and not second.prefix_asset_keys:
            raise DuplicateKnowledgeBase(
                f"{pair} both set prefix_asset_keys: false; only one knowledge base of a code location can "
                "keep the unprefixed asset keys"
            )
        for what, location in mine.items():
            if location in theirs.values():
                raise DuplicateKnowledgeBase(
                    f"{pair} share the {what} {location}: give each knowledge base its own data_dir"
                )


def project_package(start: Path) -> Path | None:
    """The root package of the dg project that ``start`` is in (``[tool.dg.project] root_module``
    of the nearest pyproject.toml), or None when that pyproject.toml has no ``[tool.dg]`` table."""
    for folder in (start, *start.parents):
        pyproject = folder / "pyproject.toml"
        if not pyproject.is_file():
            continue
        try:
            tool = tomllib.loads(pyproject.read_text(encoding="utf-8")).get("tool", {})
        except (OSError, tomllib.TOMLDecodeError):
            return None
        if "dg" not in tool:
            return None
        root_module = tool["dg"].get("project", {}).get("root_module")
        return folder / root_module.replace(".", "/") if root_module else None
    return None


def declared_knowledge_bases(project: Path) -> tuple[dg.ComponentTree, list[KnowledgeBase]]:
    """The component tree of the dg project that ``project`` is in, and its knowledge bases, checked
    to stand side by side; their assets are not built."""
    for yaml_file in sorted((project / "defs").rglob("defs.yaml")):
        require_set_variables(yaml_file)
    try:
        tree = dg.ComponentTree.for_project(path_within_project=project)
    except Exception as error:
        if not isinstance(error.__cause__, ImportError):
            raise
        # The project's package is not installed: Dagster's own advice, on one line.
        raise ValueError(" ".join(str(error).split())) from None
    declared = _unwrapped(lambda: list(tree.get_all_components(of_type=KnowledgeBase)))
    check_side_by_side(declared)
    return tree, sorted(declared, key=lambda component: (component.prefix_asset_keys, component.name))


def knowledge_base_settings(name: str | None = None, project: Path | None = None) -> tuple[str, Settings]:
    """The name and settings (resolved now) of the knowledge base ``name`` of the dg project, or of
    its default one: the unprefixed one, else the first by name. The project is ``project``, else
    the dg project of the working directory, else this repository's."""
    project = project or project_package(Path.cwd()) or PROJECT
    _, declared = declared_knowledge_bases(project)
    names = [component.name for component in declared]
    chosen = next((component for component in declared if name in (None, component.name)), None)
    if chosen is None:
        declared_names = ", ".join(names) or "none"
        raise ValueError(f"no knowledge base {name!r} in {shown_folder(project / 'defs')} (declared: {declared_names})")
    return chosen.name, chosen.settings()


def shown_folder(folder: Path) -> str:
    """A folder as a user wrote it: relative to the working directory when under it."""
    try:
        return f"{folder.resolve().relative_to(Path.cwd().resolve())}/"
    except ValueError:
        return f"{folder}/"


T = TypeVar("T")


def _unwrapped(load: Callable[[], T]) -> T:
    """``load()``; a bad setting or knowledge base fails with its own one line: Dagster's component
    loader wraps every error of a component in a tree of the defs folder, which hides it."""
    try:
        return load()
    except Exception as error:
        cause: BaseException | None = error
        while cause is not None and not isinstance(cause, (SettingsError, UnsetVariable, DuplicateKnowledgeBase)):
            cause = cause.__cause__ or cause.__context__
        if cause is None:
            raise
        raise cause from None


def load_knowledge_bases(project: Path) -> dg.Definitions:
    """The definitions of the defs folder of ``project`` (a folder of a dg project): what
    ``dg.load_from_defs_folder`` builds, once its knowledge bases are known not to collide."""
    tree, _ = declared_knowledge_bases(project)
    with component_loading():
        return _unwrapped(tree.build_defs)
