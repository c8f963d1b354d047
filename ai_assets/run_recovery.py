"""Runs whose process is gone, and the concurrency slots they hold.

`ai-assets build` executes its runs in its own process (``execute_in_process``), so no run
launcher and no daemon knows that process: when it is killed (``kill -9``, out of memory, a
reboot), its run stays STARTED and keeps its ``model_calls`` slot, and every later run waits for
that slot forever. Each run of a build therefore carries, in one tag, the build's id and its
process's identity (host, boot, pid, the process's start time, so a reused pid is not mistaken for
it, and the data dir it builds): one tag a run, so the UI's run list stays readable. The next build and
`ai-assets doctor` fail a run whose process is provably gone and free its slots. Holding the data
dir's build lock is such a proof for every other build's run on that data dir, whatever machine or
container ran it: a live worker would still hold the lock. Runs launched by
Dagster itself (UI, sensors, schedules) are left to the daemon's run monitoring
(``run_monitoring`` in ``dagster.yaml``), which also frees the slots of runs that ended without
freeing them.

Dagster's public API has no call to read or free concurrency slots (the UI's "free concurrency
slots" button is a GraphQL mutation of the webserver, and ``DagsterInstance`` marks no slot method
public); ``pool_usage`` and ``free_slots`` are the only places that reach into the instance's
storage for them.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import dagster as dg

Echo = Callable[[str], None]

# Which `ai-assets build` ran the run, and in which process (ProcessIdentity as JSON, the build's
# id first, so the run list's truncated tag shows it).
BUILD_TAG = "ai_assets/build"

# Statuses in which a run still holds, or may still claim, concurrency slots.
UNFINISHED = [
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]
FINISHED = [dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED]

ProcessState = Literal["alive", "gone", "elsewhere"]


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text(encoding="ascii").strip()
    except OSError:
        return ""


def _proc_stat(pid: int) -> list[str]:
    """Fields 3.. of /proc/<pid>/stat (state, ppid, ...), or [] where there is no /proc."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return []
    # The command name (field 2) may hold spaces and parentheses: split after its last ")".
    return stat.rsplit(")", 1)[1].split()


def _start_ticks(pid: int) -> str:
    fields = _proc_stat(pid)
    return fields[19] if len(fields) > 19 else ""  # field 22: start time, in clock ticks since boot


@dataclass(frozen=True)
class ProcessIdentity:
    """Which process, on which machine and boot, runs a run; and whether it still does."""

    host: str
    boot_id: str
    pid: int
    start: str  # the process's start time in ticks since boot ("" where unknown)
    data_dir: str = ""  # the data dir it builds (resolved): what the data dir's build lock proves dead
    build_id: str = ""  # the `ai-assets build` it runs

    @classmethod
    def current(cls, data_dir: str = "", build_id: str = "") -> ProcessIdentity:
        return cls(socket.gethostname(), _boot_id(), os.getpid(), _start_ticks(os.getpid()), data_dir, build_id)

    def tags(self) -> dict[str, str]:
        fields = asdict(self)
        return {BUILD_TAG: json.dumps({"build_id": fields.pop("build_id"), **fields})}

    @classmethod
    def from_tags(cls, tags: Mapping[str, str]) -> ProcessIdentity | None:
        """The identity a run's tag records; None for a run of no build, or of a build older than
        this tag's JSON (it recorded only its id: left to the daemon, as Dagster's own runs are)."""
        try:
            return cls(**json.loads(tags[BUILD_TAG])) if BUILD_TAG in tags else None
        except (ValueError, TypeError):
            return None

    def state(self) -> ProcessState:
        if self.host != socket.gethostname():
            return "elsewhere"  # cannot be checked from here
        if self.boot_id and _boot_id() and self.boot_id != _boot_id():
            return "gone"  # the machine restarted since
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return "gone"
        except PermissionError:
            pass  # alive, another user's
        fields = _proc_stat(self.pid)
        if fields and fields[0] == "Z":
            return "gone"  # dead, not yet reaped by its parent
        if self.start and fields and len(fields) > 19 and fields[19] != self.start:
            return "gone"  # the pid was reused by a later process
        return "alive"

    def describe(self) -> str:
        here = "this machine" if self.host == socket.gethostname() else self.host
        return f"process {self.pid} on {here}"


@dataclass(frozen=True)
class SlotClaim:
    pool: str
    run_id: str
    step_key: str
    waiting: bool  # True: the step waits for a slot; False: it holds one


@dataclass(frozen=True)
class PoolUsage:
    pool: str
    limit: int | None  # None: no limit set
    claims: list[SlotClaim]


def pool_usage(instance: dg.DagsterInstance) -> list[PoolUsage]:
    """Every pool: its limit, the slots claimed and the steps waiting for one.

    Missing public API: DagsterInstance has no public read of concurrency slots; this is the
    storage the instance itself uses (the UI's concurrency page reads the same).
    """
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        return []
    usage = []
    for pool in sorted(storage.get_concurrency_keys()):
        info = storage.get_concurrency_info(pool)
        claims = [SlotClaim(pool, slot.run_id, slot.step_key, waiting=False) for slot in info.claimed_slots]
        claims += [
            SlotClaim(pool, step.run_id, step.step_key, waiting=True)
            for step in info.pending_steps
            if step.assigned_timestamp is None
        ]
        usage.append(PoolUsage(pool, info.limit if info.limit is not None else info.slot_count, claims))
    return usage


