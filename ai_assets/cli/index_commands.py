"""`ai-assets promote` and `ai-assets rollback`: what each embedder serves, and moving it.

Search, ask and the answer evaluation read the version tagged ``served``. A build promotes a
candidate that passes every blocking check; `promote` re-evaluates the pending candidate (and
serves it if it passes, even one a rollback held back), `promote --force` serves it without the
gate, `rollback` moves the pointer back. Each move of the pointer by hand is recorded as a
materialization of ``served_index`` with who moved it, when and why; no version is deleted.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
from datetime import UTC, datetime

from ai_assets.cli.common import CliError, embedders, enabled_embedder
from ai_assets.settings import Settings


def register(commands: argparse._SubParsersAction) -> None:
    promote = commands.add_parser(
        "promote", help="re-evaluate an embedder's candidate version and serve it if it passes; --list: what is served"
    )
    promote.add_argument("--embedder", help="embedder name (default: every enabled one; with --force, the first)")
    action = promote.add_mutually_exclusive_group()
    action.add_argument("--list", action="store_true", help="served, candidate and latest versions, and why")
    action.add_argument("--force", action="store_true", help="serve the candidate without its quality gate")
    promote.add_argument("--reason", help="why (required with --force; recorded)")
    promote.add_argument("--json", action="store_true", help="with --list: print JSON")
    promote.set_defaults(handler=promote_command)

    rollback = commands.add_parser("rollback", help="serve an earlier version of an embedder's table")
    rollback.add_argument("--embedder", help="embedder name (default: the first enabled)")
    target = rollback.add_mutually_exclusive_group()
    target.add_argument("--to", type=int, metavar="VERSION", help="version to serve (default: the one served before)")
    target.add_argument("--list", action="store_true", help="list the table's versions")
    rollback.add_argument("--reason", help="why (required to move; recorded)")
    rollback.set_defaults(handler=rollback_command)


def open_latest(settings: Settings, embedder: str):
    from ai_assets.resources import lancedb_from_settings

    return lancedb_from_settings(settings).table(embedders(settings).spec(embedder), create=False)


def operator() -> str:
    """Who moves the pointer: the OS user."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (some containers)
        return os.environ.get("USER") or "unknown"


def record_move(settings: Settings, instance, embedder: str, state, action: str, moved_from, reason: str) -> None:
    """A materialization of served_index: where the pointer is now, who moved it, when and why."""
    import dagster as dg

    from ai_assets.assets.evaluations import SERVED_INDEX, serving_metadata

    user, at = operator(), datetime.now(UTC).isoformat(timespec="seconds")
    instance.report_runless_asset_event(
        dg.AssetMaterialization(
            settings.names.key(SERVED_INDEX),
            partition=embedder,
            description=f"{action} by {user}: {reason}",
            metadata={
                **serving_metadata(state, action=action),
                "moved_from": moved_from if moved_from is not None else "none",
                "moved_to": state.served,
                "moved_by": user,
                "moved_at": at,
                "reason": reason,
                "promoted": action == "forced promotion",
                "decision": f"{action} by {user} at {at}: {reason}",
            },
        )
    )


def require_reason(reason: str | None, flag: str) -> str:
    if not reason or not reason.strip():
        raise CliError(f"{flag} needs --reason TEXT: why the served version moves (it is recorded)")
    return reason.strip()


def rollback_command(args: argparse.Namespace, settings: Settings) -> int:
    from ai_assets.cli.instance import dagster_instance
    from ai_assets.core.store.versions import move_served, serving_state

    embedder = enabled_embedder(settings, args.embedder)
    table = open_latest(settings, embedder)
    state = serving_state(table)
    if args.list:
        print_versions(table, state)
        return 0
    reason = require_reason(args.reason, "rollback")
    target = args.to if args.to is not None else state.previous_served()
    if target is None:
        raise CliError(f"{table.name} has no earlier served version to roll back to; pick one with --to (see --list)")
    if target == state.served:
        raise CliError(f"{table.name} v{target} is already served")
    instance = dagster_instance(settings, create=False)  # checked first: a move is never unrecorded
    after = move_served(table, target, hold_up_to=state.latest)
    record_move(settings, instance, embedder, after, "rollback", state.served, reason)
    was = f"v{state.served}" if state.served is not None else "nothing"
    print(
        f"{table.name}: now serving v{target} (was {was}); recorded as a served_index materialization.\n"
        f"Candidates up to v{state.latest} are held back: builds serve the next candidate made from new "
        f"writes; `ai-assets promote --embedder {embedder}` evaluates and serves the held one."
    )
    return 0


def print_versions(table, state) -> None:
    for entry in sorted(table.list_versions(), key=lambda item: item["version"]):
        version = entry["version"]
        labels = [label for key, label in ((state.served, "served"), (state.candidate, "candidate")) if key == version]
        if version == state.latest:
            labels.append("latest")
        if version in state.history and version != state.served:
            labels.append("served before")
        if state.held == version:
            labels.append("held")
        rows = entry["metadata"].get("total_rows", "?")
        print(f"{version:>5}  {entry['timestamp']:%Y-%m-%d %H:%M:%S}  rows {rows:>7}  {', '.join(labels)}".rstrip())


