"""`ai-assets build`: materialize what is missing or stale, for every source and embedder."""

from __future__ import annotations

import argparse
import os
import sys

from ai_assets.cli.common import check_storage, print_leaderboard
from ai_assets.cli.instance import dagster_instance
from ai_assets.settings import Settings


def register(commands: argparse._SubParsersAction) -> None:
    build = commands.add_parser("build", help="materialize what is missing or stale, for every source and embedder")
    build.add_argument("--source", action="append", help="only this source (repeatable)")
    build.add_argument(
        "--force", action="store_true", help="run every step, even those whose assets are up to date"
    )
    build.set_defaults(handler=build_command)


def build_command(args: argparse.Namespace, settings: Settings) -> int:
    from ai_assets.build import run_build
    from ai_assets.definitions import build_definitions
    from ai_assets.history import evaluation_leaderboard

    check_storage(settings)
    instance = dagster_instance(settings, create=True)
    print(f"data: {settings.data_dir}  lancedb: {settings.resolved_lancedb_uri}")
    print(f"dagster instance: {os.environ['DAGSTER_HOME']}  embedders: {', '.join(settings.embedders)}")
    report = run_build(build_definitions(settings), instance, settings.embedders, args.source, force=args.force)
    if not report.ok:
        print(f"build failed: {len(report.failures)} of {len(report.runs)} runs failed:", file=sys.stderr)
        for failure in report.failures:
            print(f"  - {failure}", file=sys.stderr)
        return 1
    print(f"build complete: {len(report.runs)} runs succeeded, {len(report.up_to_date)} steps up to date")
    print_leaderboard(evaluation_leaderboard(instance, settings.embedders))
    return 0