def slot_claims(instance: dg.DagsterInstance) -> list[SlotClaim]:
    return [claim for pool in pool_usage(instance) for claim in pool.claims]


def free_slots(instance: dg.DagsterInstance, run_id: str) -> int:
    """Free every slot a run holds (and forget its waiting steps); returns how many it held.

    Missing public API: DagsterInstance has no public call to free a run's concurrency slots
    (Dagster's daemon and the webserver's GraphQL mutation call this same storage method).
    """
    held = sum(1 for claim in slot_claims(instance) if claim.run_id == run_id and not claim.waiting)
    instance.event_log_storage.free_concurrency_slots_for_run(run_id)
    return held


def unfinished_runs(instance: dg.DagsterInstance, build_id: str | None = None) -> list[dg.DagsterRun]:
    """Runs that may still hold slots; of one build only, with ``build_id``."""
    records = instance.get_run_records(dg.RunsFilter(statuses=UNFINISHED))
    runs = [record.dagster_run for record in records]
    if build_id is None:
        return runs
    return [run for run in runs if (owner := ProcessIdentity.from_tags(run.tags)) and owner.build_id == build_id]


def describe_run(instance: dg.DagsterInstance, run_id: str) -> str:
    """``run 1a2b3c4d (embed_source_job minilm|alpha, STARTED, process 123 on this machine)``."""
    run = instance.get_run_by_id(run_id)
    if run is None:
        return f"run {run_id[:8]} (deleted)"
    partition = run.tags.get("dagster/partition")
    owner = ProcessIdentity.from_tags(dict(run.tags))
    who = f"ai-assets build, {owner.describe()}" if owner else "launched by Dagster"
    return f"run {run_id[:8]} ({run.job_name}{f' {partition}' if partition else ''}, {run.status.value}, {who})"


def end_run(instance: dg.DagsterInstance, run: dg.DagsterRun, canceled: bool, message: str) -> int:
    """Record through Dagster that a run whose process is gone has ended; free its slots."""
    if canceled or run.status == dg.DagsterRunStatus.CANCELING:
        instance.report_run_canceled(run, message)
    else:
        instance.report_run_failed(run, message)
    return free_slots(instance, run.run_id)


@dataclass(frozen=True)
class LockedDataDir:
    """The data dir whose build lock this process holds, and the build it runs (if any)."""

    path: str
    build_id: str = ""


def why_abandoned(run: dg.DagsterRun, locked: LockedDataDir | None = None) -> str | None:
    """Why an unfinished run of `ai-assets build` can no longer be running, or None."""
    owner = ProcessIdentity.from_tags(dict(run.tags))
    if owner is None or run.status not in UNFINISHED:
        return None
    state = owner.state()
    if state == "gone":
        return f"its {owner.describe()} is gone"
    # A process that looks alive is trusted over the lock (a lock on a network file system may lie).
    if (
        state == "elsewhere" and locked is not None
        and owner.data_dir == locked.path and (not owner.build_id or owner.build_id != locked.build_id)
    ):
        return f"its build ({owner.describe()}) no longer holds the data dir's build lock"
    return None


def run_is_abandoned(instance: dg.DagsterInstance, run_id: str, locked: LockedDataDir | None = None) -> bool:
    run = instance.get_run_by_id(run_id)
    return run is not None and why_abandoned(run, locked) is not None


def recover(instance: dg.DagsterInstance, echo: Echo, locked: LockedDataDir | None = None) -> int:
    """Fail the runs left by a dead `ai-assets build`, and free the slots that finished runs
    still hold; say what was done, one line each. Returns how many runs or slots it fixed."""
    fixed = 0
    for run in unfinished_runs(instance):
        reason = why_abandoned(run, locked)
        if reason is None:
            continue
        description = describe_run(instance, run.run_id)
        freed = end_run(instance, run, canceled=False, message=f"Marked failed by ai-assets: {reason}.")
        echo(f"{description}: {reason}; marked it failed, freed {freed} slot(s)")
        fixed += 1
    fixed += free_slots_of_finished_runs(instance, echo)
    return fixed


def free_slots_of_finished_runs(instance: dg.DagsterInstance, echo: Echo) -> int:
    """What the daemon's ``free_slots_after_run_end_seconds`` does, for instances without a daemon."""
    holders = sorted({claim.run_id for claim in slot_claims(instance)})
    if not holders:
        return 0
    records = instance.get_run_records(dg.RunsFilter(run_ids=holders, statuses=FINISHED))
    for record in records:
        freed = free_slots(instance, record.dagster_run.run_id)
        echo(f"{describe_run(instance, record.dagster_run.run_id)} had ended but held {freed} slot(s); freed them")
    return len(records)


def waiting_for_slots(instance: dg.DagsterInstance, run_ids: Sequence[str]) -> dict[str, list[str]]:
    """For each pool in which a step of these runs waits: the other runs holding its slots."""
    claims = slot_claims(instance)
    waiting = {claim.pool for claim in claims if claim.waiting and claim.run_id in run_ids}
    return {
        pool: sorted({c.run_id for c in claims if c.pool == pool and not c.waiting and c.run_id not in run_ids})
        for pool in sorted(waiting)
    }
