"""`ai-assets doctor`: what stands in the way of the next build, and ``--fix`` for what can be proven.

It checks the data dir, the Dagster instance and its ``dagster.yaml``, whether a build is running,
unfinished runs and whose process runs them, the concurrency pools (who holds each slot, who
waits), and each embedder's table against the version its index was built at. ``--fix`` ends the
runs of `ai-assets build` whose process is gone and frees the slots of runs that have ended (what
the next build does anyway); ``--fail-run`` ends a run you know is dead but that cannot be checked
from here (another machine, or a run launched by Dagster whose worker is gone).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ai_assets.cli.common import CliError
from ai_assets.settings import Settings


def register(commands: argparse._SubParsersAction) -> None:
    doctor = commands.add_parser(
        "doctor", help="check the data dir, the instance, runs left behind and pool slots; --fix repairs what it can"
    )
    doctor.add_argument(
        "--fix", action="store_true",
        help="fail the runs whose `ai-assets build` process is gone, free the slots of runs that ended",
    )
    doctor.add_argument(
        "--fail-run", action="append", metavar="RUN_ID",
        help="mark this unfinished run failed and free its slots (its process is gone; repeatable)",
    )
    doctor.set_defaults(handler=doctor_command)


class Findings:
    def __init__(self) -> None:
        self.problems = 0

    def ok(self, topic: str, text: str) -> None:
        print(f"{topic:<12} ok: {text}")

    def note(self, topic: str, text: str) -> None:
        print(f"{topic:<12} note: {text}")

    def problem(self, topic: str, text: str) -> None:
        self.problems += 1
        print(f"{topic:<12} PROBLEM: {text}")


def doctor_command(args: argparse.Namespace, settings: Settings) -> int:
    import os

    from ai_assets.cli.instance import dagster_instance

    findings = Findings()
    findings.ok("settings", f"data dir {settings.data_dir}, embedders {', '.join(settings.embedders)}")
    if not check_sources(settings, findings):
        return 1
    check_lock(settings, findings)
    try:
        instance = dagster_instance(settings, create=False)
    except CliError as error:
        findings.problem("instance", str(error))
        return 1
    check_instance_yaml(Path(os.environ["DAGSTER_HOME"]), findings)
    if args.fail_run:
        fail_runs(instance, args.fail_run)
    if args.fix:
        fix(instance, settings)
    check_runs(instance, settings, findings)
    check_pools(instance, findings)
    check_tables(settings, instance, findings)
    if findings.problems:
        hint = "" if args.fix else "; `ai-assets doctor --fix` repairs those it can prove"
        print(f"{findings.problems} problem(s){hint}")
        return 1
    print("no problem found")
    return 0


def check_sources(settings: Settings, findings: Findings) -> bool:
    from ai_assets.build_process import no_sources_message
    from ai_assets.core.documents.folders import SourcesUnavailable
    from ai_assets.core.documents.object_folders import source_folders_at

    try:
        names = source_folders_at(settings.sources_location).source_names()
    except SourcesUnavailable as error:
        findings.problem("sources", no_sources_message(error, settings.data_dir))
        return False
    if names:
        findings.ok("sources", f"{len(names)} folder(s) under {settings.sources_location}: {', '.join(names)}")
    else:
        findings.problem("sources", f"no source folder under {settings.sources_location}")
    return True


def check_lock(settings: Settings, findings: Findings) -> None:
    from ai_assets.build_process import lock_holder

    holder = lock_holder(settings.machine_state_dir)
    if holder:
        findings.note("build", f"a build is running on this data dir ({holder})")
    else:
        findings.ok("build", "no build running on this data dir")


def check_instance_yaml(home: Path, findings: Findings) -> None:
    import yaml

    config_path = home / "dagster.yaml"
    config = yaml.safe_load(config_path.read_text(encoding="utf-8")) if config_path.exists() else None
    config = config or {}
    monitoring = config.get("run_monitoring") or {}
    if monitoring.get("enabled") and monitoring.get("free_slots_after_run_end_seconds"):
        findings.ok("instance", f"{home} (run monitoring frees the slots of ended runs)")
    else:
        findings.note(
            "instance",
            f"{config_path} has no run_monitoring with free_slots_after_run_end_seconds: the daemon will not free "
            "the slots of runs that ended without freeing them (see docs/operations.md)",
        )


def fix(instance, settings: Settings) -> None:
    """What the next build does first; holding the data dir's lock meanwhile proves every other
    build's unfinished run on it dead (unless a build is running, then pids are the only proof)."""
    from ai_assets.build_process import BuildBusy, build_lock
    from ai_assets.run_recovery import LockedDataDir, recover

    def echo(line: str) -> None:
        print(f"{'fixed':<12} {line}")

    try:
        with build_lock(settings.machine_state_dir, settings.data_dir, wait=False, echo=echo):
            fixed = recover(instance, echo, LockedDataDir(settings.data_dir))
    except BuildBusy:
        fixed = recover(instance, echo)
    if not fixed:
        echo("nothing to fix")


