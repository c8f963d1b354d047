"""Answers and judgments from a chat model, parsed into pydantic models.

The model is asked for JSON; a reply that does not parse or does not validate is retried with
the validation error in the prompt, and after the last attempt raises InvalidReply, which the
caller counts instead of crashing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Protocol, TypeVar

from pydantic import BaseModel, Field, ValidationError

from ai_assets.core.embedding.openai_errors import call_openai
from ai_assets.core.retrieval.search import SearchHit

T = TypeVar("T", bound=BaseModel)
_JSON_OBJECT = re.compile(r"\{.*\}", re.DOTALL)


class InvalidReply(ValueError):
    """The chat model did not return valid structured output after every attempt."""


class ChatModel(Protocol):
    def complete(self, system: str, user: str) -> str: ...


class GeneratedAnswer(BaseModel):
    answer: str
    cited_chunk_ids: list[str] = Field(default_factory=list)


class JudgeVerdict(BaseModel):
    faithfulness: float = Field(ge=0.0, le=1.0, description="Is every claim supported by the context?")
    correctness: float = Field(ge=0.0, le=1.0, description="Does it agree with the reference answer?")
    explanation: str = ""


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


def context_block(hits: Sequence[SearchHit]) -> str:
    return "\n\n".join(f"[{hit.chunk_id}] ({hit.doc_key})\n{hit.text}" for hit in hits)


ANSWER_SYSTEM = (
    "You answer questions about software documentation using only the context passages given. "
    'Reply with a JSON object {"answer": string, "cited_chunk_ids": [ids of the passages you used]}. '
    "If the context does not contain the answer, say so in the answer and cite nothing."
)
JUDGE_SYSTEM = (
    "You grade an answer to a question. Reply with a JSON object "
    '{"faithfulness": number 0..1, "correctness": number 0..1, "explanation": string}. '
    "faithfulness: the share of the answer's claims supported by the context passages. "
    "correctness: how well the answer agrees with the reference answer (1 = same facts)."
)


def generate_answer(chat: ChatModel, question: str, hits: Sequence[SearchHit]) -> GeneratedAnswer:
    answer = structured_reply(
        chat, ANSWER_SYSTEM, f"Question: {question}\n\nContext passages:\n{context_block(hits)}", GeneratedAnswer
    )
    known = {hit.chunk_id for hit in hits}
    # A citation of a passage that was not given is not evidence: keep only real ones.
    return answer.model_copy(update={"cited_chunk_ids": [c for c in answer.cited_chunk_ids if c in known]})


def judge_answer(
    chat: ChatModel, question: str, reference: str, answer: str, hits: Sequence[SearchHit]
) -> JudgeVerdict:
    user = (
        f"Question: {question}\n\nReference answer: {reference}\n\nAnswer to grade: {answer}\n\n"
        f"Context passages:\n{context_block(hits)}"
    )
    return structured_reply(chat, JUDGE_SYSTEM, user, JudgeVerdict)


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
