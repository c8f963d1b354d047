"""A chat model's replies, parsed into pydantic models (answers: core/answering; judgments: core/evaluation).

The model is asked for JSON; a reply that does not parse or does not validate is retried with
the validation error in the prompt, and after the last attempt raises InvalidReply, which the
caller counts instead of crashing.
"""

from __future__ import annotations

import json
import re
from typing import Protocol, TypeVar

from pydantic import BaseModel, ValidationError

from ai_assets.core.embedding.openai_errors import call_openai

T = TypeVar("T", bound=BaseModel)
_JSON_OBJECT = re.compile(r"\{.*\}", re.DOTALL)


class InvalidReply(ValueError):
    """The chat model did not return valid structured output after every attempt."""


class ChatModel(Protocol):
    def complete(self, system: str, user: str) -> str: ...


def structured_reply(chat: ChatModel, system: str, user: str, schema: type[T], attempts: int = 3) -> T:
    problem = ""
    for _ in range(attempts):
        prompt = user if not problem else f"{user}\n\nYour previous reply was invalid ({problem}). Reply with JSON only."
        reply = chat.complete(system, prompt)
        match = _JSON_OBJECT.search(reply or "")
        try:
            if match is None:
                raise ValueError("no JSON object in the reply")
            return schema.model_validate(json.loads(match.group(0)))
        except ValidationError as error:
            problem = "; ".join(
                f"{'.'.join(str(part) for part in item['loc']) or 'reply'}: {item['msg']}" for item in error.errors()
            )[:300]
        except ValueError as error:
            problem = str(error)[:300]
    raise InvalidReply(f"no valid {schema.__name__} after {attempts} attempts: {problem}")


class OpenAIChatModel:
    """Any OpenAI-compatible chat endpoint; the API key stays inside the client object."""

    def __init__(
        self, model: str, api_key: str | None, base_url: str | None, timeout: float = 60.0, max_retries: int = 5
    ) -> None:
        from openai import OpenAI

        self.model = model
        self._api_key = api_key
        # The client retries 429, 5xx, timeouts and dropped connections with back-off and jitter.
        self._client = OpenAI(
            api_key=api_key or "unused", base_url=base_url, timeout=timeout, max_retries=max_retries
        )

    def __repr__(self) -> str:
        return f"OpenAIChatModel(model={self.model!r})"

    def complete(self, system: str, user: str) -> str:
        response = call_openai(
            lambda: self._client.chat.completions.create(
                model=self.model,
                messages=[{"role": "system", "content": system}, {"role": "user", "content": user}],
                temperature=0,
                response_format={"type": "json_object"},
            ),
            self.model,
            self._api_key,
            str(self._client.base_url),
        )
        return response.choices[0].message.content or ""
