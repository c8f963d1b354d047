"""Writers on several machines creating one embedder table in a bucket at the same moment.

Each writer is its own process with its own temp directory, so nothing local (a lock file)
can serialize them: the first commit's put-if-absent must, and every writer's rows must survive.
"""

from __future__ import annotations

import multiprocessing
import os
import tempfile

import lancedb
import pyarrow as pa

from ai_assets.core.embedding.base import MINILM
from ai_assets.core.store.tables import chunk_schema, open_table, source_row_counts
from ai_assets_tests.s3_server import S3Server

WRITERS = 3
ROWS = 5


def write_rows(uri: str, env: dict[str, str], writer: int, barrier, errors) -> None:
    os.environ.update(env)
    tempfile.tempdir = tempfile.mkdtemp(prefix=f"writer{writer}_")  # "another machine": its own temp dir
    try:
        db = lancedb.connect(uri, storage_options={"allow_http": "true"})
        barrier.wait(timeout=60)
        table = open_table(db, MINILM)
        rows = [
            {"chunk_id": f"w{writer}-{n}", "source": f"w{writer}", "doc_key": f"w{writer}/{n}", "vector": [0.0] * MINILM.dimensions}
            for n in range(ROWS)
        ]
        table.add(pa.Table.from_pylist(rows, schema=chunk_schema(MINILM)))
    except Exception as error:  # reported to the test, which names the writer
        errors.put(f"writer {writer}: {type(error).__name__}: {error}")


def test_concurrent_creators_on_s3_all_keep_their_rows(s3_env: S3Server) -> None:
    s3_env.client().create_bucket(Bucket="race")
    spawn = multiprocessing.get_context("spawn")
    for trial in range(3):
        uri = f"s3://race/trial{trial}"
        barrier, errors = spawn.Barrier(WRITERS), spawn.Queue()
        writers = [
            spawn.Process(target=write_rows, args=(uri, s3_env.env(), writer, barrier, errors))
            for writer in range(WRITERS)
        ]
        for process in writers:
            process.start()
        for process in writers:
            process.join(timeout=120)
        failures = [errors.get() for _ in range(errors.qsize())] if not errors.empty() else []
        assert failures == [], failures
        table = lancedb.connect(uri, storage_options={"allow_http": "true"}).open_table("chunks__minilm")
        assert source_row_counts(table) == {f"w{writer}": ROWS for writer in range(WRITERS)}, trial
