"""`ai-assets rollback`: list an embedder's table versions, and restore one."""

from __future__ import annotations

import argparse

from ai_assets.cli.common import CliError, embedders, enabled_embedder
from ai_assets.settings import Settings


def register(commands: argparse._SubParsersAction) -> None:
    rollback = commands.add_parser("rollback", help="restore an embedder's table to an earlier version")
    rollback.add_argument("--embedder", help="embedder name (default: the first enabled)")
    target = rollback.add_mutually_exclusive_group(required=True)
    target.add_argument("--to", type=int, metavar="VERSION", help="table version to restore")
    target.add_argument("--list", action="store_true", help="list the table's versions")
    rollback.set_defaults(handler=rollback_command)


def rollback_command(args: argparse.Namespace, settings: Settings) -> int:
    from ai_assets.resources import lancedb_from_settings

    spec = embedders(settings).spec(enabled_embedder(settings, args.embedder))
    table = lancedb_from_settings(settings).table(spec, create=False)
    versions = {entry["version"]: entry for entry in table.list_versions()}
    if args.list:
        for version, entry in sorted(versions.items()):
            current = "  (current)" if version == table.version else ""
            print(f"{version:>5}  {entry['timestamp']:%Y-%m-%d %H:%M:%S}  rows {entry['metadata'].get('total_rows', '?')}{current}")
        return 0
    if args.to not in versions:
        raise CliError(f"table {table.name} has no version {args.to}; versions: {min(versions)}..{max(versions)}")
    before = table.version
    table.restore(args.to)
    print(
        f"restored {table.name} to the contents of version {args.to} (was version {before}; "
        f"now version {table.version} with {table.count_rows()} rows). "
        "The next `ai-assets build` brings it forward to the current sources again."
    )
    return 0
