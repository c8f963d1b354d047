"""The MCP server for agents (the official MCP Python SDK): tools to search, ask and fetch a passage
with its citation, over streamable HTTP at ``/mcp`` of `ai-assets serve` or over stdio (`ai-assets mcp`).

Each tool is the HTTP API's own operation (``Service``), for the caller its bearer token names,
so scopes are the same; over stdio the caller is the local user, who reads the data location
directly anyway. Every passage carries its document, section, page and chunk id.
"""

from __future__ import annotations

from collections.abc import Callable

import anyio
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import BaseModel, ValidationError

from ai_assets.core.retrieval.filters import SearchFilters
from ai_assets.core.retrieval.search import SearchMode
from ai_assets.serve.scopes import Caller
from ai_assets.serve.service import ApiError, AskRequest, AskResponse, ChunkResponse, SearchRequest, SearchResponse, Service

INSTRUCTIONS = (
    "Search and ask the knowledge base this server serves. Cite passages by their citation "
    "(document · section · page) and chunk_id; fetch_passage returns a passage's full text and lineage."
)


def mcp_server(service: Service, caller_of: Callable[[Context], Caller]) -> MCPServer:
    """The MCP server over ``service``; ``caller_of`` names a tool call's caller (from its token)."""
    server = MCPServer(name="ai-assets", instructions=INSTRUCTIONS, log_level="WARNING")

    async def call(context: Context, operation: Callable[[Caller], object]):
        caller = caller_of(context)
        try:
            # The operations block (model, LanceDB): off the event loop, as the HTTP routes run.
            return await anyio.to_thread.run_sync(lambda: operation(caller))
        except ApiError as error:
            raise ToolError(error.message) from None

    @server.tool()
    async def search(
        query: str,
        context: Context,
        k: int = 5,
        mode: SearchMode = "hybrid",
        sources: list[str] | None = None,
        doc_key_prefix: str | None = None,
        knowledge_base: str | None = None,
    ) -> SearchResponse:
        """Search the served index: the k best passages with their citation (document, section,
        page), chunk_id and score; filter by sources or a document key prefix."""
        request = _request(
            SearchRequest, query=query, k=k, mode=mode, knowledge_base=knowledge_base,
            filters=SearchFilters(sources=sources or [], doc_key_prefix=doc_key_prefix),
        )
        return await call(context, lambda caller: service.search(caller, request, client="mcp"))

    @server.tool()
    async def ask(
        question: str,
        context: Context,
        k: int = 5,
        sources: list[str] | None = None,
        knowledge_base: str | None = None,
    ) -> AskResponse:
        """Answer a question from the served index, citing numbered passages ([n]) with their
        document, section, page and chunk_id."""
        request = _request(
            AskRequest, question=question, k=k, knowledge_base=knowledge_base, filters=SearchFilters(sources=sources or [])
        )
        return await call(context, lambda caller: service.ask(caller, request, client="mcp"))

    @server.tool()
    async def fetch_passage(chunk_id: str, context: Context, knowledge_base: str | None = None) -> ChunkResponse:
        """One passage by chunk_id: its full text, citation, document, page and the run that indexed it."""
        return await call(context, lambda caller: service.chunk(caller, chunk_id, knowledge_base))

    return server


def _request(model: type[BaseModel], **values) -> BaseModel:
    """The HTTP API's request model of a tool call's arguments; what is wrong, as a tool error."""
    try:
        return model(**values)
    except ValidationError as error:
        raise ToolError("; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())) from None
