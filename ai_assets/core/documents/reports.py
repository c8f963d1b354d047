"""Quarantined files as a Markdown table (the quarantine check's metadata)."""

from __future__ import annotations

from collections.abc import Sequence

from ai_assets.core.documents.model import QuarantinedItem
from ai_assets.core.documents.names import shown_name


def _cell(text: str) -> str:
    return shown_name(text).replace("|", "/").replace("`", "'")


def quarantine_table(quarantined: Sequence[QuarantinedItem]) -> str:
    if not quarantined:
        return "No file quarantined."
    rows = "".join(f"| `{_cell(item.location)}` | {_cell(item.reason)} |\n" for item in quarantined)
    return "| file | reason |\n|---|---|\n" + rows
