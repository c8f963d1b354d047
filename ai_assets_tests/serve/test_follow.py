"""The server follows the served tag without a restart: a promotion and a rollback are answered
within seconds while 16 clients search, with no failed request; a disconnecting client harms nothing."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import lancedb

from ai_assets.core.embedding.base import MINILM, Embedder
from ai_assets.core.store.tables import open_table
from ai_assets.core.store.versions import move_served
from ai_assets.serve.app import create_app
from ai_assets_tests.serve.conftest import bearer, copied, library, options, publish, running_server

NEW_WORD = "zeppelin"  # only in the document the second version adds


def test_promotion_and_rollback_are_followed_while_16_clients_search(
    served_data: Path, minilm: Embedder, tmp_path: Path
) -> None:
    data_dir = copied(served_data, tmp_path / "data")
    first = open_table(lancedb.connect(str(data_dir / "lancedb")), MINILM, create=False).tags.list()["served"]["version"]
    app = create_app(library(data_dir, minilm, refresh_seconds=0.2), options(), with_mcp=False)
    seen: list[tuple[int, int]] = []  # (status, index_version) of every request
    stop = threading.Event()

    def search_until_stopped(base: str) -> None:
        with httpx.Client(base_url=base, headers=bearer(), timeout=30) as http:
            while not stop.is_set():
                response = http.post("/v1/search", json={"query": f"{NEW_WORD} retries", "k": 3, "mode": "fts"})
                seen.append((response.status_code, response.json().get("index_version", -1)))

    def wait_for_version(base: str, version: int) -> float:
        started = time.monotonic()
        while time.monotonic() - started < 10:
            if httpx.get(f"{base}/readyz").json()["knowledge_bases"]["docs"]["index_version"] == version:
                return time.monotonic() - started
            time.sleep(0.05)
        raise AssertionError(f"the server did not follow the served tag to v{version} within 10 s")

    with running_server(app) as base:
        clients = [threading.Thread(target=search_until_stopped, args=(base,)) for _ in range(16)]
        for thread in clients:
            thread.start()
        try:
            (data_dir / "sources" / "alpha" / "airships.md").write_text(
                f"# Airships\n\nA {NEW_WORD} is a rigid airship; its retries are counted in flights.", encoding="utf-8"
            )
            second = publish(data_dir, minilm, sources=("alpha",), run_id="run-2")  # a promotion
            assert wait_for_version(base, second) < 3
            newer = httpx.post(f"{base}/v1/search", json={"query": NEW_WORD, "mode": "fts"}, headers=bearer()).json()
            assert newer["index_version"] == second and newer["hits"][0]["doc_key"] == "alpha/airships.md"
            move_served(open_table(lancedb.connect(str(data_dir / "lancedb")), MINILM, create=False), first)  # a rollback
            assert wait_for_version(base, first) < 3
            older = httpx.post(f"{base}/v1/search", json={"query": NEW_WORD, "mode": "fts"}, headers=bearer()).json()
            assert older["index_version"] == first and older["hits"] == []
        finally:
            stop.set()
            for thread in clients:
                thread.join(timeout=30)
    assert len(seen) > 16 and {status for status, _ in seen} == {200}, {status for status, _ in seen}
    assert {version for _, version in seen} == {first, second}  # never another version (an unpromoted one)


def test_a_client_that_disconnects_mid_answer_harms_nothing(client_server: str) -> None:
    host, port = urlsplit(client_server).hostname, urlsplit(client_server).port
    body = b'{"question": "who is paged after the third failure"}'
    for _ in range(3):
        with socket.create_connection((host, port)) as raw:
            raw.sendall(
                b"POST /v1/ask HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                + f"Authorization: {bearer()['Authorization']}\r\nContent-Length: {len(body)}\r\n\r\n".encode()
                + body
            )
        # closed before the answer came back
    answer = httpx.post(f"{client_server}/v1/ask", json={"question": "who is paged"}, headers=bearer(), timeout=30)
    assert answer.status_code == 200 and answer.json()["citations"]
