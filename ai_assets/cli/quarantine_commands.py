"""`ai-assets quarantine`: which files each source's last ingest run quarantined or skipped, and why."""

from __future__ import annotations

import argparse
import json

from ai_assets.cli.instance import dagster_instance
from ai_assets.core.documents.names import shown_name
from ai_assets.settings import Settings


def register(commands: argparse._SubParsersAction) -> None:
    quarantine = commands.add_parser(
        "quarantine", help="list the files the last ingest quarantined (and, with --skipped, skipped), with reasons"
    )
    quarantine.add_argument("--source", action="append", help="only this source (repeatable)")
    quarantine.add_argument("--skipped", action="store_true", help="also list the entries that were skipped")
    quarantine.add_argument("--json", action="store_true", help="print JSON")
    quarantine.set_defaults(handler=quarantine_command)


def quarantine_command(args: argparse.Namespace, settings: Settings) -> int:
    from ai_assets.assets.documents import QUARANTINED_FILES, SKIPPED_ENTRIES, STALE_DOCUMENTS
    from ai_assets.history import latest_metadata

    instance = dagster_instance(settings, create=False)
    sources = args.source or instance.get_dynamic_partitions(settings.names.source_partitions_name)
    report = []
    for source in sorted(sources):
        metadata = latest_metadata(instance, settings.names.key("source_documents"), source)
        if metadata is None:
            report.append({"source": source, "ingested": False, "quarantined": [], "skipped": [], "stale": []})
            continue
        report.append({
            "source": source,
            "ingested": True,
            "run_id": metadata["run_id"],
            "documents": metadata.get("documents"),
            "quarantined": metadata.get(QUARANTINED_FILES) or [],
            "skipped": metadata.get(SKIPPED_ENTRIES) or [],
            "stale": metadata.get(STALE_DOCUMENTS) or [],
        })
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    if not report:
        print("no sources yet: run `ai-assets build`")
    for entry in report:
        if not entry["ingested"]:
            print(f"{entry['source']}: not ingested yet")
            continue
        print(
            f"{entry['source']}: {entry['documents']} documents, {len(entry['quarantined'])} quarantined, "
            f"{len(entry['skipped'])} skipped, {len(entry['stale'])} stale (run {entry['run_id'][:8]})"
        )
        for item in entry["quarantined"]:
            location = f"{item['path']}:{item['line']}" if item.get("line") is not None else item["path"]
            remembered = " (not parsed again: unchanged)" if item.get("remembered") else ""
            print(f"  quarantined  {shown_name(location)}: {shown_name(item['reason'])}{remembered}")
        for item in entry["stale"]:
            print(
                f"  stale        {shown_name(item['doc_key'])}: last good version kept since {item['since']} "
                "(until the file is fixed or deleted)"
            )
        if args.skipped:
            for item in entry["skipped"]:
                print(f"  skipped      {shown_name(item['relative'])}: {shown_name(item['reason'])}")
    return 0
