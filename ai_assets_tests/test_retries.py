"""Retry policies, for real: a transient model failure is retried, a permanent one fails once."""

from __future__ import annotations

import dagster as dg
import lancedb
import pytest

from ai_assets.build import root_cause, run_build
from ai_assets.core.embedding.base import MINILM, OPENAI_SMALL, embedder_spec
from ai_assets.core.embedding.local import SentenceTransformerEmbedder
from ai_assets.core.embedding.openai_embedder import OpenAIEmbedder, OpenAISettings
from ai_assets.core.store.tables import open_table
from ai_assets.definitions import build_definitions
from ai_assets.settings import Settings
from ai_assets_tests.system import free_port


def step_events(instance: dg.DagsterInstance, run_id: str, event_type: dg.DagsterEventType) -> list:
    return [
        record.event_log_entry
        for record in instance.get_records_for_run(run_id, of_type=event_type).records
    ]


def embed_runs(instance: dg.DagsterInstance) -> list[dg.DagsterRun]:
    return [run for run in instance.get_runs() if run.job_name == "embed_source_job"]


def test_transient_model_failure_is_retried_and_succeeds(
    settings: Settings, instance: dg.DagsterInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = SentenceTransformerEmbedder._run_model
    calls = {"count": 0}

    def flaky(self, token_ids):
        calls["count"] += 1
        if calls["count"] == 1:
            raise ConnectionError("injected: model server went away")
        return original(self, token_ids)

    monkeypatch.setattr(SentenceTransformerEmbedder, "_run_model", flaky)
    report = run_build(build_definitions(settings), instance, settings.embedders, echo=lambda _: None)
    assert report.ok, report.failures
    retried = [
        run for run in embed_runs(instance)
        if step_events(instance, run.run_id, dg.DagsterEventType.STEP_UP_FOR_RETRY)
    ]
    assert len(retried) == 1
    assert step_events(instance, retried[0].run_id, dg.DagsterEventType.STEP_RESTARTED)
    assert instance.get_run_by_id(retried[0].run_id).status == dg.DagsterRunStatus.SUCCESS


def test_permanent_failure_fails_once_with_a_clear_message(
    settings: Settings, instance: dg.DagsterInstance
) -> None:
    # A table written by a 768-dimension model sits where minilm's table should be.
    other_model = MINILM.model_copy(update={"dimensions": 768})
    open_table(lancedb.connect(settings.resolved_lancedb_uri), other_model)
    report = run_build(build_definitions(settings), instance, settings.embedders, echo=lambda _: None)
    assert not report.ok
    assert any("dimensions: table has '768', embedder has '384'" in failure for failure in report.failures)
    # Nothing is indexed or evaluated over the failed embeddings.
    assert [job for job, _, _, _ in report.runs if job == "index_and_evaluate_job"] == []
    for run in embed_runs(instance):
        assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.FAILURE
        assert not step_events(instance, run.run_id, dg.DagsterEventType.STEP_UP_FOR_RETRY)


def test_a_step_failing_after_its_retries_is_reported_by_its_cause_not_by_the_retry_count() -> None:
    port = free_port()  # nothing listens there
    settings = OpenAISettings(api_key=None, base_url=f"http://127.0.0.1:{port}/v1", timeout_seconds=1, max_retries=0)
    embedder = OpenAIEmbedder(embedder_spec(OPENAI_SMALL.name, 8), settings)

    @dg.asset(retry_policy=dg.RetryPolicy(max_retries=1))
    def unreachable() -> None:
        embedder.embed(["a text"])

    result = dg.materialize([unreachable], raise_on_error=False)
    (failure,) = [event for event in result.all_events if event.is_step_failure]
    assert failure.step_failure_data.error.message.startswith("Exceeded max_retries of 1")  # what Dagster says
    assert root_cause(failure.step_failure_data.error) == (
        f"text-embedding-3-small: cannot connect to http://127.0.0.1:{port}/v1: connection refused, after retries "
        "(exceeded max_retries of 1)"
    )
