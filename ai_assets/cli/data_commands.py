"""`ai-assets import-beir` and `ai-assets report`: bring a BEIR dataset in, read the evaluations out."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ai_assets.cli.common import print_leaderboard
from ai_assets.cli.instance import dagster_instance
from ai_assets.settings import Settings


def register(commands: argparse._SubParsersAction) -> None:
    beir = commands.add_parser("import-beir", help="turn a BEIR dataset folder into a source and an eval set")
    beir.add_argument("directory", type=Path)
    beir.add_argument("--name", required=True, help="source and eval set name")
    beir.add_argument("--overwrite", action="store_true", help="replace an existing source/eval set")
    beir.set_defaults(handler=import_beir_command)

    report = commands.add_parser("report", help="print the model leaderboard: the served versions' scores")
    report.add_argument("--json", action="store_true", help="print JSON")
    report.set_defaults(handler=report_command)


def import_beir_command(args: argparse.Namespace, settings: Settings) -> int:
    from ai_assets.core.evaluation.beir import import_beir

    result = import_beir(
        args.directory, settings.sources_dir.parent, args.name, overwrite=args.overwrite,
        sources_dir=settings.sources_dir, eval_dir=settings.eval_dir,
    )
    print(
        f"imported {result.documents} documents into {result.source_dir} and "
        f"{result.queries} judged queries ({result.judgments} judgments) into {result.eval_dir}; "
        "run `ai-assets build` to index and evaluate it"
    )
    return 0


def report_command(args: argparse.Namespace, settings: Settings) -> int:
    from ai_assets.history import evaluation_leaderboard

    rows = evaluation_leaderboard(dagster_instance(settings, create=False), settings.names, settings.embedders)
    if args.json:
        print(json.dumps([row.model_dump(by_alias=True) for row in rows], indent=2))
    elif rows:
        print_leaderboard(rows)
    else:
        print("no retrieval evaluation yet: run `ai-assets build`")
    return 0
