"""Helpers for tests that need something from the machine: a free port, a Debian package."""

from __future__ import annotations

import os
import socket
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
