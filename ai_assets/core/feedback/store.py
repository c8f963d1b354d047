"""The feedback store: one small interface, one implementation on any location fsspec serves.

Why one file per record: several processes (the CLI on a laptop, server replicas, a Dagster run)
write the same store, and object storage has no append and no lock. A record named by its own
random id never collides with another writer's, is written whole (a put is atomic on S3, and a
local write goes through a temporary name and a rename), and listing the folder reads them all.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Literal, Protocol, TypeVar

from pydantic import BaseModel, Field, ValidationError

from ai_assets.core.hashing import sha256_hex
from ai_assets.core.storage import filesystem, is_remote, join

ANSWER_ID = re.compile(r"^a_[0-9a-f]{16}$")
ANSWERS = "answers"
JUDGEMENTS = "judgements"
_Record = TypeVar("_Record", bound=BaseModel)


class FeedbackStoreUnavailable(OSError):
    """The store cannot be read or written; the message names the location and what failed."""


class UnknownAnswer(KeyError):
    """A judgement names an answer id that the store never recorded."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


def new_answer_id() -> str:
    return f"a_{secrets.token_hex(8)}"


def _now() -> datetime:
    return datetime.now(UTC)


class CitedPassage(BaseModel):
    number: int  # the [n] the answer cites it by, or the rank of a search hit
    chunk_id: str
    source: str
    doc_key: str
    section: str | None = None
    page: int | None = None


class AnsweredQuery(BaseModel):
    """What a person asked and what they were shown, recorded so that a judgement can refer to it."""

    answer_id: str
    knowledge_base: str
    kind: Literal["ask", "search"]
    question: str
    answer: str = ""  # empty for a search
    passages: list[CitedPassage]
    embedder: str
    table: str
    index_version: int
    mode: str
    client: str = "cli"  # cli, http, mcp, page
    created_at: datetime = Field(default_factory=_now)


class Judgement(BaseModel):
    answer_id: str
    verdict: Literal["good", "bad"]
    citation: int | None = None  # the [n] judged; None judges the answer as a whole
    note: str = ""
    client: str = "cli"
    created_at: datetime = Field(default_factory=_now)


class FeedbackStore(Protocol):
    """What the CLI, the server and the eval-set asset need of a feedback store, and no more."""

    def record_answer(self, answer: AnsweredQuery) -> None: ...

    def record_judgement(self, judgement: Judgement) -> AnsweredQuery:
        """Store a judgement of a recorded answer (``UnknownAnswer`` if there is none) and return
        the answer it judges; a citation number the answer does not have is a ``ValueError``."""
        ...

    def answer(self, answer_id: str) -> AnsweredQuery: ...

    def answers(self) -> Iterator[AnsweredQuery]: ...

    def judgements(self) -> Iterator[Judgement]: ...


class FileFeedbackStore:
    """The store under ``location`` (a local folder or ``s3://bucket/prefix``):
    ``answers/<answer id>.json`` and ``judgements/<answer id>-<random>.json``."""

    def __init__(self, location: str) -> None:
        self.location = location

    def record_answer(self, answer: AnsweredQuery) -> None:
        self._write(ANSWERS, f"{answer.answer_id}.json", answer.model_dump_json())

    def record_judgement(self, judgement: Judgement) -> AnsweredQuery:
        answer = self.answer(judgement.answer_id)
        numbers = sorted(passage.number for passage in answer.passages)
        if judgement.citation is not None and judgement.citation not in numbers:
            shown = ", ".join(str(number) for number in numbers) or "none"
            raise ValueError(
                f"answer {judgement.answer_id} has no citation [{judgement.citation}] (its citations: {shown})"
            )
        self._write(JUDGEMENTS, f"{judgement.answer_id}-{secrets.token_hex(6)}.json", judgement.model_dump_json())
        return answer

    def answer(self, answer_id: str) -> AnsweredQuery:
        if not ANSWER_ID.match(answer_id):
            raise UnknownAnswer(f"{answer_id!r} is not an answer id (they look like a_0123456789abcdef)")
        fs, path = filesystem(join(self.location, ANSWERS, f"{answer_id}.json"))
        try:
            with self._errors("read"):
                with fs.open(path, "rb") as file:
                    return AnsweredQuery.model_validate_json(file.read())
        except FileNotFoundError:
            raise UnknownAnswer(
                f"no answer {answer_id} in the feedback store at {self.location}: "
                "use the id that `ai-assets ask` or `search` printed"
            ) from None

    def answers(self) -> Iterator[AnsweredQuery]:
        yield from self._records(ANSWERS, AnsweredQuery)

    def judgements(self) -> Iterator[Judgement]:
        yield from self._records(JUDGEMENTS, Judgement)

    def judgements_fingerprint(self) -> str:
        """Changes whenever a judgement is recorded, from one listing: records are never rewritten,
        so their names say it all (answers alone change no eval set)."""
        fs, folder = filesystem(join(self.location, JUDGEMENTS))
        with self._errors("read"):
            try:
                names = sorted(name.rsplit("/", 1)[-1] for name in fs.ls(folder, detail=False) if name.endswith(".json"))
            except FileNotFoundError:
                names = []
        return sha256_hex(*names)

    def _records(self, kind: str, model: type[_Record]) -> Iterator[_Record]:
        fs, folder = filesystem(join(self.location, kind))
        with self._errors("read"):
            try:
                names = sorted(fs.ls(folder, detail=False))
            except FileNotFoundError:
                return
            for name in names:
                if not name.endswith(".json"):
                    continue  # a temporary file of a write in progress
                with fs.open(name, "rb") as file:
                    content = file.read()
                try:
                    yield model.model_validate_json(content)
                except ValidationError:
                    continue  # a record some other version wrote, or a torn write: never fatal to a reader

    def _write(self, kind: str, name: str, content: str) -> None:
        target = join(self.location, kind, name)
        fs, path = filesystem(target)
        with self._errors("write"):
            if is_remote(target):
                fs.pipe_file(path, content.encode("utf-8"))
                return
            os.makedirs(os.path.dirname(path), exist_ok=True)
            temporary = f"{path}.{secrets.token_hex(4)}.tmp"
            with open(temporary, "w", encoding="utf-8") as file:
                file.write(content)
            os.replace(temporary, path)

    @contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        """A failure to reach or write the store names the location; a missing file stays
        ``FileNotFoundError``, since what absence means is the caller's to say."""
        try:
            yield
        except FileNotFoundError:
            raise
        except OSError as error:
            raise FeedbackStoreUnavailable(
                f"cannot {action} the feedback store at {self.location}: {error}; "
                "check that the data location exists and is writable (AI_ASSETS_DATA_DIR)"
            ) from None
