"""`ai-assets build`: materialize what is missing or stale, for every source and embedder.

The command the user runs supervises (``build_process``): it checks the data dir, takes its build
lock, ends the runs a killed build left behind, and runs the build in a worker process, which it
stops on Ctrl-C or SIGTERM. The worker is the same command with hidden options.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import uuid

from ai_assets.cli.common import check_storage, print_leaderboard
from ai_assets.cli.instance import dagster_instance
from ai_assets.settings import Settings

echo = functools.partial(print, flush=True)


def register(commands: argparse._SubParsersAction) -> None:
    build = commands.add_parser("build", help="materialize what is missing or stale, for every source and embedder")
    build.add_argument("--source", action="append", help="only this source (repeatable)")
    build.add_argument(
        "--force", action="store_true", help="run every step, even those whose assets are up to date"
    )
    build.add_argument(
        "--wait", action="store_true", help="if another build runs on this data dir, start when it ends (default: refuse)"
    )
    # The worker process of a build (see build_process): not for users.
    build.add_argument("--build-id", help=argparse.SUPPRESS)
    build.add_argument("--status-fd", type=int, help=argparse.SUPPRESS)
    build.add_argument("--supervisor-pid", type=int, help=argparse.SUPPRESS)
    build.set_defaults(
        handler=build_command,
        starting="ai-assets build: loading the knowledge base's settings and the Dagster instance ...",
    )


def build_command(args: argparse.Namespace, settings: Settings) -> int:
    if args.status_fd is not None:
        return worker_build(args, settings)
    from ai_assets.build_process import (
        EXIT_BUSY,
        BuildBusy,
        Interrupted,
        build_lock,
        require_sources_folder,
        signals_interrupt,
        supervise,
    )
    from ai_assets.run_recovery import LockedDataDir, recover

    check_storage(settings)
    require_sources_folder(settings.sources_location, settings.data_dir)
    worker_args = [
        "build", *(f"--source={source}" for source in args.source or []), *(["--force"] if args.force else []),
        *([f"--kb={args.kb}"] if args.kb else []),
    ]
    try:
        lock_dir = settings.machine_state_dir
        with signals_interrupt() as gate, build_lock(lock_dir, settings.data_dir, args.wait, echo) as lock:
            locked = LockedDataDir(settings.data_dir, build_id=uuid.uuid4().hex)
            with gate.held():
                instance = dagster_instance(settings, create=True)
                recover(instance, echo, locked)
            return supervise(instance, worker_args, lock, locked, gate, echo)
    except BuildBusy as busy:
        print(f"ai-assets: error: {busy}", file=sys.stderr)
        return EXIT_BUSY
    except Interrupted as interrupted:  # before the worker started: nothing ran
        print(f"ai-assets: interrupted by {interrupted} before the build started", file=sys.stderr)
        return 128 + interrupted.signum


def worker_build(args: argparse.Namespace, settings: Settings) -> int:
    # Said before the imports: Dagster and the asset graph take seconds to load (tens on a busy machine).
    print(f"data: {settings.data_dir}  lancedb: {settings.resolved_lancedb_uri}  embedders: {', '.join(settings.embedders)}")
    print("loading Dagster and the asset graph ...", flush=True)
    from ai_assets.build import run_build
    from ai_assets.build_process import StepState, die_with_supervisor, status_writer
    from ai_assets.build_progress import BuildProgress
    from ai_assets.core.embedding.registry import local_backend_line
    from ai_assets.graph import build_definitions
    from ai_assets.history import evaluation_leaderboard

    die_with_supervisor(args.supervisor_pid)
    on_step = status_writer(args.status_fd)
    check_storage(settings)
    instance = dagster_instance(settings, create=True)
    print(f"dagster instance: {os.environ['DAGSTER_HOME']}; finding what is missing or stale ...", flush=True)
    backend = local_backend_line(settings.embedders, settings.local_precision)
    if backend:
        print(backend, flush=True)
    with BuildProgress() as progress:

        def step_changed(state: StepState) -> None:
            on_step(state)
            progress.on_step(state)

        report = run_build(
            build_definitions(settings), instance, settings.embedders, args.source, echo=progress.echo,
            force=args.force, build_id=args.build_id, on_step=step_changed, data_dir=settings.data_dir,
            names=settings.names,
        )
    if not report.ok:
        print(f"build failed: {len(report.failures)} of {len(report.runs)} runs failed:", file=sys.stderr)
        for failure in report.failures:
            print(f"  - {failure}", file=sys.stderr)
        return 1
    left_out = ""
    if report.quarantined_files or report.skipped_files:
        left_out = f"; {report.quarantined_files} file(s) quarantined and {report.skipped_files} skipped (see above)"
    print(f"build complete: {len(report.runs)} runs succeeded, {len(report.up_to_date)} steps up to date{left_out}")
    print_leaderboard(evaluation_leaderboard(instance, settings.names, settings.embedders))
    return 0