def fail_runs(instance, run_ids: list[str]) -> None:
    from ai_assets.run_recovery import UNFINISHED, describe_run, end_run

    for run_id in run_ids:
        run = instance.get_run_by_id(run_id)
        if run is None:
            raise CliError(f"no run {run_id!r} in this instance")
        if run.status not in UNFINISHED:
            raise CliError(f"{describe_run(instance, run_id)} has already ended")
        description = describe_run(instance, run_id)
        freed = end_run(instance, run, canceled=False, message="Marked failed with `ai-assets doctor --fail-run`.")
        print(f"{'fixed':<12} {description}: marked failed, freed {freed} slot(s)")


def check_runs(instance, settings: Settings, findings: Findings) -> None:
    from ai_assets.build_process import lock_holder
    from ai_assets.run_recovery import (
        LockedDataDir,
        ProcessIdentity,
        describe_run,
        unfinished_runs,
        why_abandoned,
    )

    runs = unfinished_runs(instance)
    if not runs:
        findings.ok("runs", "no unfinished run")
    # With no build holding the data dir's lock, no build's run on it can still be running.
    unlocked = None if lock_holder(settings.machine_state_dir) else LockedDataDir(settings.data_dir)
    for run in runs:
        description = describe_run(instance, run.run_id)
        owner = ProcessIdentity.from_tags(dict(run.tags))
        abandoned = why_abandoned(run, unlocked)
        if abandoned:
            findings.problem("runs", f"{description}: {abandoned}; it holds its slots until it is failed")
        elif owner is not None and owner.state() == "alive":
            findings.ok("runs", f"{description}: running")
        else:
            findings.note(
                "runs",
                f"{description}: cannot be checked from here; if its process is gone, "
                f"`ai-assets doctor --fail-run {run.run_id}`",
            )


def check_pools(instance, findings: Findings) -> None:
    from ai_assets.run_recovery import FINISHED, describe_run, pool_usage

    for pool in pool_usage(instance):
        held = sorted({claim.run_id for claim in pool.claims if not claim.waiting})
        waiting = sorted({claim.run_id for claim in pool.claims if claim.waiting})
        text = f"{pool.pool}: {len([c for c in pool.claims if not c.waiting])} of {pool.limit} slot(s) in use"
        if held:
            text += ", held by " + "; ".join(describe_run(instance, run_id) for run_id in held)
        if waiting:
            text += f"; {len(waiting)} run(s) waiting: " + ", ".join(run_id[:8] for run_id in waiting)
        ended = [run_id for run_id in held if (run := instance.get_run_by_id(run_id)) is None or run.status in FINISHED]
        if ended:
            findings.problem("pools", f"{text}; held by run(s) that ended: {', '.join(r[:8] for r in ended)}")
        else:
            findings.ok("pools", text)


def check_tables(settings: Settings, instance, findings: Findings) -> None:
    from ai_assets.history import latest_metadata
    from ai_assets.resources import embedders_from_settings, lancedb_from_settings

    specs = embedders_from_settings(settings)
    lancedb = lancedb_from_settings(settings)
    for name in settings.embedders:
        try:
            table = lancedb.table(specs.spec(name), create=False)
        except Exception as error:  # noqa: BLE001 - any reason it cannot be opened is the finding
            findings.note("tables", f"{name}: no table yet or it cannot be opened ({type(error).__name__}); build it")
            continue
        indexed = (latest_metadata(instance, settings.names.key("search_index"), name) or {}).get("table_version")
        text = f"{table.name}: {table.count_rows()} rows, version {table.version}, indexed at version {indexed}"
        if indexed == table.version:
            findings.ok("tables", text)
        else:
            findings.note("tables", f"{text}: the next build re-indexes it")
