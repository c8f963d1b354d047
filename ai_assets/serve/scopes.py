"""Who may read what: API tokens, stored only as SHA-256 hashes, each naming the knowledge bases
and sources it may read.

A request's token is hashed and compared with every configured hash (in constant time); the
token itself is never stored, logged or echoed. A caller's scope becomes part of every query's
``where``, so a passage, count or score from outside it is never computed, let alone returned.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Sequence
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ai_assets.core.retrieval.filters import source_condition
from ai_assets.settings import SettingsError

ALL = "*"
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class Forbidden(PermissionError):
    """The caller's token does not reach what the request names."""


class Caller(BaseModel):
    """An authenticated caller: a token's name and what it may read (``*``: everything)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    knowledge_bases: tuple[str, ...] = (ALL,)
    sources: tuple[str, ...] = (ALL,)

    def may_read(self, knowledge_base: str) -> bool:
        return ALL in self.knowledge_bases or knowledge_base in self.knowledge_bases

    def may_read_source(self, source: str) -> bool:
        return ALL in self.sources or source in self.sources

    def sources_to_read(self, requested: Sequence[str]) -> list[str]:
        """The sources a query reads: those requested (each must be in scope, else ``Forbidden``),
        or, when none are, every source of the scope (empty: no restriction)."""
        forbidden = [source for source in requested if not self.may_read_source(source)]
        if forbidden:
            raise Forbidden(
                f"token {self.name!r} may not read source(s) {', '.join(map(repr, forbidden))}; "
                f"it may read: {', '.join(self.sources)}"
            )
        if requested:
            return list(requested)
        return [] if ALL in self.sources else list(self.sources)

    def scope_condition(self) -> str | None:
        """The LanceDB condition every row this caller reads must meet (None: every row)."""
        return None if ALL in self.sources else source_condition(self.sources)


class TokenEntry(Caller):
    """One configured token: its caller and the SHA-256 (hex) of the token."""

    sha256: str

    def caller(self) -> Caller:
        return Caller(name=self.name, knowledge_bases=self.knowledge_bases, sources=self.sources)


LOCAL_CALLER = Caller(name="local")  # no token configured, listening on localhost only


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class Tokens:
    """The configured tokens; ``caller`` finds a token's scope by its hash."""

    def __init__(self, entries: Sequence[TokenEntry]) -> None:
        self.entries = list(entries)

    def __bool__(self) -> bool:
        return bool(self.entries)

    def caller(self, token: str) -> Caller | None:
        digest = token_hash(token)
        found = None
        for entry in self.entries:  # every hash compared: the time taken says nothing about which matched
            if hmac.compare_digest(digest, entry.sha256):
                found = entry.caller()
        return found


def load_tokens(setting: Sequence[dict], tokens_file: str | None) -> Tokens:
    """The tokens of AI_ASSETS_SERVE_TOKENS and of AI_ASSETS_SERVE_TOKENS_FILE (a JSON list of the same)."""
    entries = [_entry(raw, "AI_ASSETS_SERVE_TOKENS") for raw in setting]
    if tokens_file:
        try:
            listed = json.loads(Path(tokens_file).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as error:
            raise SettingsError(f"AI_ASSETS_SERVE_TOKENS_FILE={tokens_file}: cannot read a JSON list of tokens ({error})") from None
        if not isinstance(listed, list):
            raise SettingsError(f"AI_ASSETS_SERVE_TOKENS_FILE={tokens_file}: must hold a JSON list of tokens")
        entries += [_entry(raw, f"AI_ASSETS_SERVE_TOKENS_FILE={tokens_file}") for raw in listed]
    names = [entry.name for entry in entries]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise SettingsError(f"token name(s) {', '.join(repeated)} are configured twice: give each token its own name")
    return Tokens(entries)


def _entry(raw: object, where: str) -> TokenEntry:
    try:
        entry = TokenEntry.model_validate(raw)
    except ValidationError as error:
        problem = error.errors()[0]
        field = ".".join(str(part) for part in problem["loc"]) or "entry"
        raise SettingsError(
            f"{where}: token entry {field}: {problem['msg']}; an entry is "
            '{"name": "team-a", "sha256": "<sha256 hex of the token>", "knowledge_bases": ["docs"], "sources": ["dagster"]}'
        ) from None
    if not _SHA256.match(entry.sha256):
        raise SettingsError(
            f"{where}: token {entry.name!r}: sha256 must be 64 lower-case hex digits, the SHA-256 of the token "
            "(`printf %s TOKEN | sha256sum`), never the token itself"
        )
    return entry
