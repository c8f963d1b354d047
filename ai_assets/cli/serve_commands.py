"""`ai-assets serve` (the HTTP API, the ask page and MCP at /mcp) and `ai-assets mcp` (MCP over
stdio, for desktop agent clients): readers of the served version of each knowledge base."""

from __future__ import annotations

import argparse
import ipaddress
import logging
import sys

from ai_assets.cli.common import CliError
from ai_assets.settings import Settings

log = logging.getLogger("ai_assets.serve")


def register(commands: argparse._SubParsersAction) -> None:
    serve = commands.add_parser(
        "serve", help="serve the served index over HTTP: /v1 API, the ask page at /, MCP at /mcp, /metrics"
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1; others need tokens)")
    serve.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    serve.set_defaults(handler=serve_command)

    mcp = commands.add_parser("mcp", help="an MCP server over stdio (search, ask, fetch_passage) for desktop agents")
    mcp.set_defaults(handler=mcp_command)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def served_knowledge_bases(name: str | None) -> list[tuple[str, Settings]]:
    """Every knowledge base the project declares (default first), or the one ``--kb`` names."""
    from pathlib import Path

    from ai_assets.components.knowledge_base import PROJECT, declared_knowledge_bases, project_package

    _, declared = declared_knowledge_bases(project_package(Path.cwd()) or PROJECT)
    chosen = [component for component in declared if name in (None, component.name)]
    if not chosen:
        raise CliError(f"no knowledge base {name!r} (declared: {', '.join(c.name for c in declared) or 'none'})")
    return [(component.name, component.settings()) for component in chosen]


def chat_model_of(settings: Settings):
    from ai_assets.cli.answer_commands import chat_model

    return chat_model(settings)


def serve_command(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from ai_assets.serve.app import ServeOptions, create_app
    from ai_assets.serve.library import open_library
    from ai_assets.serve.scopes import load_tokens

    tokens = load_tokens(settings.serve_tokens, settings.serve_tokens_file)
    open_access = not tokens
    if open_access and not is_loopback(args.host):
        raise CliError(
            f"--host {args.host} would let anyone read the index: configure tokens (AI_ASSETS_SERVE_TOKENS_FILE or "
            "AI_ASSETS_SERVE_TOKENS, docs/serving.md) or listen on 127.0.0.1"
        )
    if open_access:
        print(
            f"ai-assets: warning: no API tokens configured: anyone on this machine can read every knowledge base "
            f"at http://{args.host}:{args.port} (set AI_ASSETS_SERVE_TOKENS_FILE to require tokens)",
            file=sys.stderr,
        )
    library = open_library(served_knowledge_bases(args.kb), settings.serve_refresh_seconds)
    options = ServeOptions(
        tokens=tokens, open_access=open_access, max_body_bytes=settings.serve_max_body_bytes,
        rate_limit_per_minute=settings.serve_rate_limit_per_minute, cors_origins=settings.serve_cors_origins,
        max_k=settings.serve_max_k,
    )
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    app = create_app(library, options, chat_model=chat_model_of)
    print(f"ai-assets: serving {', '.join(library.knowledge_bases)} at http://{args.host}:{args.port}/", file=sys.stderr)
    # Uvicorn's access log shows method, path and status, never headers: tokens stay out of logs.
    uvicorn.run(app, host=args.host, port=args.port, log_level="info")
    return 0


def mcp_command(args: argparse.Namespace, settings: Settings) -> int:
    from ai_assets.serve.library import open_library
    from ai_assets.serve.mcp_tools import mcp_server
    from ai_assets.serve.scopes import LOCAL_CALLER
    from ai_assets.serve.service import Service

    library = open_library(served_knowledge_bases(args.kb), settings.serve_refresh_seconds)
    server = mcp_server(Service(library, settings.serve_max_k, chat_model_of), lambda context: LOCAL_CALLER)
    library.start()
    try:
        server.run("stdio")  # stdout is the protocol's: every message of ours goes to stderr
    finally:
        library.stop()
    return 0
