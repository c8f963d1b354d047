"""`ai-assets doctor` on an instance where a real Dagster run's process was killed holding a slot."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from ai_assets.cli import INSTANCE_YAML
from ai_assets.cli import main as cli_main
from ai_assets.run_recovery import ProcessIdentity, slot_claims

# A run of a one-asset job in the model_calls pool, tagged as `ai-assets build` tags its runs,
# that holds its slot until it is killed.
STUCK_RUN = """
import dataclasses, sys, time
import dagster as dg
from ai_assets.run_recovery import ProcessIdentity

@dg.asset(pool="model_calls")
def stuck() -> None:
    print("holding", flush=True)
    time.sleep(600)

identity = ProcessIdentity.current(sys.argv[2] if sys.argv[2:] else "")
if sys.argv[1] != "here":
    identity = dataclasses.replace(identity, host="another-machine")
tags = identity.tags()
job = dg.Definitions(assets=[stuck], jobs=[dg.define_asset_job("stuck_job", [stuck])]).resolve_job_def("stuck_job")
job.execute_in_process(instance=dg.DagsterInstance.get(), tags=tags)
"""


def pid_of(run: dg.DagsterRun) -> int:
    owner = ProcessIdentity.from_tags(run.tags)
    assert owner is not None
    return owner.pid


def killed_run_holding_a_slot(where: str, env: dict[str, str], *data_dir: str) -> dg.DagsterRun:
    process = subprocess.Popen(
        [sys.executable, "-c", STUCK_RUN, where, *data_dir],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    assert process.stdout is not None and process.stdout.readline() == "holding\n"
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)
    (run,) = [
        record.dagster_run
        for record in dg.DagsterInstance.get().get_run_records(dg.RunsFilter(job_name="stuck_job"))
        if record.dagster_run.status == dg.DagsterRunStatus.STARTED
    ]
    return run


def test_doctor_finds_a_killed_run_holding_its_slot_and_fix_frees_it(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text(INSTANCE_YAML, encoding="utf-8")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("AI_ASSETS_DATA_DIR", str(data_dir))
    env = {**os.environ}
    instance = dg.DagsterInstance.get()

    stuck = killed_run_holding_a_slot("here", env)
    assert cli_main(["doctor"]) == 1
    report = capsys.readouterr().out
    assert f"runs         PROBLEM: run {stuck.run_id[:8]} (stuck_job, STARTED, ai-assets build" in report
    assert f"its process {pid_of(stuck)} on this machine is gone" in report
    assert f"pools        ok: model_calls: 1 of 1 slot(s) in use, held by run {stuck.run_id[:8]}" in report
    assert "1 problem(s); `ai-assets doctor --fix` repairs those it can prove" in report

    assert cli_main(["doctor", "--fix"]) == 0
    fixed = capsys.readouterr().out
    assert "marked it failed, freed 1 slot(s)" in fixed and "no problem found" in fixed
    assert instance.get_run_by_id(stuck.run_id).status == dg.DagsterRunStatus.FAILURE
    assert slot_claims(instance) == []

    # A run of another machine cannot be checked from here: named, and ended only when asked to.
    elsewhere = killed_run_holding_a_slot("elsewhere", env)
    assert cli_main(["doctor", "--fix"]) == 0
    noted = capsys.readouterr().out
    assert f"process {pid_of(elsewhere)} on another-machine): cannot be checked from here" in noted
    assert f"`ai-assets doctor --fail-run {elsewhere.run_id}`" in noted
    assert [claim.run_id for claim in slot_claims(instance)] == [elsewhere.run_id]

    assert cli_main(["doctor", "--fail-run", elsewhere.run_id]) == 0
    assert "marked failed, freed 1 slot(s)" in capsys.readouterr().out
    assert instance.get_run_by_id(elsewhere.run_id).status == dg.DagsterRunStatus.FAILURE
    assert slot_claims(instance) == []
    assert cli_main(["doctor", "--fail-run", elsewhere.run_id]) == 2  # it has ended already
    assert "has already ended" in capsys.readouterr().err

    # Another machine's build of this very data dir: with no build holding the data dir's lock,
    # its run cannot be running any more (its worker would hold the lock).
    same_data_dir = killed_run_holding_a_slot("elsewhere", env, str(data_dir.resolve()))
    assert cli_main(["doctor"]) == 1
    assert "no longer holds the data dir's build lock; it holds its slots until it is failed" in capsys.readouterr().out
    assert cli_main(["doctor", "--fix"]) == 0
    assert "no longer holds the data dir's build lock; marked it failed, freed 1 slot(s)" in capsys.readouterr().out
    assert instance.get_run_by_id(same_data_dir.run_id).status == dg.DagsterRunStatus.FAILURE
