"""The Preview and Beta parts of Dagster 1.13 this project cannot do without, each used through
this module only, with its warning kept out of the terminal at exactly that call.

Dagster prints a warning block for every Preview or Beta API a code location uses, each time a
process loads it (`dg dev`, the daemon, every run and step): about 30 blocks before "Serving",
and again in every run. Where a stable API does the same, the project uses it instead (the
source × embedder partition mapping is Dagster's default one, inferred; the defs folder has no
``__init__.py`` that Dagster would load as a module of definitions). What is left is listed in
docs/operations.md ("The Dagster UI"). Filters match one message each and only around these
calls: any other Preview or Beta warning, and every other warning, still reaches the terminal.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import dagster as dg

# Checks are per partition (a source's quarantine, an embedder's quality gate): Preview in 1.13.
PARTITIONED_CHECK = r"Specifying a partitions_def on an AssetCheckSpec is currently in preview"

# source_files as an observable source asset, so the UI shows it as observed: Beta in 1.13.
OBSERVABLE_SOURCE_ASSET = (r"Function `multi_observable_source_asset` is currently in beta",)

# Each asset's "Source code" link: Beta in 1.13.
SOURCE_CODE_REFERENCES = r"Function `with_source_code_references` is currently in beta"

# What Dagster itself calls on every definition a component builds (it records the component and
# the code references in each asset's, job's and sensor's metadata, Beta classes, and copies
# sensors with their Beta parameters) and inside with_source_code_references.
COMPONENT_LOADER = (
    r"Class `CodeReferencesMetadataValue` is currently in beta",
    r"Class `LocalFileCodeReference` is currently in beta",
    r"Parameter `owners` of initializer `SensorDefinition.__init__` is currently in beta",
    r"Parameter `use_user_code_server` of initializer `AutomationConditionSensorDefinition.__init__` "
    r"is currently in beta",
)


@contextmanager
def ignoring(*messages: str) -> Iterator[None]:
    """Inside: the Preview and Beta warnings whose message starts with one of ``messages`` are not shown."""
    with warnings.catch_warnings():
        for message in messages:
            warnings.filterwarnings("ignore", message=message, category=dg.PreviewWarning)
            warnings.filterwarnings("ignore", message=message, category=dg.BetaWarning)
        yield


def partitioned_check(
    name: str, *, asset: dg.AssetKey, partitions_def: dg.PartitionsDefinition, **kwargs: object
) -> dg.AssetCheckSpec:
    """An asset check with a result per partition of its asset."""
    with ignoring(PARTITIONED_CHECK):
        return dg.AssetCheckSpec(name, asset=asset, partitions_def=partitions_def, **kwargs)  # type: ignore[arg-type]


def with_python_source(assets: Sequence[dg.AssetsDefinition]) -> list[dg.AssetsDefinition]:
    """``assets`` whose "Source code" in the UI opens the Python function that defines each."""
    with ignoring(SOURCE_CODE_REFERENCES, *COMPONENT_LOADER):
        return list(dg.with_source_code_references(assets))  # type: ignore[arg-type]


@contextmanager
def component_loading() -> Iterator[None]:
    """Around building a component tree's definitions (see COMPONENT_LOADER)."""
    with ignoring(*COMPONENT_LOADER):
        yield
