"""Memory and throughput of chunk_embeddings' write path at scale: 100k and 1M chunks.

    python bench/scale.py [--rows 100000 1000000] [--dir /tmp/ai_assets_scale]

For each size, a synthetic source of that many chunks is written as the Parquet chunk file
`document_chunks` hands downstream, then `sync_source_embeddings` (what `chunk_embeddings`
runs) embeds and publishes it into a fresh LanceDB table, in a fresh process so its peak RSS
is its own. The embedder is a cheap deterministic one (a unit vector made of the text's hash,
384 dimensions like all-MiniLM-L6-v2): this measures everything but the model. A warm re-run
of the unchanged source follows, then a run with 1% of the documents edited. Printed per size
and run: seconds, rows/s, texts embedded, rows in the table, peak RSS; and the peak RSS of a
process that only imports the same modules (the floor).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from ai_assets.core.chunking.chunk_files import ChunkFile, write_chunk_file
from ai_assets.core.chunking.chunker import Chunk, chunk_id_for
from ai_assets.core.embedding.base import Embedder, EmbedderSpec

SOURCE = "synthetic"
CHUNKS_PER_DOCUMENT = 10
WORDS = [f"{stem}{suffix}" for stem in ("sched", "sensor", "asset", "retry", "partition", "index", "vector",
                                        "query", "chunk", "model", "lineage", "fresh") for suffix in range(40)]
HASH_SPEC = EmbedderSpec(
    name="bench-hash", provider="sentence-transformers", model="bench/hash-384", dimensions=384,
    max_input_tokens=512, normalized=True,
)


class HashEmbedder(Embedder):
    """A unit vector made of the text's SHAKE-128 digest: deterministic, and nearly free."""

    spec = HASH_SPEC

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return [len(text.split()) for text in texts]

    def _encode(self, texts: list[str], token_counts: Sequence[int]) -> np.ndarray:
        digests = b"".join(hashlib.shake_128(text.encode()).digest(384) for text in texts)
        vectors = np.frombuffer(digests, dtype=np.uint8).reshape(len(texts), 384).astype(np.float32) - 127.5
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def synthetic_chunks(rows: int, edited: bool = False) -> Iterator[Chunk]:
    """``rows`` chunks, 10 per document; ``edited``: every 100th document (1%) has new text."""
    for index in range(rows):
        document, position = divmod(index, CHUNKS_PER_DOCUMENT)
        words = [WORDS[(index * 7 + step * 13 + step * step) % len(WORDS)] for step in range(120)]
        version = "v2" if edited and document % 100 == 0 else "v1"
        text = f"Chunk {index} of document {document} ({version}): " + " ".join(words)
        doc_key = f"{SOURCE}/doc{document}.md"
        yield Chunk(
            chunk_id=chunk_id_for(doc_key, text, "bench"), source=SOURCE, doc_key=doc_key,
            doc_path=f"doc{document}.md", doc_title=f"Document {document}", doc_content_hash=f"{version}-{document}",
            chunk_index=position, text=text, char_start=0, char_end=len(text), token_count=len(text.split()),
            chunker_config="bench",
        )


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def worker(chunk_file: Path, db_dir: Path, run_id: str) -> dict:
    """One chunk_embeddings write, in this process: seconds, counts and peak RSS."""
    import lancedb

    from ai_assets.core.store.tables import open_journal, open_table
    from ai_assets.core.store.writes import sync_source_embeddings

    db = lancedb.connect(str(db_dir))
    table, journal = open_table(db, HASH_SPEC), open_journal(db, HASH_SPEC)
    started = time.perf_counter()
    result = sync_source_embeddings(
        table, SOURCE, ChunkFile(str(chunk_file)), HashEmbedder(), run_id, journal=journal, batch_size=1024
    )
    seconds = time.perf_counter() - started
    return {
        "seconds": round(seconds, 1),
        "rows_per_second": round(result.chunks / seconds),
        "embedded": result.embedded,
        "rows_in_table": table.count_rows(),
        "peak_rss_mb": round(peak_rss_mb()),
    }


def floor() -> dict:
    import lancedb  # noqa: F401 - the imports the worker pays for, nothing else

    from ai_assets.core.store import writes  # noqa: F401

    return {"peak_rss_mb": round(peak_rss_mb())}


def in_subprocess(*args: str) -> dict:
    output = subprocess.run(
        [sys.executable, __file__, *args], check=True, capture_output=True, text=True
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--dir", type=Path, default=Path("/tmp/ai_assets_scale"))
    parser.add_argument("--worker", nargs=3, metavar=("CHUNK_FILE", "DB_DIR", "RUN_ID"), help=argparse.SUPPRESS)
    parser.add_argument("--floor", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(Path(args.worker[0]), Path(args.worker[1]), args.worker[2])))
        return
    if args.floor:
        print(json.dumps(floor()))
        return

    print(f"imports only: peak RSS {in_subprocess('--floor')['peak_rss_mb']} MB")
    print("| chunks | run | seconds | rows/s | texts embedded | rows in table | peak RSS MB |")
    print("|---:|---|---:|---:|---:|---:|---:|")
    for rows in args.rows:
        work = args.dir / str(rows)
        shutil.rmtree(work, ignore_errors=True)
        original = write_chunk_file(work / "chunks.parquet", synthetic_chunks(rows)).location
        edited = write_chunk_file(work / "edited.parquet", synthetic_chunks(rows, edited=True)).location
        for run, chunk_file in (("cold", original), ("warm", original), ("1% edited", edited)):
            result = in_subprocess("--worker", str(chunk_file), str(work / "lancedb"), run)
            print(
                f"| {rows:,} | {run} | {result['seconds']} | {result['rows_per_second']:,} | {result['embedded']:,} "
                f"| {result['rows_in_table']:,} | {result['peak_rss_mb']:,} |",
                flush=True,
            )
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
