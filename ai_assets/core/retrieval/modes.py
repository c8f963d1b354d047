"""The search modes, apart from the search itself: the CLI's argument parser names them without
importing LanceDB (seconds at start-up, before a command could say anything)."""

from __future__ import annotations

from typing import Literal

SearchMode = Literal["dense", "fts", "hybrid"]
SEARCH_MODES: tuple[SearchMode, ...] = ("dense", "fts", "hybrid")