def promote_command(args: argparse.Namespace, settings: Settings) -> int:
    from ai_assets.cli.instance import dagster_instance

    names = [enabled_embedder(settings, args.embedder)] if args.embedder or args.force else list(settings.embedders)
    if args.list:
        instance = dagster_instance(settings, create=False)
        statuses = [serving_status(settings, instance, name) for name in names]
        if args.json:
            print(json.dumps(statuses, indent=2, default=str))
        else:
            for status in statuses:
                print_status(status)
        return 0
    if args.force:
        return force_promotion(settings, names[0], require_reason(args.reason, "promote --force"))
    return evaluate_and_promote(settings, names)


def force_promotion(settings: Settings, embedder: str, reason: str) -> int:
    from ai_assets.cli.instance import dagster_instance
    from ai_assets.core.store.versions import move_served, serving_state

    table = open_latest(settings, embedder)
    state = serving_state(table)
    if state.candidate is None or state.candidate == state.served:
        raise CliError(f"{table.name} has no candidate waiting (serving v{state.served}); run `ai-assets build`")
    instance = dagster_instance(settings, create=False)
    after = move_served(table, state.candidate)
    record_move(settings, instance, embedder, after, "forced promotion", state.served, reason)
    print(f"{table.name}: now serving v{state.candidate} without its quality gate (was v{state.served}); recorded.")
    return 0


def evaluate_and_promote(settings: Settings, names: list[str]) -> int:
    """Run each embedder's index job: index (the candidate), evaluate it, serve it if it passes."""
    from ai_assets.assets.evaluations import SERVE_STEP, SERVED_INDEX
    from ai_assets.build import QUIET_RUN_CONFIG, _failure_message
    from ai_assets.cli.instance import dagster_instance
    from ai_assets.graph import build_definitions
    from ai_assets.history import latest_metadata

    instance = dagster_instance(settings, create=False)
    job = build_definitions(settings).resolve_job_def(settings.names.index_job)
    serve_op = settings.names.name(SERVE_STEP)
    failed = 0
    for name in names:
        print(f"{name}: evaluating the candidate ...")
        result = job.execute_in_process(
            instance=instance,
            partition_key=name,
            raise_on_error=False,
            run_config={**QUIET_RUN_CONFIG, "ops": {serve_op: {"config": {"override_hold": True}}}},
        )
        served = latest_metadata(instance, settings.names.key(SERVED_INDEX), name) or {}
        if served.get("run_id") == result.run_id:
            print(f"{name}: {served.get('status')}: {served.get('decision')}")
        for evaluation in result.get_asset_check_evaluations():
            if not evaluation.passed:
                print(f"    check {evaluation.asset_key.to_user_string()}:{evaluation.check_name} failed: {evaluation.description}")
        if not result.success:
            failed += 1
            print(f"{name}: run {result.run_id} failed: {_failure_message(result)}")
    return 1 if failed else 0


def serving_status(settings: Settings, instance, embedder: str) -> dict:
    """The tags of the embedder's table and what the latest served_index record says about them."""
    from ai_assets.assets.evaluations import SERVED_INDEX
    from ai_assets.core.store.versions import serving_state
    from ai_assets.history import latest_materialization, metadata_values
    from ai_assets.metadata_tables import CANDIDATE_PREFIX, SERVED_PREFIX, read_scores

    state = serving_state(open_latest(settings, embedder))
    record = latest_materialization(instance, settings.names.key(SERVED_INDEX), embedder)
    metadata = metadata_values(record) if record else {}
    return {
        "embedder": embedder,
        "table": state.table,
        "served": state.served,
        "candidate": state.candidate,
        "latest": state.latest,
        "held_up_to": state.held,
        "recently_served": list(state.history),
        "status": state.describe(),
        "last_decision": metadata.get("decision"),
        "gate": metadata.get("gate"),
        "decided_at": datetime.fromtimestamp(record.timestamp, UTC).isoformat(timespec="seconds") if record else None,
        "run_id": record.run_id if record else None,
        "candidate_results": read_scores(metadata, CANDIDATE_PREFIX),
        "served_results": read_scores(metadata, SERVED_PREFIX),
    }


def print_status(status: dict) -> None:
    print(status["status"])
    if status["last_decision"]:
        by = f"run {status['run_id'][:8]}" if status["run_id"] else "by hand"
        print(f"  last decision ({status['decided_at']}, {by}): {status['last_decision']}")
    if status["held_up_to"] is not None:
        print(f"  held: candidates up to v{status['held_up_to']} wait for `ai-assets promote`")
    print(f"  recently served: {', '.join(f'v{v}' for v in status['recently_served']) or 'none'}")
    # The served version's nDCG@10, beside the waiting candidate's when there is one.
    served = {(row["eval_set"], row["mode"]): row for row in status["served_results"]}
    candidate = {(row["eval_set"], row["mode"]): row for row in status["candidate_results"]}

    def score(rows: dict, key: tuple[str, str]) -> str:
        return f"{rows[key]['ndcg@10']:.4f}" if key in rows else "-"

    if served or candidate:
        served_label = f"served v{status['served']}" if status["served"] is not None else "served"
        print(f"  {'nDCG@10':<18} {served_label:<11} candidate" if candidate else f"  {'nDCG@10':<18} {served_label}")
        for key in sorted(served.keys() | candidate.keys()):
            line = f"  {key[0] + '/' + key[1]:<18} {score(served, key):<11}"
            print(f"{line} {score(candidate, key)}" if candidate else line.rstrip())
