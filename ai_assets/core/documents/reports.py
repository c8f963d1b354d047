"""Quarantined and skipped entries as Markdown tables (asset metadata, the quarantine command)."""

from __future__ import annotations

from collections.abc import Sequence

from ai_assets.core.documents.model import QuarantinedItem, SkippedFile, StaleDocument
from ai_assets.core.documents.names import shown_name


def _cell(text: str) -> str:
    return shown_name(text).replace("|", "/").replace("`", "'")


def quarantine_table(quarantined: Sequence[QuarantinedItem]) -> str:
    if not quarantined:
        return "No file quarantined."
    rows = "".join(f"| `{_cell(item.location)}` | {_cell(item.reason)} |\n" for item in quarantined)
    return "| file | reason |\n|---|---|\n" + rows


def skipped_table(skipped: Sequence[SkippedFile]) -> str:
    if not skipped:
        return "No entry skipped."
    rows = "".join(f"| `{_cell(entry.relative)}` | {_cell(entry.reason)} |\n" for entry in skipped)
    return "| entry | reason |\n|---|---|\n" + rows


def stale_table(stale: Sequence[StaleDocument]) -> str:
    if not stale:
        return "No document stale."
    rows = "".join(f"| `{_cell(entry.doc_key)}` | {_cell(entry.since)} | {_cell(entry.reason)} |\n" for entry in stale)
    return "| document (last good version kept) | stale since | reason |\n|---|---|---|\n" + rows
