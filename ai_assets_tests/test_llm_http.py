"""answer_evaluation through a real HTTP server speaking the OpenAI chat-completions protocol."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import dagster as dg
import pytest

from ai_assets.build import run_build
from ai_assets.definitions import build_definitions
from ai_assets.history import latest_metadata
from ai_assets.settings import Settings

SENTINEL_KEY = "sk-test-SENTINEL-4f1c9a"


class ChatServer(ThreadingHTTPServer):
    """Answers with the first context passage and cites it; judges everything 0.75 / 0.5.

    The first reply is invalid JSON, to prove it is retried rather than fatal.
    """

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), ChatHandler)
        self.requests: list[dict] = []
        self.authorizations: set[str] = set()
        self.lock = threading.Lock()


class ChatHandler(BaseHTTPRequestHandler):
    server: ChatServer

    def log_message(self, *args: object) -> None:  # keep test output clean
        pass

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with self.server.lock:
            self.server.requests.append(body)
            self.server.authorizations.add(self.headers.get("Authorization", ""))
            first = len(self.server.requests) == 1
        system, user = body["messages"][0]["content"], body["messages"][1]["content"]
        if first:
            content = "this is not JSON"
        elif "grade an answer" in system:
            content = json.dumps({"faithfulness": 0.75, "correctness": 0.5, "explanation": "partly"})
        else:
            chunk_id = user.split("Context passages:\n[", 1)[1].split("]", 1)[0]
            content = json.dumps({"answer": f"See passage {chunk_id}.", "cited_chunk_ids": [chunk_id]})
        reply = {
            "id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": body["model"],
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
        }
        payload = json.dumps(reply).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


@pytest.fixture
def chat_server() -> Iterator[ChatServer]:
    server = ChatServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def test_generated_answers_and_judge_through_http_without_leaking_the_key(
    chat_server: ChatServer, data_dir: Path, instance: dg.DagsterInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", SENTINEL_KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{chat_server.server_address[1]}/v1")
    settings = Settings(data_dir=data_dir)
    assert settings.openai_configured
    report = run_build(build_definitions(settings), instance, settings.embedders, echo=lambda _: None)
    assert report.ok, report.failures

    metadata = latest_metadata(instance, "answer_evaluation", "minilm")
    assert metadata["questions"] == 3 and metadata["invalid_llm_replies"] == 0
    assert metadata["tiny_qa/faithfulness"] == pytest.approx(0.75)
    assert metadata["tiny_qa/correctness"] == pytest.approx(0.5)
    assert "See passage" in metadata["per_question"]
    # 3 questions x (answer + judge) + the one invalid reply that was retried.
    assert len(chat_server.requests) == 7
    assert chat_server.authorizations == {f"Bearer {SENTINEL_KEY}"}
    assert "previous reply was invalid" in chat_server.requests[1]["messages"][1]["content"]

    # The key reached the server, and nothing Dagster stored or wrote.
    stored = [
        str(entry.event_log_entry)
        for run in instance.get_runs()
        for entry in instance.get_records_for_run(run.run_id).records
    ]
    assert stored and not any(SENTINEL_KEY in text for text in stored)
    for path in [*data_dir.rglob("*"), *Path(instance.root_directory).rglob("*")]:
        if path.is_file():
            assert SENTINEL_KEY.encode() not in path.read_bytes(), path
