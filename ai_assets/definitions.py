"""The code location: `dagster dev`, the daemon and `dg` load ``defs``, the knowledge base that
``ai_assets/defs/`` declares as a ``KnowledgeBase`` component (ai_assets/components/)."""

from __future__ import annotations

from pathlib import Path

from ai_assets.components.knowledge_base import load_knowledge_bases
from ai_assets.graph import build_definitions
from ai_assets.naming import EMBED_JOB, INDEX_JOB, INGEST_JOB

__all__ = ["EMBED_JOB", "INDEX_JOB", "INGEST_JOB", "build_definitions", "defs"]


# Built as the module is imported, so a bad setting fails the code location at once.
defs = load_knowledge_bases(Path(__file__).parent)
