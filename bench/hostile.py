"""A hostile source beside good files, through `ai-assets build` as a user runs it (issue #32).

    PYTHONPATH=<checkout> python bench/hostile.py [--workdir DIR] [--keep]

Two data dirs get the same good files (PDF, Word, PowerPoint, HTML, Markdown: source
``handbook``; Markdown: source ``notes``); the second also gets, in ``handbook``, files named
with bytes that are not UTF-8 (a file and a folder), a newline and a right-to-left mark, a 2 GB
sparse PDF and a 2 GB sparse Markdown file (over their size limits), a Word zip bomb unpacking
to 1.2 GB, an HTML page of 200,000 nested divs, a Word file with an external entity, one whose
XML nests 20,000 deep, an encrypted and a truncated PDF. Each data dir is built cold, then again
with nothing to do, then forced (every step runs: the second ingest of an unchanged source).
Every build is a subprocess, watched every 50 ms: its exit code, wall time, the peak of the
summed resident memory of its process tree (build, step processes, parsing workers) and the
bytes its processes read (``rchar`` of /proc/PID/io, summed: a read 2 GB file would show).

The source's ingestion alone (``load_source`` of ``handbook``, 2 parsing workers, in this
process, its tree watched the same way) is measured on both data dirs too: a build's peak sums
processes that run at once (step processes, each with its model), which varies from build to
build more than any file's parsing does. The ``source_documents`` step of each forced build is
timed from the run's own step statistics.

Then, on the hostile data dir, a good indexed PDF is replaced by a truncated copy and built:
its passage must still be found by `ai-assets search`, `trace` must say ``stale``, `quarantine`
must list it stale; deleted and built again, it must be gone.
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
from dataclasses import dataclass
from pathlib import Path

from ai_assets_tests.document_files import docx_bytes, pdf_bytes, pptx_bytes, rewritten_docx, zip_bomb_docx

PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
QUERY = "who is paged after the third failure"


@dataclass
class Measured:
    label: str
    exit_code: int
    seconds: float
    peak_rss_mb: float
    read_mb: float
    output: str


def good_files(source: Path) -> None:
    filler = [("body", f"Line {n} of the handbook describes routine checks of the platform in detail.") for n in range(12)]
    pages = [
        [("h1", "Operations"), ("body", "How the platform team runs production."), *filler],
        [("h2", "Retries"), ("body", "A failed run is retried three times with exponential backoff and jitter."), *filler],
        [("h2", "Escalation"), ("body", "After the third failure the on-call engineer is paged."), *filler],
    ]
    source.mkdir(parents=True, exist_ok=True)
    (source / "ops.pdf").write_bytes(pdf_bytes(pages))
    for n in range(5):
        (source / f"manual-{n}.pdf").write_bytes(pdf_bytes([[("h1", f"Manual {n}"), *filler]] * 4))
        (source / f"runbook-{n}.docx").write_bytes(
            docx_bytes([("h1", f"Runbook {n}"), ("h2", "Restarts"), ("body", "Restart the scheduler before the webserver."), *filler])
        )
        (source / f"deck-{n}.pptx").write_bytes(pptx_bytes([(f"Deck {n}", "Quarterly review of the platform."), ("Next", "More checks.")]))
        (source / f"page-{n}.html").write_text(
            f"<html><head><title>Page {n}</title></head><body><main><h1>Page {n}</h1><p>Sensors poll.</p></main></body></html>"
        )
    for n in range(20):
        (source / f"guide-{n}.md").write_text(f"# Guide {n}\n\n## Setup\n\nInstall step {n}.\n\n## Use\n\nRun step {n} daily.\n")


def notes_files(source: Path) -> None:
    source.mkdir(parents=True, exist_ok=True)
    for n in range(10):
        (source / f"note-{n}.md").write_text(f"# Note {n}\n\nThe team met on day {n}.\n")


def hostile_files(source: Path) -> None:
    def sparse(name: str, size: int) -> None:
        with (source / name).open("wb") as file:
            file.truncate(size)

    raw = os.fsencode(source)
    Path(os.fsdecode(raw + b"/latin1-caf\xe9.md")).write_text("# Caf\u00e9\n\nCoffee is served at nine.")
    os.makedirs(os.fsdecode(raw + b"/dossier-\xe9t\xe9"), exist_ok=True)
    Path(os.fsdecode(raw + b"/dossier-\xe9t\xe9/notes.md")).write_text("# Summer\n\nSummer notes.")
    (source / "forged\nquarantined  ops.pdf: fine.md").write_text("# Forged\n\nA name with a newline.")
    (source / "\u202egnp.md").write_text("# Reversed\n\nA right-to-left mark.")
    sparse("huge.pdf", 2 << 30)
    sparse("huge.md", 2 << 30)
    (source / "bomb.docx").write_bytes(zip_bomb_docx(1200 << 20))
    (source / "nested.html").write_text("<html><body>" + "<div>" * 200_000 + "deep" + "</div>" * 200_000 + "</body></html>")
    entity = b'<!DOCTYPE w:document [<!ENTITY ext SYSTEM "file:///etc/hostname">]>'
    (source / "entity.docx").write_bytes(rewritten_docx(b"MARK", b"&ext;", entity))
    (source / "deep-xml.docx").write_bytes(
        rewritten_docx(b"MARK", b"</w:t></w:r>" + b"<w:sdt>" * 20_000 + b"</w:sdt>" * 20_000 + b"<w:r><w:t>")
    )
    good = (source / "ops.pdf").read_bytes()
    (source / "cut.pdf").write_bytes(good[:1200])
    (source / "locked.pdf").write_bytes(pdf_bytes([[("body", "secret")]], password="pw"))


def tree(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    parent = int(stat.read().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
            children.setdefault(parent, []).append(int(entry))
    found, stack = [], [root]
    while stack:
        pid = stack.pop()
        found.append(pid)
        stack.extend(children.get(pid, []))
    return found


def rss_and_read(pid: int) -> tuple[int, int]:
    try:
        with open(f"/proc/{pid}/statm") as statm:
            rss = int(statm.read().split()[1]) * PAGE_SIZE
        with open(f"/proc/{pid}/io") as io_file:
            read = next(int(line.split()[1]) for line in io_file if line.startswith("rchar:"))
        return rss, read
    except (OSError, StopIteration, ValueError):
        return 0, 0


def run(label: str, args: list[str], env: dict[str, str]) -> Measured:
    started = time.perf_counter()
    process = subprocess.Popen(["ai-assets", *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    peak, read_by_pid = 0, {}
    while process.poll() is None:
        total = 0
        for pid in tree(process.pid):
            rss, read = rss_and_read(pid)
            total += rss
            read_by_pid[pid] = max(read, read_by_pid.get(pid, 0))
        peak = max(peak, total)
        time.sleep(0.05)
    output = process.stdout.read() if process.stdout else ""
    measured = Measured(label, process.returncode, time.perf_counter() - started, peak / 1e6, sum(read_by_pid.values()) / 1e6, output)
    print(
        f"{label:<34} exit {measured.exit_code}  {measured.seconds:6.1f} s  peak RSS {measured.peak_rss_mb:7.0f} MB  "
        f"read {measured.read_mb:8.1f} MB",
        flush=True,
    )
    return measured


def ingest_alone(sources: Path) -> tuple[float, float, int]:
    """Seconds, peak summed RSS (MB) of this process and its parsing workers, and documents,
    of loading ``handbook`` as source_documents does (2 workers, default limits)."""
    from ai_assets.core.documents.folders import LocalSourceFolders
    from ai_assets.core.documents.loading import ParseSettings, load_source

    peak, done = [0], threading.Event()

    def watch() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], sum(rss_and_read(pid)[0] for pid in tree(os.getpid())))
            time.sleep(0.02)

    watcher = threading.Thread(target=watch)
    watcher.start()
    started = time.perf_counter()
    loaded = load_source(LocalSourceFolders(sources), "handbook", 5_000_000, ParseSettings(workers=2))
    seconds = time.perf_counter() - started
    done.set()
    watcher.join()
    return seconds, peak[0] / 1e6, len(loaded.documents)


def step_seconds(dagster_home: Path, step: str = "source_documents") -> float:
    """The step's duration in the latest run that materialized handbook's source_documents."""
    import dagster as dg

    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        record = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey(step), asset_partitions=["handbook"]), limit=1
        ).records[0]
        stats = [entry for entry in instance.get_run_step_stats(record.run_id) if entry.step_key == step]
        return stats[0].end_time - stats[0].start_time


def cli(args: list[str], env: dict[str, str]) -> str:
    return subprocess.run(["ai-assets", *args], env=env, capture_output=True, text=True, check=True).stdout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, help="where to put the data dirs (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the data dirs")
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="hostile-"))
    results: dict[str, list[Measured]] = {}
    envs = {}
    forced_step: dict[str, float] = {}
    alone: dict[str, tuple[float, float, int]] = {}
    for kind in ("good", "hostile"):
        data = work / kind / "data"
        good_files(data / "sources" / "handbook")
        notes_files(data / "sources" / "notes")
        if kind == "hostile":
            hostile_files(data / "sources" / "handbook")
        env = {**os.environ, "AI_ASSETS_DATA_DIR": str(data), "DAGSTER_HOME": str(work / kind / "dagster_home")}
        (work / kind / "dagster_home").mkdir(parents=True, exist_ok=True)
        envs[kind] = env
        results[kind] = [
            run(f"{kind}: cold build", ["build"], env),
            run(f"{kind}: build, nothing to do", ["build"], env),
            run(f"{kind}: forced build (second ingest)", ["build", "--force"], env),
        ]
        forced_step[kind] = step_seconds(work / kind / "dagster_home")
        alone[kind] = ingest_alone(data / "sources")
        print(f"{kind}: forced build's source_documents step {forced_step[kind]:.1f} s; ingest alone "
              f"{alone[kind][0]:.1f} s, peak RSS {alone[kind][1]:.0f} MB, {alone[kind][2]} documents", flush=True)
    env = envs["hostile"]
    report = json.loads(cli(["quarantine", "--json", "--skipped"], env))
    handbook = next(entry for entry in report if entry["source"] == "handbook")
    print(f"\nhostile handbook: {handbook['documents']} documents; quarantined:")
    for item in handbook["quarantined"]:
        print(f"  {item['path']!r}: {item['reason'][:110]}{' (remembered)' if item.get('remembered') else ''}")

    source = work / "hostile" / "data" / "sources" / "handbook"
    (source / "ops.pdf").write_bytes((source / "ops.pdf").read_bytes()[:1500])
    stale_build = run("hostile: ops.pdf truncated, build", ["build"], env)
    hit = json.loads(cli(["search", QUERY, "--k", "1", "--json"], env))[0]
    traced = json.loads(cli(["trace", QUERY, "--k", "1", "--json"], env))[0]
    listed = cli(["quarantine", "--source", "handbook"], env)
    print(f"  top hit {hit['doc_key']}; trace: {traced['document_status']} since {traced['stale_since']}: {traced['stale_reason']}")
    print("  " + next(line for line in listed.splitlines() if "stale  " in line).strip())
    (source / "ops.pdf").unlink()
    deleted_build = run("hostile: ops.pdf deleted, build", ["build"], env)
    after = json.loads(cli(["search", QUERY, "--k", "3", "--json"], env))
    print(f"  after deletion, top 3: {[row['doc_key'] for row in after]}")

    good, hostile = results["good"], results["hostile"]
    print("\nsummary")
    print(f"  every build exit 0: {all(m.exit_code == 0 for m in [*good, *hostile, stale_build, deleted_build])}")
    print(f"  peak RSS, hostile minus good (cold): {hostile[0].peak_rss_mb - good[0].peak_rss_mb:+.0f} MB")
    print(f"  bytes read, hostile minus good (cold): {hostile[0].read_mb - good[0].read_mb:+.0f} MB (the 2 GB files: 4,295 MB)")
    print(f"  forced rebuild, hostile / good: {hostile[2].seconds:.1f} s / {good[2].seconds:.1f} s")
    print(f"  its source_documents step, hostile / good: {forced_step['hostile']:.1f} s / {forced_step['good']:.1f} s")
    print(f"  ingest alone, peak RSS hostile / good: {alone['hostile'][1]:.0f} MB / {alone['good'][1]:.0f} MB")
    print(f"  nothing to do, hostile / good: {hostile[1].seconds:.1f} s / {good[1].seconds:.1f} s")
    for measured in [*good, *hostile, stale_build, deleted_build]:
        if measured.exit_code != 0:
            print(f"\n{measured.label} output:\n{measured.output[-3000:]}")
    if not args.keep and not args.workdir:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
