"""Search filters: which chunks a query may return, as a LanceDB ``where`` applied inside the query.

A vector query filters before it ranks (a prefilter) and so does the full-text query, so a
filtered search still returns ``k`` chunks when ``k`` match. Filters are fields, never SQL
from the caller: each value is quoted here. The table stores no front-matter fields (team,
product, lang...: see tables.chunk_schema), so they cannot be filtered on yet; asking for one is
an error that lists the fields there are.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ai_assets.core.store.tables import sql_literal

FILTER_FIELDS = ("sources", "doc_key_prefix", "page_from", "page_to")


class SearchFilters(BaseModel):
    """Chunks of these sources, of documents whose key starts with a prefix, overlapping a page range."""

    model_config = ConfigDict(extra="forbid")

    sources: list[str] = Field(default_factory=list, description="Only chunks of these sources (any of them).")
    doc_key_prefix: str | None = Field(
        default=None, min_length=1, description="Only documents whose key starts with this, e.g. 'dagster/guides/'."
    )
    page_from: int | None = Field(default=None, ge=1, description="Only chunks reaching this page or later.")
    page_to: int | None = Field(default=None, ge=1, description="Only chunks starting on this page or earlier.")

    @model_validator(mode="after")
    def _ordered_pages(self) -> SearchFilters:
        if self.page_from is not None and self.page_to is not None and self.page_from > self.page_to:
            raise ValueError(f"page_from ({self.page_from}) must not be after page_to ({self.page_to})")
        return self

    def where(self) -> str | None:
        """The filter as a LanceDB SQL condition, or None when it filters nothing."""
        return all_of(
            source_condition(self.sources),
            f"starts_with(doc_key, {sql_literal(self.doc_key_prefix)})" if self.doc_key_prefix else None,
            # A chunk spans pages page..page_end (page_end null: one page); a chunk without pages
            # (a Markdown file) is outside any page range.
            f"(page_end >= {self.page_from} OR (page_end IS NULL AND page >= {self.page_from}))"
            if self.page_from is not None else None,
            f"page <= {self.page_to}" if self.page_to is not None else None,
        )


def source_condition(sources: Sequence[str] | None) -> str | None:
    if not sources:
        return None
    return f"source IN ({', '.join(sql_literal(source) for source in sources)})"


def all_of(*conditions: str | None) -> str | None:
    """The conditions joined by AND (each parenthesized), None when there are none."""
    present = [condition for condition in conditions if condition]
    if not present:
        return None
    return present[0] if len(present) == 1 else " AND ".join(f"({condition})" for condition in present)


def parse_where(terms: Sequence[str]) -> SearchFilters:
    """Filters from the command line's ``--where FIELD=VALUE`` terms: ``source=NAME`` (repeatable),
    ``doc_key_prefix=PREFIX``, ``page_from=N``, ``page_to=N``, ``pages=N-M``."""
    values: dict[str, object] = {"sources": []}
    for term in terms:
        field, separator, value = term.partition("=")
        field = field.strip()
        if not separator or not value.strip():
            raise ValueError(f"--where {term!r}: write FIELD=VALUE, e.g. source=dagster or pages=2-5")
        value = value.strip()
        if field == "source":
            values["sources"].append(value)  # type: ignore[union-attr]
        elif field == "pages":
            first, _, last = value.partition("-")
            values["page_from"], values["page_to"] = first, last or first
        elif field in FILTER_FIELDS[1:]:
            values[field] = value
        else:
            raise ValueError(
                f"--where {term!r}: unknown field {field!r}; filter on source, doc_key_prefix, page_from, page_to "
                "or pages (front-matter fields are not stored in the index)"
            )
    return SearchFilters.model_validate(values)
