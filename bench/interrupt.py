"""Interrupted and killed builds on the demo corpus: how fast they stop, how fast the next build recovers.

    python bench/interrupt.py [--corpus data/sources] [--delay 1.5]

On a fresh data dir (a copy of the corpus, plus ``passwd.md`` linking to ``/etc/passwd`` in one
source) and a fresh Dagster instance, each through the `ai-assets build` command, as a user runs it:

1. a cold build;
2. an edit (a new document of ~100 chunks, and a marker sentence changed in an existing one)
   and a normal build: the reference an interrupted build's successor is compared with;
3. another such edit, a build sent ``kill -9`` ``--delay`` seconds into the edited source's
   embedding step, and the next build;
4. another such edit, a build sent SIGINT at the same point (how long it takes to exit, and its
   exit code), and the next build;
5. `ai-assets build` from an empty folder, and a second build started while one runs.

After every completed build the table is checked: no duplicate chunk id, the chunk ids of each
source exactly those of its latest chunk file, the last marker present and the earlier ones
gone; and whether any row holds the system file's text. Printed: the seconds of each build, the
builds after a kill or an interrupt as a ratio of the reference edit build (measured in the same
run), the SIGINT exit latency, and the targets of the operations issue, met or MISS.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import lancedb
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parent.parent
SYSTEM_FILE = Path("/etc/passwd")
MARKER_FILE = ("airflow", "core-concepts_sensors.md")


@dataclass
class Build:
    code: int
    seconds: float
    output: str
    exit_after_signal: float | None = None


def ai_assets() -> str:
    return shutil.which("ai-assets", path=str(Path(sys.executable).parent)) or "ai-assets"


def run(env: dict[str, str], cwd: Path | None = None, *args: str) -> Build:
    started = time.perf_counter()
    done = subprocess.run([ai_assets(), "build", *args], env=env, cwd=cwd, capture_output=True, text=True, check=False)
    return Build(done.returncode, time.perf_counter() - started, done.stdout + done.stderr)


def run_and_signal(env: dict[str, str], source: str, delay: float, signum: int) -> Build:
    """A build sent ``signum`` ``delay`` seconds after it starts embedding ``source``."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [ai_assets(), "build"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    lines: list[str] = []
    embedding = threading.Event()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            if f"embed_source_job minilm|{source} (" in line:
                embedding.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    if not embedding.wait(timeout=600):
        process.kill()
        raise SystemExit("the build never reached the embedding step:\n" + "".join(lines))
    time.sleep(delay)
    signalled = time.perf_counter()
    process.send_signal(signum)
    code = process.wait(timeout=600)
    exited = time.perf_counter()
    reader.join(timeout=10)
    return Build(code, exited - started, "".join(lines), exit_after_signal=exited - signalled)


def edit(sources: Path, name: str) -> None:
    """A new document of another source's text (new chunks to embed), and a new marker sentence."""
    donors = sorted((sources / "prefect").glob("*.md"), key=lambda path: -path.stat().st_size)[:6]
    text = "\n\n".join(f"{name}: {path.read_text(encoding='utf-8')}" for path in donors)
    (sources / "airflow" / f"bench_{name}.md").write_text(text, encoding="utf-8")
    marker = sources / MARKER_FILE[0] / MARKER_FILE[1]
    lines = [line for line in marker.read_text(encoding="utf-8").splitlines() if not line.startswith("Marker: ")]
    marker.write_text("\n".join([*lines, f"Marker: {name} zebra crossing."]) + "\n", encoding="utf-8")


def check_table(data_dir: Path, present: str | None, gone: list[str]) -> dict[str, object]:
    table = lancedb.connect(data_dir / "lancedb").open_table("chunks__minilm")
    rows = table.search().select(["chunk_id", "source", "text"]).limit(None).to_arrow().to_pylist()
    ids = [row["chunk_id"] for row in rows]
    mismatched = []
    for chunk_file in sorted((data_dir / "chunks" / "document_chunks").glob("*.parquet")):
        expected = set(pq.read_table(chunk_file, columns=["chunk_id"]).column("chunk_id").to_pylist())
        if {row["chunk_id"] for row in rows if row["source"] == chunk_file.stem} != expected:
            mismatched.append(chunk_file.stem)
    system_text = SYSTEM_FILE.read_text(encoding="utf-8", errors="replace").splitlines()[0][:20]
    return {
        "rows": len(rows),
        "duplicate_ids": len(ids) - len(set(ids)),
        "sources_not_exact": mismatched,
        "marker_present": present is None or any(f"Marker: {present} " in row["text"] for row in rows),
        "stale_markers": [name for name in gone if any(f"Marker: {name} " in row["text"] for row in rows)],
        "system_file_indexed": any(system_text in row["text"] for row in rows),
    }


