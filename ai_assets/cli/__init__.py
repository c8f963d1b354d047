"""`ai-assets`: build, search, ask, judge answers, trace, promote and roll back, import BEIR datasets, report evaluations, doctor.

Honours ``AI_ASSETS_DATA_DIR`` (default ``./data``) and ``DAGSTER_HOME`` (default
``<data dir>/dagster_home``), so runs started here are the ones the Dagster UI shows. Each
command group lives in its own module and registers its sub-commands on the parser.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Sequence

from ai_assets.cli import (
    answer_commands,
    build_commands,
    data_commands,
    doctor_commands,
    feedback_commands,
    index_commands,
    quarantine_commands,
    search_commands,
)
from ai_assets.cli.common import CliError
from ai_assets.cli.instance import INSTANCE_YAML, dagster_instance
from ai_assets.cli.serve_commands import register as register_serve_commands
from ai_assets.core.embedding.openai_errors import ServiceUnavailable
from ai_assets.settings import Settings, SettingsError, unknown_variables

__all__ = ["INSTANCE_YAML", "CliError", "dagster_instance", "main"]

COMMAND_GROUPS = (
    build_commands, search_commands, answer_commands, feedback_commands, index_commands, data_commands,
    quarantine_commands, doctor_commands,
)


def main(argv: Sequence[str] | None = None) -> int:
    # Dagster flags beta/preview APIs at import; that is for developers, not for this terminal.
    warnings.filterwarnings("ignore", module="dagster")
    warnings.filterwarnings("ignore", message=".*is currently in (beta|preview).*")
    args = parser().parse_args(argv)
    if getattr(args, "status_fd", None) is None:  # a build's worker: its supervisor warned already
        if getattr(args, "starting", None):  # a command that takes seconds to start says what it does at once
            print(args.starting, flush=True)
        for warning in unknown_variables():
            print(f"ai-assets: warning: {warning}", file=sys.stderr)
    try:
        args.kb, settings = knowledge_base(args.kb)  # the name, resolved: what feedback records
        return int(args.handler(args, settings) or 0)
    except (CliError, SettingsError, ServiceUnavailable, FileExistsError, FileNotFoundError, ValueError) as error:
        print(f"ai-assets: error: {error}", file=sys.stderr)
        return 2


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="ai-assets", description=__doc__.splitlines()[0])
    commands = root.add_subparsers(dest="command", required=True)
    for group in COMMAND_GROUPS:
        group.register(commands)
    register_serve_commands(commands)  # `serve` and `mcp`: the served index's front door
    for command in commands.choices.values():
        command.add_argument(
            "--kb", metavar="NAME", default=None,
            help=(
                "the knowledge base (a KnowledgeBase of the dg project's defs/ folder; default: the one with "
                "unprefixed keys, else the first)"
            ),
        )
    return root


def knowledge_base(name: str | None) -> tuple[str, Settings]:
    """The name and settings of the knowledge base ``ai_assets/defs/`` declares: the environment's
    ``AI_ASSETS_*`` variables under what its YAML sets."""
    from ai_assets.components.knowledge_base import knowledge_base_settings

    return knowledge_base_settings(name)
