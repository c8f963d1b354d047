"""Which version of an embedder's table is served: LanceDB tags beside the versions that writes make.

Writes (``chunk_embeddings``' merges, ``search_index``'s compaction and indexes) always go to the
table's latest version. Readers do not follow them: they read the version tagged ``served``,
which moves only when ``search_index``'s newest version (tagged ``candidate``) passed every
blocking check, or when an operator moves it (``ai-assets rollback``, ``ai-assets promote
--force``). A rollback tags the latest version it moved away from ``held``: no candidate up to
that version is promoted automatically again, so the next build does not undo the rollback;
the next candidate built from new writes is evaluated as usual.

A tag is a reference LanceDB keeps: compaction never deletes a tagged version's files (see
``cleanup_window``). The recently served versions keep a tag each (``served-v<N>``), so a
rollback target outlives LanceDB's cleanup of old versions.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from lancedb.table import Table
from pydantic import BaseModel

from ai_assets.core.store.async_tables import pin

SERVED_TAG = "served"
CANDIDATE_TAG = "candidate"
HELD_TAG = "held"
HISTORY_TAG_PREFIX = "served-v"
# Versions that were served and keep a tag for a rollback, newest first; the served one is always kept.
SERVED_HISTORY = 5
# LanceDB's own default: optimize() deletes the files of versions older than this.
DEFAULT_VERSION_RETENTION = timedelta(days=7)
# LanceDB takes its cleanup cutoff when it prunes, after compacting, which on a large table can
# take minutes after the window was computed; the window covers that with room to spare.
CLEANUP_MARGIN = timedelta(hours=1)

VersionSelector = Literal["served", "latest"] | int


class NoServedVersion(LookupError):
    """The table has no served version yet (no candidate passed its gate)."""


class UnknownVersion(ValueError):
    """A version number the table does not have (never written, or cleaned up)."""


@dataclass(frozen=True)
class ServingState:
    """An embedder table's versions as readers and the build see them."""

    table: str
    latest: int
    served: int | None
    candidate: int | None
    held: int | None  # a rollback moved away from this version: candidates up to it wait for `promote`
    history: tuple[int, ...]  # recently served versions, newest first

    @property
    def pending(self) -> int | None:
        """The candidate that the next evaluation would promote, if it passes: not served, not held."""
        if self.candidate is None or self.candidate == self.served or self.is_held(self.candidate):
            return None
        return self.candidate

    def is_held(self, version: int) -> bool:
        return self.held is not None and version <= self.held

    def previous_served(self) -> int | None:
        """The most recent served version before the current one: the default rollback target."""
        older = [version for version in self.history if self.served is None or version < self.served]
        return older[0] if older else None

    def describe(self) -> str:
        served = f"v{self.served}" if self.served is not None else "nothing"
        text = f"{self.table}: serving {served}, latest v{self.latest}"
        if self.candidate is not None and self.candidate != self.served:
            status = "held back by a rollback" if self.is_held(self.candidate) else "not promoted yet"
            text += f", candidate v{self.candidate} {status}"
        return text


def serving_state(table: Table) -> ServingState:
    """The serving tags of ``table`` (a handle at its latest version)."""
    tags = {name: tag["version"] for name, tag in table.tags.list().items()}
    history = sorted(
        (version for name, version in tags.items() if name.startswith(HISTORY_TAG_PREFIX)), reverse=True
    )
    return ServingState(
        table=table.name,
        latest=table.version,
        served=tags.get(SERVED_TAG),
        candidate=tags.get(CANDIDATE_TAG),
        held=tags.get(HELD_TAG),
        history=tuple(history),
    )


def _set_tag(table: Table, tag: str, version: int) -> None:
    if tag in table.tags.list():
        table.tags.update(tag, version)
    else:
        table.tags.create(tag, version)


def _delete_tag(table: Table, tag: str) -> None:
    if tag in table.tags.list():
        table.tags.delete(tag)


def mark_candidate(table: Table, version: int) -> None:
    """``version`` is what the next evaluation scores and may promote."""
    _set_tag(table, CANDIDATE_TAG, version)


def extend_hold(table: Table, unchanged_since: int) -> None:
    """Index maintenance of a held table holds its result too. When no row changed since
    ``unchanged_since`` (a version at or before the hold), the versions written since (compaction,
    indexes) hold the rows the rollback moved away from, so the hold moves up to the latest."""
    state = serving_state(table)
    if state.held is not None and unchanged_since <= state.held < state.latest:
        _set_tag(table, HELD_TAG, state.latest)


