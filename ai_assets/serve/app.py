"""The HTTP server of `ai-assets serve`: the JSON API under /v1, health, metrics, the ask page at /
and MCP at /mcp, on FastAPI (a thin layer over the Starlette that dagster-webserver already brings:
request validation and the OpenAPI schema come from the same pydantic models).

Every /v1 and /mcp request carries ``Authorization: Bearer <token>`` unless the server runs
without tokens (localhost only, see ``serve_commands``). Errors are JSON,
``{"error": {"status": 422, "message": "k: must be at most 50 ..."}}``, the message saying what to change.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from importlib import resources
from typing import Annotated

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.exceptions import HTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from ai_assets.serve.library import Library, Snapshot
from ai_assets.serve.scopes import LOCAL_CALLER, Caller, Tokens
from ai_assets.serve.service import (
    ApiError,
    AskRequest,
    AskResponse,
    ChunkResponse,
    DocumentResponse,
    FeedbackRequest,
    FeedbackResponse,
    SearchRequest,
    SearchResponse,
    Service,
)

log = logging.getLogger("ai_assets.serve")
PROTECTED = ("/v1/", "/mcp")
FILTER_HELP = "filters: sources, doc_key_prefix, page_from, page_to (front-matter fields are not stored in the index)"


@dataclass(frozen=True)
class ServeOptions:
    """How the server guards its door (from the settings, see settings.py's serve_* fields)."""

    tokens: Tokens
    open_access: bool  # no token needed: only when listening on localhost without tokens
    max_body_bytes: int
    rate_limit_per_minute: int
    cors_origins: list[str]
    max_k: int


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"status": status, "message": message}}, status_code=status, headers=headers)


class RateLimiter:
    """A token bucket per caller: ``per_minute`` requests a minute, in bursts up to that many."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._buckets: dict[str, tuple[float, float]] = {}  # caller -> (tokens left, when counted)
        self._lock = threading.Lock()

    def wait_needed(self, caller: str) -> float:
        """0 when the request may go now (and counts it), else the seconds until it may."""
        now = time.monotonic()
        rate = self.per_minute / 60.0
        with self._lock:
            left, then = self._buckets.get(caller, (float(self.per_minute), now))
            left = min(float(self.per_minute), left + (now - then) * rate)
            if left < 1:
                self._buckets[caller] = (left, now)
                return (1 - left) / rate
            self._buckets[caller] = (left - 1, now)
            return 0.0


class Guard:
    """Pure ASGI, before routing: the body size limit, the token, the rate limit. The caller is
    left in ``scope["state"]`` for the routes and the MCP tools."""

    def __init__(self, app: ASGIApp, options: ServeOptions) -> None:
        self.app = app
        self.options = options
        self.limiter = RateLimiter(options.rate_limit_per_minute)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(PROTECTED) or scope["method"] == "OPTIONS":
            await self.app(scope, receive, send)
            return
        headers = {key.decode("latin-1").lower(): value.decode("latin-1") for key, value in scope["headers"]}
        caller_or_error = self.caller(headers.get("authorization"))
        if isinstance(caller_or_error, JSONResponse):
            await caller_or_error(scope, receive, send)
            return
        wait = self.limiter.wait_needed(caller_or_error.name)
        if wait:
            seconds = max(1, round(wait + 0.5))
            response = error_response(
                429, f"rate limit of {self.options.rate_limit_per_minute} requests a minute reached for "
                f"{caller_or_error.name!r}: retry in {seconds} s (AI_ASSETS_SERVE_RATE_LIMIT_PER_MINUTE)",
                headers={"Retry-After": str(seconds)},
            )
            await response(scope, receive, send)
            return
        scope.setdefault("state", {})["caller"] = caller_or_error
        declared = headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.options.max_body_bytes:
            await self.too_large()(scope, receive, send)
            return
        if scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        body = await self.read_body(receive)  # whole, up to the limit: a body sent in chunks has no length
        if body is None:
            await self.too_large()(scope, receive, send)
            return
        await self.app(scope, replayed(body, receive), send)

    def caller(self, authorization: str | None) -> Caller | JSONResponse:
        if not self.options.tokens:
            return LOCAL_CALLER if self.options.open_access else error_response(401, "this server has no tokens configured")
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return error_response(401, "send your API token as the header `Authorization: Bearer <token>`")
        caller = self.options.tokens.caller(token.strip())
        if caller is None:  # the token is never repeated back, nor logged
            return error_response(401, "the token is not one this server accepts: check it, or ask for one")
        return caller

    def too_large(self) -> JSONResponse:
        return error_response(
            413, f"the request body is larger than {self.options.max_body_bytes} bytes (AI_ASSETS_SERVE_MAX_BODY_BYTES): "
            "send a shorter question or query",
        )

    async def read_body(self, receive: Receive) -> bytes | None:
        """The request's body, or None as soon as it passes the limit."""
        parts, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client left: the app sees an empty body
                break
            parts.append(message.get("body", b""))
            size += len(parts[-1])
            if size > self.options.max_body_bytes:
                return None
            more = message.get("more_body", False)
        return b"".join(parts)