def exact(check: dict[str, object]) -> bool:
    return not check["duplicate_ids"] and not check["sources_not_exact"] and bool(check["marker_present"]) and not check["stale_markers"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=ROOT / "data" / "sources")
    parser.add_argument("--delay", type=float, default=1.5, help="seconds into the embedding step to signal")
    options = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="ai_assets_interrupt_"))
    data_dir = work / "data"
    shutil.copytree(options.corpus, data_dir / "sources", ignore=shutil.ignore_patterns("*.md.lock"))
    (data_dir / "sources" / "dagster" / "passwd.md").symlink_to(SYSTEM_FILE)
    env = {key: value for key, value in os.environ.items() if not key.startswith(("AI_ASSETS_", "DAGSTER_", "OPENAI_"))}
    env |= {"AI_ASSETS_DATA_DIR": str(data_dir), "DAGSTER_HOME": str(work / "dagster_home")}
    checks: dict[str, dict[str, object]] = {}

    cold = run(env)
    checks["cold"] = check_table(data_dir, present=None, gone=[])
    edit(data_dir / "sources", "edit1")
    reference = run(env)
    checks["reference edit"] = check_table(data_dir, "edit1", [])
    edit(data_dir / "sources", "edit2")
    killed = run_and_signal(env, "airflow", options.delay, signal.SIGKILL)
    after_kill = run(env)
    checks["after kill -9"] = check_table(data_dir, "edit2", ["edit1"])
    edit(data_dir / "sources", "edit3")
    interrupted = run_and_signal(env, "airflow", options.delay, signal.SIGINT)
    after_interrupt = run(env)
    checks["after SIGINT"] = check_table(data_dir, "edit3", ["edit1", "edit2"])

    empty = work / "empty"
    empty.mkdir()
    bare_env = {key: value for key, value in env.items() if not key.startswith(("AI_ASSETS_", "DAGSTER_"))}
    from_empty = run(bare_env, empty)
    edit(data_dir / "sources", "edit4")
    first = subprocess.Popen([ai_assets(), "build"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(5)
    second = run(env)
    first.wait()

    print(f"corpus {options.corpus}, signal {options.delay} s into embedding the edited source; data dir {data_dir}")
    print("\n| build | exit | seconds | × reference edit build |\n|---|---:|---:|---:|")
    for label, build in [
        ("cold", cold), ("reference edit", reference), ("killed (kill -9)", killed), ("after kill -9", after_kill),
        ("interrupted (SIGINT)", interrupted), ("after SIGINT", after_interrupt),
        ("from an empty folder", from_empty), ("second build at once", second),
    ]:
        print(f"| {label} | {build.code} | {build.seconds:.1f} | {build.seconds / reference.seconds:.2f} |")
    print("\n| table after | rows | duplicate ids | sources not exact | last marker | stale markers | system file text |")
    print("|---|---:|---:|---|---|---|---|")
    for label, check in checks.items():
        print(
            f"| {label} | {check['rows']} | {check['duplicate_ids']} | {check['sources_not_exact'] or '-'} "
            f"| {check['marker_present']} | {check['stale_markers'] or '-'} | {check['system_file_indexed']} |"
        )
    recovered = "marked it failed, freed" in after_kill.output
    targets = [
        ("build after kill -9 completes, exact", after_kill.code == 0 and exact(checks["after kill -9"])),
        ("it said which run it ended", recovered),
        ("build after kill -9 <= 1.5 x reference edit build", after_kill.seconds <= 1.5 * reference.seconds),
        ("SIGINT: non-zero exit within 30 s", interrupted.code != 0 and (interrupted.exit_after_signal or 99) <= 30),
        ("build after SIGINT completes, exact", after_interrupt.code == 0 and exact(checks["after SIGINT"])),
        ("build after SIGINT <= 1.5 x reference edit build", after_interrupt.seconds <= 1.5 * reference.seconds),
        ("build from an empty folder exits non-zero", from_empty.code != 0),
        ("a second build at once is refused", second.code == 75),
        ("no text of the system file indexed", not any(check["system_file_indexed"] for check in checks.values())),
    ]
    print("\nsteps that ran (seconds each):")
    for label, build in [("reference edit", reference), ("after kill -9", after_kill), ("after SIGINT", after_interrupt)]:
        steps = [line.split("] ", 1)[1].replace(": ok in ", " ").split(" (run")[0] for line in build.output.splitlines()
                 if ": ok in " in line]
        print(f"  {label}: {'; '.join(steps)}")
    for label, build in [("killed", killed), ("after kill -9", after_kill), ("interrupted", interrupted)]:
        (work / f"{label.replace(' ', '_')}.log").write_text(build.output, encoding="utf-8")
    print(f"\nSIGINT: exit {interrupted.code} {interrupted.exit_after_signal:.2f} s after the signal")
    print("\n| target | result |\n|---|---|")
    for label, met in targets:
        print(f"| {label} | {'met' if met else 'MISS'} |")


if __name__ == "__main__":
    main()
