"""The last good version of a document that became unreadable.

A document that was indexed and then cannot be read (a truncated or corrupt new copy, a changed
permission) keeps its last good chunks in the index, marked *stale* with the reason and since
when, rather than leaving the knowledge base because a bad copy replaced a good one. It stays
stale until its file is fixed (then it is indexed again) or deleted (then its rows go).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ai_assets.core.documents.model import QuarantinedItem, StaleDocument


def stale_documents(
    quarantined: Sequence[QuarantinedItem],
    indexed: Mapping[str, str],
    current_keys: set[str],
    previous: Sequence[StaleDocument],
    now: str,
) -> list[StaleDocument]:
    """The indexed documents (``indexed``: key to path) whose whole file is quarantined now and
    that no readable file provides; ``since`` carried over from ``previous`` while they stay stale."""
    unreadable = {item.path: item.reason for item in quarantined if item.line is None}
    earlier = {document.doc_key: document.since for document in previous}
    return [
        StaleDocument(doc_key=key, path=path, reason=unreadable[path], since=earlier.get(key, now))
        for key, path in sorted(indexed.items())
        if path in unreadable and key not in current_keys
    ]
