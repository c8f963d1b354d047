"""A knowledge base declared in YAML: the `KnowledgeBase` Dagster Component.

``ai_assets/defs/docs/defs.yaml`` declares the repository's knowledge base; ``dg list defs``,
``dg check defs`` and ``dagster dev`` (through ``ai_assets.definitions``) load it. Attributes
left out take their value from the environment (the ``AI_ASSETS_*`` variables of
docs/configuration.md), so a deployment can still move the data with ``AI_ASSETS_DATA_DIR``
while the YAML says what the knowledge base is. Every value is validated as the settings are
(one line naming the attribute's variable and what is allowed).

One knowledge base per code location for now: the assets, jobs, sensors and dynamic partitions
it defines have fixed names (DESIGN.md's keys), so a second instance would collide with the
first in the instance. A second ``KnowledgeBase`` in the defs folder is refused when the defs
load, naming both, instead of silently sharing partitions and jobs.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import dagster as dg

from ai_assets.settings import Settings, SettingsError, load_settings

# The names of the knowledge bases built in this process, by the folder of their YAML: what
# refuses a second one when the defs folder builds.
_built: dict[str, str] = {}
PROJECT = Path(__file__).resolve().parents[1]  # ai_assets/, in the dg project of this repository
_lock = threading.Lock()


# `{{ env.NAME }}` or `{{ env('NAME') }}` as a whole template: Dagster resolves an unset one to null.
_ENV_TEMPLATE = re.compile(r"""\{\{\s*env(?:\.(\w+)|\(\s*["'](\w+)["']\s*\))\s*\}\}""")


class DuplicateKnowledgeBase(ValueError):
    """Two knowledge bases in one code location."""


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

    Attributes other than ``name`` default to the environment's settings.
    """

    name: str
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
        overrides: dict[str, Any] = {
            field: value for field, value in self.model_dump(exclude={"name"}).items() if value is not None
        }
        return load_settings(**overrides)

    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        # Imported only to build: the CLI reads a knowledge base's attributes without the asset graph.
        from ai_assets.graph import build_definitions

        path = str(context.path)
        if (Path(path) / "defs.yaml").exists():
            require_set_variables(Path(path) / "defs.yaml")
        settings = self.settings()
        with _lock:
            others = [f"{name!r} ({other})" for other, name in _built.items() if other != path]
            if others:
                same = " of the same name" if self.name in _built.values() else ""
                raise DuplicateKnowledgeBase(
                    f"knowledge base {self.name!r} ({path}) cannot load beside {', '.join(others)}{same}: "
                    "a code location holds one knowledge base (its asset keys, jobs and partitions are not "
                    "prefixed yet); give the other one its own code location"
                )
            _built[path] = self.name
        return build_definitions(settings)


def knowledge_base_settings(name: str | None = None, project: Path = PROJECT) -> tuple[str, Settings]:
    """The name and settings (resolved now) of the knowledge base ``name`` that the defs folder
    declares, or of the only one. Dagster loads the components without building their assets."""
    defs_folder = project / "defs"
    for yaml_file in sorted(defs_folder.rglob("defs.yaml")):
        require_set_variables(yaml_file)
    declared = _unwrapped(lambda: dg.ComponentTree.for_project(path_within_project=project).get_all_components(of_type=KnowledgeBase))
    names = [component.name for component in declared]
    if len(declared) > 1:
        raise DuplicateKnowledgeBase(
            f"{defs_folder} declares {len(declared)} knowledge bases ({', '.join(names)}): a code location holds "
            "one knowledge base (its asset keys, jobs and partitions are not prefixed yet)"
        )
    if not declared or (name is not None and name not in names):
        raise ValueError(f"no knowledge base {name!r} in ai_assets/defs/ (declared: {', '.join(names) or 'none'})")
    return declared[0].name, declared[0].settings()


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
    """The definitions of the defs folder of ``project`` (a folder of a dg project)."""
    return _unwrapped(lambda: dg.load_from_defs_folder(path_within_project=project))
