"""The persistent Dagster instance the CLI runs against (``DAGSTER_HOME``)."""

from __future__ import annotations

import os
from pathlib import Path

from ai_assets.cli.common import CliError
from ai_assets.settings import Settings

INSTANCE_YAML = """\
# Written by `ai-assets build`; docs/deployment.md has a PostgreSQL-backed production instance.
telemetry:
  enabled: false
# Freshness policies (search_index, evaluations) are evaluated by the daemon only when enabled.
freshness:
  enabled: true
# The model_calls pool (embedding and evaluation steps) runs one step at a time across all
# runs: the local model already uses every core. Raise it for a remote API.
concurrency:
  pools:
    default_limit: 1
# The daemon (`dagster dev`, `dagster-daemon run`) frees the pool slots of runs that ended without
# freeing them, and marks canceled a run that stays CANCELING for 3 minutes. Runs of
# `ai-assets build` whose process is gone are ended by the next build or `ai-assets doctor --fix`.
# Runs echo their events to the terminal of `dg dev` (or the daemon) at INFO: the steps' own
# messages, not a DEBUG line per step, output and resource. The UI keeps every event regardless.
python_logs:
  python_log_level: INFO
run_monitoring:
  enabled: true
  free_slots_after_run_end_seconds: 60
"""


def dagster_instance(settings: Settings, create: bool):
    """The persistent Dagster instance: ``DAGSTER_HOME``, else ``Settings.default_dagster_home``."""
    import dagster as dg

    home = Path(os.environ.get("DAGSTER_HOME") or settings.default_dagster_home).resolve()
    if not home.is_dir():
        if not create:
            raise CliError(f"no Dagster instance at {home}: run `ai-assets build` first (or set DAGSTER_HOME)")
        home.mkdir(parents=True)
    config = home / "dagster.yaml"
    if create and not config.exists():
        config.write_text(INSTANCE_YAML, encoding="utf-8")
    os.environ["DAGSTER_HOME"] = str(home)
    return dg.DagsterInstance.get()
