"""An S3-compatible server for tests: moto in server mode, in its own process, on a free local port.

Everything reaches it the way a deployment reaches S3: the standard ``AWS_*`` variables
(``AWS_ENDPOINT_URL`` for the endpoint), read by s3fs, LanceDB and boto3 alike.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import boto3

from ai_assets_tests.system import free_port

CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "test-access-key",
    "AWS_SECRET_ACCESS_KEY": "test-secret-key",
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@dataclass(frozen=True)
class S3Server:
    endpoint: str

    def env(self) -> dict[str, str]:
        return {**CREDENTIALS, "AWS_ENDPOINT_URL": self.endpoint}

    def client(self):
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            region_name=CREDENTIALS["AWS_REGION"],
        )

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return sorted(item["Key"] for page in pages for item in page.get("Contents", []))

    def put(self, bucket: str, key: str, body: bytes | str) -> None:
        self.client().put_object(Bucket=bucket, Key=key, Body=body.encode() if isinstance(body, str) else body)

    def delete(self, bucket: str, key: str) -> None:
        self.client().delete_object(Bucket=bucket, Key=key)

    def upload_tree(self, directory: Path, bucket: str, prefix: str) -> None:
        for path in sorted(directory.rglob("*")):
            if path.is_file():
                self.put(bucket, f"{prefix.rstrip('/')}/{path.relative_to(directory).as_posix()}", path.read_bytes())


def upload_corpus(s3: S3Server, bucket: str, sources: dict[str, dict[str, str]], eval_dir: Path) -> str:
    """A new bucket holding ``sources`` under ``data/sources/`` and the eval sets of ``eval_dir``
    under ``data/eval/``; returns the data dir's URI."""
    s3.client().create_bucket(Bucket=bucket)
    for source, files in sources.items():
        for relative, text in files.items():
            s3.put(bucket, f"data/sources/{source}/{relative}", text)
    s3.upload_tree(eval_dir, bucket, "data/eval")
    return f"s3://{bucket}/data"


@contextmanager
def running_s3(require_auth: bool = False) -> Iterator[S3Server]:
    """moto's server; with ``require_auth`` it checks credentials (and knows none, so every key is refused)."""
    port = free_port()
    env = {**os.environ, **({"INITIAL_NO_AUTH_ACTION_COUNT": "0"} if require_auth else {})}
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("moto's S3 server did not start") from None
                time.sleep(0.2)
        yield S3Server(f"http://127.0.0.1:{port}")
    finally:
        process.terminate()
        process.wait(timeout=30)