def replayed(body: bytes, receive: Receive) -> Receive:
    """``receive`` giving ``body`` first, then what the client sends next (a disconnect)."""
    sent = False

    async def replay():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


class Metrics:
    """Prometheus metrics of one app (its own registry, so several apps in one process never collide)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "ai_assets_http_requests", "HTTP requests by route, method and status", ["route", "method", "status"],
            registry=self.registry,
        )
        self.errors = Counter(
            "ai_assets_http_errors", "HTTP responses with status >= 500 by route", ["route"], registry=self.registry
        )
        self.latency = Histogram(
            "ai_assets_http_request_seconds", "HTTP request latency by route", ["route"], registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.query_batch = Histogram(
            "ai_assets_query_batch_size", "Queries encoded per model call (micro-batching)", registry=self.registry,
            buckets=(1, 2, 4, 8, 16, 32),
        )
        self.served_version = Gauge(
            "ai_assets_served_version", "The table version each knowledge base answers from", ["knowledge_base", "table"],
            registry=self.registry,
        )

    def switched(self, snapshot: Snapshot) -> None:
        self.served_version.labels(snapshot.knowledge_base, snapshot.table).set(snapshot.version)


def validation_message(error: RequestValidationError) -> str:
    """Pydantic's errors as one line per field: where, what is wrong, what is allowed."""
    parts = []
    for problem in error.errors():
        location = ".".join(str(part) for part in problem["loc"] if part != "body")
        kind = problem["type"]
        if kind == "json_invalid":
            parts.append(f"the body is not valid JSON ({problem.get('ctx', {}).get('error', 'parse error')}): send a JSON object")
        elif kind == "extra_forbidden":
            allowed = FILTER_HELP if location.startswith("filters.") else "see the request's schema at /openapi.json"
            parts.append(f"{location}: unknown field; {allowed}")
        elif kind == "missing":
            parts.append(f"{location or 'body'}: required")
        else:
            message = problem["msg"].replace("Input should be", "must be").replace("Value error, ", "")
            given = problem.get("input")
            shown = f" (got {json.dumps(given)[:80]})" if isinstance(given, (str, int, float)) else ""
            parts.append(f"{location}: {message}{shown}")
    return "; ".join(parts) or "the request is not valid"


def request_caller(request: Request) -> Caller:
    """The caller the guard let in."""
    return request.state.caller


Who = Annotated[Caller, Depends(request_caller)]


def client_of(request: Request) -> str:
    return "page" if request.headers.get("x-ai-assets-client") == "page" else "http"