def move_served(table: Table, version: int, hold_up_to: int | None = None) -> ServingState:
    """Serve ``version``. ``hold_up_to`` (a rollback): no candidate up to that version is promoted
    automatically afterwards. Serving a version past the hold lifts it."""
    require_version(table, version)
    _set_tag(table, SERVED_TAG, version)
    _set_tag(table, f"{HISTORY_TAG_PREFIX}{version}", version)
    state = serving_state(table)
    for old in state.history[SERVED_HISTORY:]:
        if old != version:
            _delete_tag(table, f"{HISTORY_TAG_PREFIX}{old}")
    if hold_up_to is not None:
        _set_tag(table, HELD_TAG, hold_up_to)
    elif state.held is not None and version >= state.held:
        _delete_tag(table, HELD_TAG)
    return serving_state(table)


def existing_versions(table: Table) -> list[int]:
    return sorted(entry["version"] for entry in table.list_versions())


def require_version(table: Table, version: int) -> None:
    versions = existing_versions(table)
    if version not in versions:
        raise UnknownVersion(
            f"table {table.name} has no version {version}; versions {versions[0]}..{versions[-1]} exist "
            "(older untagged ones are cleaned up by compaction after 7 days)"
        )


def parse_version_selector(text: str) -> VersionSelector:
    """``served``, ``latest`` or a version number, as given on the command line."""
    if text in ("served", "latest"):
        return text  # type: ignore[return-value]
    if text.isdigit():
        return int(text)
    raise ValueError(f"--version must be served, latest or a version number, not {text!r}")


def checkout(table: Table, selector: VersionSelector = "served") -> int:
    """Pin ``table`` (in place) to the selected version and return its number. ``latest`` leaves the
    handle at the version it opened; ``served`` fails with the command to run when nothing is served."""
    if selector == "latest":
        return table.version
    if selector == "served":
        state = serving_state(table)
        if state.served is None:
            waiting = f" (candidate v{state.candidate} has not passed its quality gate)" if state.candidate else ""
            raise NoServedVersion(
                f"table {table.name} has no served version yet{waiting}: run `ai-assets build`, "
                "`ai-assets promote --list` says why a candidate was not promoted, "
                "and `--version latest` reads the unpromoted table"
            )
        table.checkout(state.served)
        pin(table, state.served)
        return state.served
    require_version(table, selector)
    table.checkout(selector)
    pin(table, selector)
    return selector


def version_to_evaluate(state: ServingState, override_hold: bool = False) -> int | None:
    """The candidate; while a rollback holds it back, the served version (nothing would be promoted)."""
    if state.candidate is not None and state.is_held(state.candidate) and not override_hold:
        return state.served
    return state.candidate


class PromotionDecision(BaseModel):
    promote: bool
    reason: str


def promotion_decision(
    state: ServingState, candidate: int, gate_failures: Iterable[str], override_hold: bool = False
) -> PromotionDecision:
    """Whether the evaluated ``candidate`` becomes the served version, and why (not)."""
    failures = list(gate_failures)
    if failures:
        served = f"v{state.served} stays served" if state.served is not None else "nothing is served yet"
        return PromotionDecision(promote=False, reason=f"quality gate failed ({'; '.join(failures)}); {served}")
    if candidate == state.served:
        reason = f"v{candidate} is already served"
        if state.candidate is not None and state.candidate != state.served and state.is_held(state.candidate):
            reason += (
                f"; candidate v{state.candidate} is held back by a rollback "
                "(`ai-assets promote` evaluates it and serves it if it passes)"
            )
        return PromotionDecision(promote=False, reason=reason)
    if state.is_held(candidate) and not override_hold:
        return PromotionDecision(
            promote=False,
            reason=(
                f"held: a rollback moved the served version away from v{state.held}; "
                "`ai-assets promote` serves this candidate anyway"
            ),
        )
    if state.served is not None and candidate < state.served:
        return PromotionDecision(promote=False, reason=f"a newer version (v{state.served}) is already served")
    return PromotionDecision(promote=True, reason="passed every blocking check")


def cleanup_window(
    tagged_timestamps: Iterable[datetime],
    retention: timedelta = DEFAULT_VERSION_RETENTION,
    now: datetime | None = None,
    margin: timedelta = CLEANUP_MARGIN,
) -> timedelta:
    """The ``cleanup_older_than`` to give ``optimize()``: ``retention``, widened so every tagged
    version stays younger than the cutoff.

    LanceDB's prune refuses to run (an error, "tagged version(s) have been marked for cleanup")
    when a tagged version is older than its cutoff: with a version served for more than
    ``retention``, every compaction would fail. Widened, the prune keeps every tagged version
    and the versions after it, and deletes only the untagged ones older than all tags.
    """
    timestamps = list(tagged_timestamps)
    if not timestamps:
        return retention
    oldest = min(timestamps)
    now = now or (datetime.now(oldest.tzinfo) if oldest.tzinfo else datetime.now())
    return max(retention, now - oldest + margin)


def tagged_version_timestamps(table: Table) -> list[datetime]:
    """When each tagged version of ``table`` was written."""
    tagged = {tag["version"] for tag in table.tags.list().values()}
    return [entry["timestamp"] for entry in table.list_versions() if entry["version"] in tagged]
