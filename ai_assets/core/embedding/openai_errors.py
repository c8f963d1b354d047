"""OpenAI client errors turned into this project's errors, with no secret and no chained reply.

A server's error message can quote the request, even the credential it was sent; the original
exception is therefore never chained (``from None``), and the message is redacted and cut short.
Transient failures (rate limits, 5xx, timeouts, dropped connections) come out as
``ServiceUnavailable``, after the client's own retries, so Dagster's retry policy may try again;
client errors as ``RequestRejected``, a ValueError, which fails the step once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar
from urllib.parse import urlsplit

T = TypeVar("T")


class ServiceUnavailable(RuntimeError):
    """The service kept failing after every retry (429, 5xx, timeout, connection)."""


class RequestRejected(ValueError):
    """A client error (bad key, bad model, bad input) that no retry can fix."""


class MalformedReply(ValueError):
    """The server answered 200 with something that is not the reply asked for."""


def redact(text: str, secret: str | None) -> str:
    return text.replace(secret, "***") if secret else text


def display_url(url: str) -> str:
    """A URL as it may be shown: without user, password, query or fragment (they can hold secrets)."""
    parts = urlsplit(str(url))
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"  # an IPv6 address
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}".rstrip("/")


def connection_cause(error: BaseException) -> str:
    """What the operating system said, from the innermost exception: 'connection refused',
    'name or service not known', 'timed out'."""
    innermost = error
    while innermost.__cause__ is not None or innermost.__context__ is not None:
        innermost = innermost.__cause__ or innermost.__context__  # type: ignore[assignment]
    if isinstance(innermost, OSError) and innermost.strerror:
        return innermost.strerror.lower()
    return str(innermost).lower() or type(innermost).__name__


def call_openai(request: Callable[[], T], model: str, api_key: str | None, base_url: str = "") -> T:
    """``request()``, with the client's exceptions translated as the module docstring says.

    ``base_url`` is the server the client talks to, named when it cannot be reached.
    """
    import openai

    try:
        return request()
    except openai.APIStatusError as error:
        message = redact(str(error.message), api_key)[:300]
        if error.status_code in (408, 409, 429) or error.status_code >= 500:
            raise ServiceUnavailable(f"{model}: still failing after retries ({error.status_code}): {message}") from None
        detail = "authentication failed: check OPENAI_API_KEY" if error.status_code in (401, 403) else message
        raise RequestRejected(f"{model} request rejected ({error.status_code}): {detail}") from None
    except openai.APIConnectionError as error:  # timeouts included
        url = display_url(base_url or str(error.request.url))
        cause = redact(connection_cause(error), api_key)[:200]
        if isinstance(error, openai.APITimeoutError):
            raise ServiceUnavailable(f"{model}: no reply from {url} ({cause}), after retries") from None
        raise ServiceUnavailable(f"{model}: cannot connect to {url}: {cause}, after retries") from None
    except (openai.APIResponseValidationError, ValueError) as error:
        raise MalformedReply(f"{model} reply is not a valid response: {redact(str(error), api_key)[:300]}") from None
