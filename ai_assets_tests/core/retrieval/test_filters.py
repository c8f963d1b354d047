"""Search filters as a LanceDB condition, and the CLI's --where terms."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from ai_assets.core.retrieval.filters import SearchFilters, parse_where


@pytest.mark.parametrize(
    ("filters", "where"),
    [
        (SearchFilters(), None),
        (SearchFilters(sources=["a", "o'b"]), "source IN ('a', 'o''b')"),
        (SearchFilters(doc_key_prefix="a/notes/"), "starts_with(doc_key, 'a/notes/')"),
        (
            SearchFilters(sources=["a"], page_from=2, page_to=3),
            "(source IN ('a')) AND ((page_end >= 2 OR (page_end IS NULL AND page >= 2))) AND (page <= 3)",
        ),
    ],
)
def test_filters_become_one_quoted_condition(filters: SearchFilters, where: str | None) -> None:
    assert filters.where() == where


def test_where_terms_of_the_command_line() -> None:
    parsed = parse_where(["source=alpha", "source=beta", "doc_key_prefix=alpha/x", "pages=2-4"])
    assert parsed == SearchFilters(sources=["alpha", "beta"], doc_key_prefix="alpha/x", page_from=2, page_to=4)
    assert parse_where(["pages=3"]) == SearchFilters(page_from=3, page_to=3)
    with pytest.raises(ValueError, match="unknown field 'team'.*front-matter fields are not stored"):
        parse_where(["team=platform"])
    with pytest.raises(ValueError, match="write FIELD=VALUE"):
        parse_where(["source"])
    with pytest.raises(ValidationError, match="page_from \\(5\\) must not be after page_to \\(2\\)"):
        parse_where(["page_from=5", "page_to=2"])
    with pytest.raises(ValidationError, match="extra"):
        SearchFilters.model_validate({"team": "x"})
