"""A real HTTP server speaking the OpenAI protocol, for tests: embeddings and chat completions.

Embeddings are deterministic and meaningful enough to search with (a hashed bag of words, so
texts sharing words are close). Faults are scripted per embeddings request: ``429`` (with
``Retry-After``), ``500``, ``slow`` (replies after the client gave up), ``drop`` (closes the
connection without a reply), ``malformed`` (200 with a body that is not JSON),
``wrong_count`` (one vector missing), ``400`` (a permanent client error), ``401`` (a bad key,
echoed back in the message), ``hold`` (no reply until the test sets ``release``: a client
caught in the middle of embedding, for as long as the test needs; ``held`` tells it has begun).
Chat requests have their own script, ``chat_faults``: ``401`` and ``garbage`` (a reply that is
not JSON).
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np

from ai_assets.core.embedding.openai_embedder import cl100k

WORD = re.compile(r"\w+")


def bag_of_words_vector(text: str, dimensions: int) -> list[float]:
    vector = np.zeros(dimensions, dtype=np.float64)
    for word in WORD.findall(text.lower()) or [""]:
        seed = int.from_bytes(hashlib.sha256(word.encode()).digest()[:8], "big")
        vector += np.random.default_rng(seed).standard_normal(dimensions)
    return (vector / np.linalg.norm(vector)).astype(np.float32).tolist()


@dataclass
class Received:
    at: float  # time.monotonic() when the request arrived
    path: str
    inputs: list[str]
    authorization: str
    outcome: str  # "ok" or the fault served


class OpenAIServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, slow_seconds: float = 3.0, retry_after: str = "1") -> None:
        super().__init__(("127.0.0.1", 0), OpenAIHandler)
        self.faults: deque[str] = deque()
        self.chat_faults: deque[str] = deque()
        self.received: list[Received] = []
        self.chat_requests: list[dict] = []
        self.lock = threading.Lock()
        self.slow_seconds = slow_seconds
        self.retry_after = retry_after
        self.held = threading.Event()
        self.release = threading.Event()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"

    def embedding_requests(self, outcome: str | None = None) -> list[Received]:
        return [r for r in self.received if r.path.endswith("/embeddings") and outcome in (None, r.outcome)]

    def embedded_texts(self) -> list[str]:
        """Every text the server was paid to embed (successful replies only)."""
        return [text for request in self.embedding_requests("ok") for text in request.inputs]

    def authorizations(self) -> set[str]:
        return {request.authorization for request in self.received}


class OpenAIHandler(BaseHTTPRequestHandler):
    server: OpenAIServer
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:  # keep test output clean
        pass

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.path.endswith("/embeddings"):
            self._embeddings(body)
        elif self.path.endswith("/chat/completions"):
            self._chat(body)
        else:
            self._send(404, {"error": {"message": f"no route {self.path}", "type": "invalid_request_error"}})

    def _embeddings(self, body: dict) -> None:
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        with self.server.lock:
            fault = self.server.faults.popleft() if self.server.faults else "ok"
            self.server.received.append(
                Received(time.monotonic(), self.path, inputs, self.headers.get("Authorization", ""), fault)
            )
        if fault == "429":
            self._send(429, {"error": {"message": "Rate limit reached", "type": "rate_limit_exceeded"}},
                       {"Retry-After": self.server.retry_after})
        elif fault == "500":
            self._send(500, {"error": {"message": "The server had an error", "type": "server_error"}})
        elif fault == "400":
            self._send(400, {"error": {"message": "Invalid input", "type": "invalid_request_error"}})
        elif fault == "401":
            # The worst a server can do: echo the credential it was sent.
            message = f"Incorrect API key provided: {self.headers.get('Authorization', '')}"
            self._send(401, {"error": {"message": message, "type": "invalid_request_error"}})
        elif fault == "drop":
            self.close_connection = True
            self.connection.shutdown(2)
        elif fault == "malformed":
            self._send_raw(200, b'{"object": "list", "data": [', "application/json")
        else:
            if fault == "slow":
                time.sleep(self.server.slow_seconds)
            if fault == "hold":
                self.server.held.set()
                self.server.release.wait(timeout=300)
            dimensions = int(body.get("dimensions") or 1536)
            vectors = [bag_of_words_vector(text, dimensions) for text in inputs]
            if fault == "wrong_count":
                vectors = vectors[:-1]
            tokens = sum(len(tokens) for tokens in cl100k().encode_ordinary_batch(inputs))
            self._send(200, {
                "object": "list",
                "data": [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)],
                "model": body["model"],
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            })

    def _chat(self, body: dict) -> None:
        """Answers by citing the first context passage ([1]); judges 0.75 / 0.5. The first reply
        of a server is invalid JSON, to prove it is retried rather than fatal."""
        with self.server.lock:
            fault = self.server.chat_faults.popleft() if self.server.chat_faults else "ok"
            self.server.chat_requests.append(body)
            self.server.received.append(
                Received(time.monotonic(), self.path, [], self.headers.get("Authorization", ""), fault)
            )
            first = len(self.server.chat_requests) == 1
        if fault == "401":
            self._send(401, {"error": {"message": "Incorrect API key provided", "type": "invalid_request_error"}})
            return
        system, user = body["messages"][0]["content"], body["messages"][1]["content"]
        if first or fault == "garbage":
            content = "this is not JSON"
        elif "grade an answer" in system:
            content = json.dumps({"faithfulness": 0.75, "correctness": 0.5, "explanation": "partly"})
        else:  # cites the first numbered passage inline
            number = user.split("Context passages:\n[", 1)[1].split("]", 1)[0]
            content = json.dumps({"answer": f"See passage [{number}]."})
        self._send(200, {
            "id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": body["model"],
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
        })

    def _send(self, status: int, payload: dict, headers: dict[str, str] | None = None) -> None:
        self._send_raw(status, json.dumps(payload).encode(), "application/json", headers)

    def _send_raw(self, status: int, payload: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout it was told to have); nothing to send to


@contextmanager
def running_openai_server(**options: object) -> Iterator[OpenAIServer]:
    server = OpenAIServer(**options)  # type: ignore[arg-type]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.release.set()
        server.shutdown()
        server.server_close()