def create_app(
    library: Library, options: ServeOptions, chat_model: Callable | None = None, with_mcp: bool = True
) -> FastAPI:
    """The server's app; the library's tags are followed while it runs (its lifespan)."""
    metrics = Metrics()
    service = Service(library, options.max_k, chat_model, on_batch=metrics.query_batch.observe)
    for kb in library.knowledge_bases.values():
        kb.on_switch = metrics.switched
    mcp = None
    if with_mcp:
        from ai_assets.serve.mcp_tools import mcp_server

        mcp = mcp_server(service, lambda context: caller_from_headers(options, context.headers or {}))

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        library.start()
        try:
            if mcp is not None:
                async with mcp.session_manager.run():
                    yield
            else:
                yield
        finally:
            library.stop()

    app = FastAPI(
        title="ai-assets",
        summary="Search, ask and judge the served version of each knowledge base.",
        version="1",
        lifespan=lifespan,
    )

    @app.exception_handler(ApiError)
    async def api_error(_: Request, error: ApiError) -> JSONResponse:
        return error_response(error.status, error.message)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, error: RequestValidationError) -> JSONResponse:
        return error_response(422, validation_message(error))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> JSONResponse:
        message = error.detail if error.status_code != 404 else f"no route {request.url.path}; the API is described at /docs"
        return error_response(error.status_code, str(message))

    @app.middleware("http")
    async def measure(request: Request, call_next):
        started = time.perf_counter()
        response = await call_next(request)
        route = getattr(request.scope.get("route"), "path", None) or ("/mcp" if request.url.path.startswith("/mcp") else "other")
        metrics.requests.labels(route, request.method, str(response.status_code)).inc()
        metrics.latency.labels(route).observe(time.perf_counter() - started)
        if response.status_code >= 500:
            metrics.errors.labels(route).inc()
        return response

    @app.post("/v1/search", response_model=SearchResponse, tags=["read"])
    def search(body: SearchRequest, who: Who, request: Request) -> SearchResponse:
        """The k best chunks of the query, within the caller's scope and the filters (applied inside the query)."""
        return service.search(who, body, client=client_of(request))

    @app.post("/v1/ask", response_model=AskResponse, tags=["read"])
    def ask(body: AskRequest, who: Who, request: Request) -> AskResponse:
        """An answer with numbered citations: extractive offline, generated with a chat model configured."""
        return service.ask(who, body, client=client_of(request))

    @app.get("/v1/chunks/{chunk_id}", response_model=ChunkResponse, tags=["read"])
    def chunk(chunk_id: str, who: Who, knowledge_base: str | None = None) -> ChunkResponse:
        """One chunk: its text, citation and lineage (as `ai-assets trace --chunk`)."""
        return service.chunk(who, chunk_id, knowledge_base)

    @app.get("/v1/documents/{doc_key:path}", response_model=DocumentResponse, tags=["read"])
    def document(doc_key: str, who: Who, knowledge_base: str | None = None) -> DocumentResponse:
        """A document's metadata and the links to its file (#page=N for a PDF's pages)."""
        return service.document(who, doc_key, knowledge_base)[0]

    @app.get("/v1/files/{doc_key:path}", tags=["read"], response_class=Response)
    def document_file(doc_key: str, who: Who, knowledge_base: str | None = None) -> Response:
        """The document's file, for a caller that may read its source."""
        content, media_type = service.document_file(who, doc_key, knowledge_base)
        return Response(content, media_type=media_type)

    @app.post("/v1/feedback", response_model=FeedbackResponse, tags=["feedback"])
    def feedback(body: FeedbackRequest, who: Who, request: Request) -> FeedbackResponse:
        """A judgement (good or bad) of an answer or of one of its citations, by its answer_id."""
        return service.feedback(who, body, client=client_of(request))

    @app.get("/healthz", tags=["operations"])
    def healthz() -> dict:
        """The process answers (liveness)."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["operations"])
    def readyz() -> JSONResponse:
        """Every knowledge base has its model loaded and a served version open (readiness)."""
        states = {
            kb.name: {
                "ready": kb.ready,
                "table": kb.snapshot().table if kb.ready else None,
                "index_version": kb.snapshot().version if kb.ready else None,
                "error": kb.error,
            }
            for kb in library.knowledge_bases.values()
        }
        ready = all(state["ready"] for state in states.values())
        return JSONResponse({"ready": ready, "knowledge_bases": states}, status_code=200 if ready else 503)

    @app.get("/metrics", tags=["operations"], response_class=Response)
    def prometheus() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page() -> HTMLResponse:
        return HTMLResponse(resources.files("ai_assets.serve").joinpath("page.html").read_text(encoding="utf-8"))

    if mcp is not None:
        # The MCP app's one route, /mcp, beside the API's (its session manager runs in the lifespan above).
        mcp_app = mcp.streamable_http_app(
            streamable_http_path="/mcp", stateless_http=True, json_response=True, host=options_host(options)
        )
        app.router.routes.extend(mcp_app.routes)
    if options.cors_origins:
        app.add_middleware(
            CORSMiddleware, allow_origins=options.cors_origins, allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type", "X-AI-Assets-Client"],
        )
    app.add_middleware(Guard, options=options)
    return app


def options_host(options: ServeOptions) -> str:
    """What the MCP transport's DNS-rebinding check allows: localhost names when open, else any host
    (tokens guard the door then)."""
    return "127.0.0.1" if options.open_access else "0.0.0.0"


def caller_from_headers(options: ServeOptions, headers) -> Caller:
    """The caller of an MCP tool call over HTTP: the guard let it in, so its token is valid (or none is needed)."""
    if not options.tokens:
        return LOCAL_CALLER
    _, _, token = (headers.get("authorization") or "").partition(" ")
    caller = options.tokens.caller(token.strip())
    if caller is None:
        from mcp.server.mcpserver.exceptions import ToolError

        raise ToolError("send your API token as the header `Authorization: Bearer <token>`")
    return caller
