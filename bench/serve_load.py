"""`ai-assets serve` under load: 16 concurrent clients against the same searches sent one at a time.

    python bench/serve_load.py [--rows 100000] [--clients 16] [--seconds 60] [--mode hybrid]
                               [--corpus ../shared/benchmarks/msmarco] [--workdir DIR]

Builds the table of bench/latency.py (msmarco rows repeated to ``--rows`` chunks with jittered
copies of their real vectors, indexed as ``search_index`` indexes it), serves it (the ``served``
tag), starts `ai-assets serve` as its own process on 127.0.0.1 and sends the 50 msmarco queries
round-robin to POST /v1/search: first from one client, one request at a time, for ``--seconds``;
then from ``--clients`` concurrent clients for ``--seconds``. For each phase it prints requests
per second, p50 and p99 latency (ms, as the client sees it), the errors, the server process's
resident memory at the start and end of the phase (and its peak, sampled every second), and the
queries encoded per model call (micro-batching, from the server's /metrics).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import httpx
import lancedb
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from latency import embed_corpus, synthetic_table, template_rows  # noqa: E402

from ai_assets.core.embedding.base import MINILM  # noqa: E402
from ai_assets.core.store.tables import open_table  # noqa: E402
from ai_assets.core.store.versions import move_served  # noqa: E402


def served_data_dir(corpus: Path, workdir: Path, rows: int) -> Path:
    """A data dir whose minilm table holds ``rows`` chunks, its latest version served."""
    settings = embed_corpus(corpus, workdir / "corpus")
    chunks, vectors = template_rows(open_table(lancedb.connect(settings.resolved_lancedb_uri), MINILM, create=False))
    data_dir = workdir / f"serve{rows}"
    table = synthetic_table(data_dir / "lancedb", rows, chunks, vectors, settings.ann_min_rows)
    move_served(table, table.version)
    return data_dir


def resident_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def start_server(data_dir: Path, port: int, log: Path) -> subprocess.Popen:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("AI_ASSETS_", "OPENAI_"))}
    env.update(
        AI_ASSETS_DATA_DIR=str(data_dir), AI_ASSETS_SERVE_RATE_LIMIT_PER_MINUTE="10000000",
        PYTHONPATH=str(Path(__file__).resolve().parents[1]),
    )
    server = subprocess.Popen(
        [sys.executable, "-m", "ai_assets.cli", "serve", "--port", str(port)],
        env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT, cwd=Path(__file__).resolve().parents[1],
    )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as response:
                if response.status == 200:
                    return server
        except OSError:
            if server.poll() is not None:
                raise SystemExit(f"the server exited:\n{log.read_text()[-3000:]}") from None
        time.sleep(1)
    server.kill()
    raise SystemExit("the server did not become ready within 300 s")


def batch_totals(base: str) -> tuple[float, float]:
    """(queries encoded, model calls) so far, from the server's ai_assets_query_batch_size histogram."""
    text = httpx.get(f"{base}/metrics").text
    values = {
        line.split()[0]: float(line.split()[1]) for line in text.splitlines() if line.startswith("ai_assets_query_batch_size_")
    }
    return values.get("ai_assets_query_batch_size_sum", 0.0), values.get("ai_assets_query_batch_size_count", 0.0)


def run_phase(base: str, queries: list[str], clients: int, seconds: float, mode: str, pid: int) -> dict:
    encoded_before, calls_before = batch_totals(base)
    latencies: list[float] = []
    errors: list[str] = []
    memory = [resident_mb(pid)]
    stop = time.monotonic() + seconds
    lock = threading.Lock()

    def client(offset: int) -> None:
        with httpx.Client(base_url=base, timeout=60) as http:
            sent = offset
            while time.monotonic() < stop:
                body = {"query": queries[sent % len(queries)], "k": 10, "mode": mode}
                started = time.perf_counter()
                try:
                    response = http.post("/v1/search", json=body)
                    failed = None if response.status_code == 200 else f"{response.status_code} {response.text[:120]}"
                except httpx.HTTPError as error:
                    failed = repr(error)
                elapsed = time.perf_counter() - started
                with lock:
                    latencies.append(elapsed)
                    if failed:
                        errors.append(failed)
                sent += clients

    threads = [threading.Thread(target=client, args=(index,)) for index in range(clients)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    while any(thread.is_alive() for thread in threads):
        time.sleep(1)
        memory.append(resident_mb(pid))
    wall = time.monotonic() - started
    milliseconds = np.array(latencies) * 1000
    encoded, calls = batch_totals(base)
    return {
        "queries_per_model_call": (encoded - encoded_before) / max(calls - calls_before, 1),
        "clients": clients, "requests": len(latencies), "rps": len(latencies) / wall,
        "p50_ms": float(np.percentile(milliseconds, 50)), "p99_ms": float(np.percentile(milliseconds, 99)),
        "errors": len(errors), "first_errors": errors[:3],
        "rss_mb_start": memory[0], "rss_mb_end": memory[-1], "rss_mb_peak": max(memory),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=Path(__file__).resolve().parents[2] / "shared/benchmarks/msmarco")
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--mode", default="hybrid", choices=("dense", "fts", "hybrid"))
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--workdir", type=Path, help="keep the corpus and the table here, reuse them next time")
    args = parser.parse_args()

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="ai_assets_serve_load_"))
    workdir.mkdir(parents=True, exist_ok=True)
    server = None
    try:
        data_dir = served_data_dir(args.corpus, workdir, args.rows)
        lines = (args.corpus / "queries.jsonl").read_text(encoding="utf-8").splitlines()
        queries = [json.loads(line)["text"] for line in lines if line.strip()]
        server = start_server(data_dir, args.port, workdir / "server.log")
        base = f"http://127.0.0.1:{args.port}"
        print(f"{args.rows} chunks | {args.mode} | {len(queries)} queries | {os.cpu_count()} CPUs | load average {os.getloadavg()[0]:.1f}")
        results = [run_phase(base, queries, clients, args.seconds, args.mode, server.pid) for clients in (1, args.clients)]
        for result in results:
            print(
                f"{result['clients']:>2} client(s): {result['requests']} requests, {result['rps']:.1f} req/s, "
                f"p50 {result['p50_ms']:.0f} ms, p99 {result['p99_ms']:.0f} ms, errors {result['errors']} "
                f"{result['first_errors'] or ''}| server RSS {result['rss_mb_start']:.0f} -> {result['rss_mb_end']:.0f} MB "
                f"(peak {result['rss_mb_peak']:.0f}) | {result['queries_per_model_call']:.2f} queries per model call"
            )
        print(f"throughput ratio, {args.clients} clients over 1: {results[1]['rps'] / results[0]['rps']:.2f}")
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
