"""Helpers for tests that need something from the machine: a free port, a Debian package, its files."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import NoReturn

import pytest


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def missing_system_package(message: str) -> NoReturn:
    """Skip on a developer's machine; fail under CI, whose .ci/run installs the package."""
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def data_files(directory: Path) -> list[str]:
    """Files a step must not leave on its own disk: Parquet (chunk files), pickles (in-graph
    values), Lance data, or any copy of a source document."""
    found = []
    for path in directory.rglob("*"):
        if not path.is_file():
            continue
        head = path.read_bytes()[:4]
        if path.suffix in (".parquet", ".pickle", ".pkl", ".lance", ".md", ".html", ".rst") or head == b"PAR1" or (
            head[:1] == b"\x80" and head[1:2] in (b"\x04", b"\x05")
        ):
            found.append(str(path.relative_to(directory)))
    return found
