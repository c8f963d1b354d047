"""Dagster Components of this project (the registry `dg` lists: `[tool.dg.project] registry_modules`)."""

from ai_assets.components.knowledge_base import KnowledgeBase

__all__ = ["KnowledgeBase"]
