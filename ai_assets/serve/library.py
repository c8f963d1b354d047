"""The knowledge bases a server reads, each at its served version, following the ``served`` tag.

Each knowledge base's table is opened once per served version: a ``Searcher`` pinned to it. A
background thread re-reads the tag every ``AI_ASSETS_SERVE_REFRESH_SECONDS``; when it moved
(a promotion or a rollback) it opens the new version and swaps the searcher in one assignment.
A request takes the searcher once and keeps it to the end, so a switch never fails a request in
flight (the version it reads keeps its tag, hence its files, see versions.py), and readers
never see a version that was not served. When the data location cannot be read, the last
version opened keeps answering and ``/readyz`` says what failed; a knowledge base never opened
answers 503.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ai_assets.core.embedding.base import Embedder
from ai_assets.core.feedback import FileFeedbackStore
from ai_assets.core.retrieval.search import Searcher
from ai_assets.core.store.tables import open_table
from ai_assets.core.store.versions import NoServedVersion, checkout, serving_state
from ai_assets.settings import Settings

log = logging.getLogger("ai_assets.serve")


class NotReady(RuntimeError):
    """A knowledge base has no served version open (yet): the message says why."""


@dataclass(frozen=True)
class Snapshot:
    """What one request reads: a searcher pinned to one served version."""

    knowledge_base: str
    searcher: Searcher
    version: int

    @property
    def table(self) -> str:
        return self.searcher.table.name

    @property
    def embedder(self) -> str:
        return self.searcher.embedder.spec.name


class ServedKnowledgeBase:
    """One knowledge base: its settings, its embedder, and the searcher of its served version."""

    def __init__(self, name: str, settings: Settings, embedder: Embedder) -> None:
        self.name = name
        self.settings = settings
        self.embedder = embedder
        self.feedback = FileFeedbackStore(settings.feedback_location)
        self._snapshot: Snapshot | None = None
        self.error: str | None = "not opened yet"
        self.on_switch: Callable[[Snapshot], None] = lambda snapshot: None

    def snapshot(self) -> Snapshot:
        snapshot = self._snapshot
        if snapshot is None:
            raise NotReady(f"knowledge base {self.name!r} has no served version open: {self.error}")
        return snapshot

    @property
    def ready(self) -> bool:
        return self._snapshot is not None

    def refresh(self) -> None:
        """Open the served version when the tag moved; on failure keep the one open and note why."""
        try:
            self._follow_tag()
            self.error = None
        except NoServedVersion as error:
            self.error = str(error)
        except Exception as error:  # the data location unreachable, a table not built: reported by /readyz
            self.error = f"cannot read the served version at {self.settings.resolved_lancedb_uri}: {error}"
            log.warning("%s: %s", self.name, self.error)

    def _follow_tag(self) -> None:
        import lancedb

        database = lancedb.connect(
            self.settings.resolved_lancedb_uri, storage_options=self.settings.resolved_lancedb_storage_options or None
        )
        latest = open_table(database, self.embedder.spec, create=False)
        served = serving_state(latest).served
        current = self._snapshot
        if current is not None and current.version == served:
            return
        version = checkout(latest, "served")  # raises NoServedVersion when nothing is served
        snapshot = Snapshot(self.name, Searcher(latest, self.embedder), version)
        self._snapshot = snapshot  # one assignment: a request sees the old searcher or the new one
        self.on_switch(snapshot)
        if current is not None:
            log.info("%s: now serving %s v%d (was v%d)", self.name, snapshot.table, version, current.version)


class Library:
    """Every served knowledge base, by name; the first is the default one."""

    def __init__(self, knowledge_bases: Sequence[ServedKnowledgeBase], refresh_seconds: float) -> None:
        if not knowledge_bases:
            raise ValueError("no knowledge base to serve: declare one under ai_assets/defs/ (docs/components.md)")
        self.knowledge_bases = {kb.name: kb for kb in knowledge_bases}
        self.default = knowledge_bases[0].name
        self.refresh_seconds = refresh_seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def get(self, name: str | None) -> ServedKnowledgeBase:
        return self.knowledge_bases[name or self.default]

    def refresh(self) -> None:
        for kb in self.knowledge_bases.values():
            kb.refresh()

    def start(self) -> None:
        """Open every served version now, then follow the tags on a background thread."""
        self.refresh()
        self._stop.clear()
        self._thread = threading.Thread(target=self._follow, name="ai-assets-served-tags", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.refresh_seconds + 30)

    def _follow(self) -> None:
        while not self._stop.wait(self.refresh_seconds):
            self.refresh()


def open_library(knowledge_bases: Sequence[tuple[str, Settings]], refresh_seconds: float) -> Library:
    """The knowledge bases with their first enabled embedder each (as `ai-assets search`), a model
    loaded once per embedder however many knowledge bases use it."""
    from ai_assets.cli.common import embedders

    models: dict[tuple, Embedder] = {}
    served = []
    for name, settings in knowledge_bases:
        embedder_name = settings.embedders[0]
        key = (embedder_name, settings.local_precision, settings.embed_batch_size, settings.openai_base_url)
        if key not in models:
            models[key] = embedders(settings).get(embedder_name)
            models[key].embed_query("warm up")  # loaded now: readiness means the first request is not the one to wait
        served.append(ServedKnowledgeBase(name, settings, models[key]))
    return Library(served, refresh_seconds)
