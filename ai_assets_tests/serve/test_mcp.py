"""The MCP server with the official SDK's own client: over streamable HTTP at /mcp of the server
(with the API's tokens and scopes) and over stdio (`ai-assets mcp`)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import anyio
import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from ai_assets_tests.serve.conftest import ADMIN_TOKEN, BETA_TOKEN

REPOSITORY = Path(__file__).resolve().parents[2]
QUESTION = "who is paged after the third failure"


def http_client(base: str, token: str) -> Client:
    headers = {"Authorization": f"Bearer {token}"}
    return Client(streamable_http_client(f"{base}/mcp", http_client=httpx2.AsyncClient(headers=headers, timeout=60)))


def test_mcp_over_http_lists_the_tools_and_returns_cited_passages_within_scope(client_server: str) -> None:
    async def session() -> None:
        async with http_client(client_server, ADMIN_TOKEN) as client:
            tools = {tool.name: tool for tool in (await client.list_tools()).tools}
            assert set(tools) == {"search", "ask", "fetch_passage"}
            found = await client.call_tool("search", {"query": QUESTION, "k": 2})
            assert not found.is_error, found.content
            top = found.structured_content["hits"][0]
            assert (top["doc_key"], top["section"], top["page"]) == ("handbook/ops.pdf", "Operations > Escalation", 2)
            assert top["citation"] == "Operations · Escalation · p. 2" and top["chunk_id"]
            passage = await client.call_tool("fetch_passage", {"chunk_id": top["chunk_id"]})
            assert passage.structured_content["text"].count("on-call engineer") == 1
            asked = await client.call_tool("ask", {"question": QUESTION})
            assert asked.structured_content["citations"][0]["page"] == 2
            assert "[1]" in asked.structured_content["answer"]
            empty = await client.call_tool("search", {"query": "  ", "k": 2})
            assert empty.is_error and "the query is empty" in empty.content[0].text
        async with http_client(client_server, BETA_TOKEN) as scoped:
            forbidden = await scoped.call_tool("search", {"query": QUESTION, "sources": ["handbook"]})
            assert forbidden.is_error and "may not read source(s) 'handbook'" in forbidden.content[0].text
            within = await scoped.call_tool("search", {"query": QUESTION, "k": 5})
            assert {hit["source"] for hit in within.structured_content["hits"]} == {"beta"}
            hidden = await scoped.call_tool("fetch_passage", {"chunk_id": top["chunk_id"]})
            assert hidden.is_error and "no chunk" in hidden.content[0].text
        with pytest.raises(Exception):  # noqa: B017 - the SDK wraps the refusal in its own errors
            async with http_client(client_server, "wrong-token") as stranger:
                await stranger.list_tools()

    anyio.run(session)
    # The refusal itself: the guard answers 401 before MCP reads the request, naming no token.
    refused = httpx.post(f"{client_server}/mcp", json={}, headers={"Authorization": "Bearer wrong-token"})
    assert refused.status_code == 401 and "wrong-token" not in refused.text


# `ai-assets mcp`, reporting at exit which of the project's run modules it loaded (none may be:
# the server is a reader, DESIGN.md): the asset graph, builds, run history.
RUN_MODULES = (
    "ai_assets.graph", "ai_assets.build", "ai_assets.assets", "ai_assets.definitions", "ai_assets.automation",
    "ai_assets.history", "ai_assets.run_recovery", "ai_assets.build_process",
)
MCP_COMMAND = f"""
import atexit, os, sys
atexit.register(lambda: open(os.environ["LOADED_RUN_MODULES"], "w").write(
    " ".join(m for m in sys.modules if m.startswith({RUN_MODULES!r}))))
from ai_assets.cli import main
sys.exit(main(["mcp"]))
"""


def test_mcp_over_stdio_from_the_command(served_data: Path, tmp_path: Path) -> None:
    loaded = tmp_path / "loaded_run_modules"
    env = {key: value for key, value in os.environ.items() if not key.startswith(("AI_ASSETS_", "OPENAI_"))}
    env.update(
        AI_ASSETS_DATA_DIR=str(served_data), AI_ASSETS_LOCAL_PRECISION="fp32-onnx", PYTHONPATH=str(REPOSITORY),
        LOADED_RUN_MODULES=str(loaded),
    )
    command = StdioServerParameters(command=sys.executable, args=["-c", MCP_COMMAND], env=env, cwd=str(REPOSITORY))

    async def session() -> None:
        async with Client(command, read_timeout_seconds=120) as client:
            assert {tool.name for tool in (await client.list_tools()).tools} == {"search", "ask", "fetch_passage"}
            found = await client.call_tool("search", {"query": QUESTION, "k": 1})
            hit = found.structured_content["hits"][0]
            assert hit["doc_key"] == "handbook/ops.pdf" and hit["page"] == 2 and found.structured_content["index_version"] > 0

    anyio.run(session)
    assert loaded.read_text() == ""  # written at a clean exit, when the client closed stdin
