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
from ai_assets.core.store.tables import (
    chunk_schema,
    journal_schema,
    open_journal,
    open_table,
    source_row_counts,
)
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
        # The journal too: created at the same moment by every writer, as chunk_embeddings does.
        barrier.wait(timeout=60)
        journal_rows = [
            {"text_hash": f"w{writer}-{n}", "source": f"w{writer}", "vector": [0.0] * MINILM.dimensions}
            for n in range(ROWS)
        ]
        open_journal(db, MINILM).add(pa.Table.from_pylist(journal_rows, schema=journal_schema(MINILM)))
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
        journal = lancedb.connect(uri, storage_options={"allow_http": "true"}).open_table("embedding_journal__minilm")
        assert source_row_counts(journal) == {f"w{writer}": ROWS for writer in range(WRITERS)}, trial


def test_a_claim_left_by_a_dead_writer_is_taken_over_and_a_live_one_waited_for(
    tmp_path, monkeypatch
) -> None:
    import time

    import pytest

    from ai_assets.core.store import tables

    db = lancedb.connect(str(tmp_path / "db"))
    claim = tmp_path / "db" / "_creation_claims" / "chunks__minilm.claim"
    claim.parent.mkdir(parents=True)
    claim.write_text("0")
    # Held by a writer that is still creating (a fresh claim): the others wait, then say whom.
    monkeypatch.setattr(tables, "CREATE_ATTEMPTS", 2)
    with pytest.raises(TimeoutError, match="being created by another writer"):
        open_table(db, MINILM)
    # Abandoned (older than the stale age): taken over, the table created, the claim released.
    stale = time.time() - tables.CLAIM_STALE_SECONDS - 60
    os.utime(claim, (stale, stale))
    assert open_table(db, MINILM).count_rows() == 0
    assert not claim.exists()
