"""Stable content hashes used as keys (documents, chunks, embedding cache)."""

import hashlib
import json
from typing import Any


def sha256_hex(*parts: str, length: int = 32) -> str:
    """Hash of the parts, separated so that ("ab", "c") and ("a", "bc") differ."""
    digest = hashlib.sha256()
    for part in parts:
        encoded = part.encode("utf-8")
        digest.update(len(encoded).to_bytes(8, "big"))
        digest.update(encoded)
    return digest.hexdigest()[:length]


def config_hash(config: dict[str, Any]) -> str:
    """Hash of a JSON-serializable configuration, independent of key order."""
    return sha256_hex(json.dumps(config, sort_keys=True), length=16)
