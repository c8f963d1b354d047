from pathlib import Path

import dagster as dg

from ai_assets.core.evaluation.answers import AnswerResult, evaluate_answers, read_answers
from ai_assets.core.evaluation.beir import EvalSet, EvalSetError, load_eval_set
from ai_assets.core.evaluation.retrieval import RetrievalScore, evaluate_retrieval, scores_markdown
from ai_assets.core.quality import quality_gate_failures
from ai_assets.core.retrieval.search import Searcher
from ai_assets.core.store.tables import source_row_counts
from ai_assets.history import latest_metadata
from ai_assets.partitions import EmbedderPartitions
from ai_assets.resources import ChatModelResource, Embedders, LanceDBResource, QualityGate, SourceFiles
from ai_assets.retries import MODEL_CALL_RETRY, MODEL_POOL, permanent_errors_fail_once

GATED_METRIC = "ndcg@10"
# Metadata key: the eval sets' files an evaluation scored, so `ai-assets build` re-evaluates when they change.
EVAL_SETS_FINGERPRINT = "eval_sets_fingerprint"


def evaluation_asset_arguments(
    partitions: EmbedderPartitions, freshness: dg.FreshnessPolicy, automation: dg.AutomationCondition
) -> dict:
    """What every per-embedder evaluation asset shares: it reads the index, calls the model, is watched."""
    return {
        "automation_condition": automation,
        "partitions_def": partitions.embedder,
        "deps": ["search_index"],
        "group_name": "evaluation",
        "kinds": set(partitions.model_kinds),
        "code_version": "1",
        "retry_policy": MODEL_CALL_RETRY,
        "pool": MODEL_POOL,
        "freshness_policy": freshness,
    }


class RetrievalEvaluationConfig(dg.Config):
    allow_no_eval_sets: bool = False
    """Let an evaluation that finds no eval set pass where the previous one scored some (off: it fails)."""


def build_retrieval_evaluation(partitions: EmbedderPartitions, freshness: dg.FreshnessPolicy) -> dg.AssetsDefinition:
    @dg.asset(
        # Every index change is scored at once: its blocking quality gate is what flags a bad change.
        **evaluation_asset_arguments(partitions, freshness, dg.AutomationCondition.eager()),
        check_specs=[
            dg.AssetCheckSpec(
                "retrieval_quality_gate",
                asset="retrieval_evaluation",
                partitions_def=partitions.embedder,
                blocking=True,
                description=(
                    "Blocking: nDCG@10 of every eval set and mode is above the configured floor and did not "
                    "drop more than the configured margin since the previous evaluation."
                ),
            )
        ],
        description=(
            "Retrieval quality of the embedder's index on every eval set under data/eval/ (BEIR "
            "layout): nDCG@10, recall@10/100 and MRR@10 per search mode (dense, fts, hybrid), with "
            "query latency p50/p95 including query encoding. Documents are ranked by their best chunk."
        ),
    )
    def retrieval_evaluation(
        context: dg.AssetExecutionContext,
        config: RetrievalEvaluationConfig,
        source_files: SourceFiles,
        embedders: Embedders,
        lancedb: LanceDBResource,
        quality_gate: QualityGate,
    ):
        with permanent_errors_fail_once():
            embedder = embedders.get(context.partition_key)
            table = lancedb.table(embedder.spec)
        indexed_sources = set(source_row_counts(table))
        eval_sets_fingerprint = source_files.eval_sets_fingerprint()
        searcher = Searcher(table, embedder)
        scores: list[RetrievalScore] = []
        skipped: list[str] = []
        eval_set_dirs = source_files.eval_set_dirs()
        for path in eval_set_dirs:
            eval_set = load_eval_set_or_fail(path)
            missing = sorted(set(eval_set.sources) - indexed_sources)
            if missing:
                skipped.append(f"{eval_set.name} (sources not indexed: {', '.join(missing)})")
                context.log.warning(f"skipping eval set {eval_set.name}: sources not indexed: {missing}")
                continue
            context.log.info(f"evaluating {eval_set.name} ({len(eval_set.qrels)} judged queries)")
            scores.extend(evaluate_retrieval(searcher, eval_set))

        metadata: dict[str, dg.RawMetadataValue] = {
            "eval_sets": len({score.eval_set for score in scores}),
            "skipped_eval_sets": ", ".join(skipped) or "none",
            "table_version": table.version,
            EVAL_SETS_FINGERPRINT: eval_sets_fingerprint,
            "scores": dg.MetadataValue.md(scores_markdown(scores)),
            "results": dg.MetadataValue.json([score.model_dump(by_alias=True) for score in scores]),
            **embedder.take_usage_metadata(),  # query embeddings of a paid embedder
        }
        for score in scores:
            prefix = f"{score.eval_set}/{score.mode}"
            metadata[f"{prefix}/ndcg@10"] = round(score.ndcg_at_10, 4)
            metadata[f"{prefix}/recall@100"] = round(score.recall_at_100, 4)
            metadata[f"{prefix}/mrr@10"] = round(score.mrr_at_10, 4)
            metadata[f"{prefix}/latency_p50_ms"] = round(score.latency_p50_ms, 2)
        current = [score.model_dump(by_alias=True) for score in scores]
        previous = previous_results(context.instance, context.partition_key)
        if previous and not eval_set_dirs and not config.allow_no_eval_sets:
            # An unmounted drive or a wrong prefix must not turn the gate green with nothing scored.
            # (Sets skipped because their sources were removed were found: that is not absence.)
            raise dg.Failure(
                f"no eval set found under {source_files.eval_uri}, where the previous evaluation "
                f"scored {len({row['eval_set'] for row in previous})}. Restore the "
                "eval sets, or materialize with config allow_no_eval_sets: true if they were removed on purpose",
                allow_retries=False,
            )
        failures = quality_gate_failures(
            current, previous, GATED_METRIC, quality_gate.min_ndcg_at_10, quality_gate.max_ndcg_drop
        )
        yield dg.Output(scores, metadata=metadata)
        yield dg.AssetCheckResult(
            check_name="retrieval_quality_gate",
            passed=not failures,
            metadata={
                "metric": GATED_METRIC,
                "floor": quality_gate.min_ndcg_at_10,
                "max_drop": quality_gate.max_ndcg_drop,
                "compared_with_previous": bool(previous),
                "failures": dg.MetadataValue.md(
                    "\n".join(f"- {failure.describe()}" for failure in failures) or "none"
                ),
            },
            description="; ".join(failure.describe() for failure in failures) or None,
        )

    return retrieval_evaluation


def previous_results(instance: dg.DagsterInstance, embedder: str) -> list[dict]:
    """Results of the latest earlier retrieval_evaluation of this embedder (empty if none)."""
    metadata = latest_metadata(instance, "retrieval_evaluation", embedder) or {}
    return list(metadata.get("results", []))


def build_answer_evaluation(
    partitions: EmbedderPartitions, freshness: dg.FreshnessPolicy, automation: dg.AutomationCondition
) -> dg.AssetsDefinition:
    @dg.asset(
        **evaluation_asset_arguments(partitions, freshness, automation),
        description=(
            "Answer quality on every eval set that ships reference answers (answers.jsonl). Offline: "
            "the retrieved sentence closest to the question is the extractive answer, scored by token "
            "F1 against the reference; context containment is the share of the reference's words found "
            "in the top 5 retrieved chunks. Per-question results are in the metadata table."
        ),
    )
    def answer_evaluation(
        context: dg.AssetExecutionContext,
        source_files: SourceFiles,
        embedders: Embedders,
        lancedb: LanceDBResource,
        chat_model: ChatModelResource,
    ) -> dg.Output[list[AnswerResult]]:
        with permanent_errors_fail_once():
            embedder = embedders.get(context.partition_key)
            searcher = Searcher(lancedb.table(embedder.spec), embedder)
        eval_sets_fingerprint = source_files.eval_sets_fingerprint()
        results: list[AnswerResult] = []
        for path in source_files.eval_set_dirs():
            answers_path = path / "answers.jsonl"
            if not answers_path.is_file():
                continue
            eval_set = load_eval_set_or_fail(path)
            try:
                answers = read_answers(answers_path)
            except EvalSetError as error:
                raise dg.Failure(f"eval set {path.name} cannot be read: {error}") from None
            context.log.info(f"answering {len(answers)} questions of {eval_set.name}")
            results.extend(evaluate_answers(searcher, eval_set, answers, chat=chat_model.chat()))

        metadata: dict[str, dg.RawMetadataValue] = {
            "questions": len(results),
            "chat_model": chat_model.model if chat_model.enabled else "none (offline: extractive answers only)",
            "invalid_llm_replies": sum(1 for result in results if result.llm_error),
            EVAL_SETS_FINGERPRINT: eval_sets_fingerprint,
            "per_question": dg.MetadataValue.md(answers_markdown(results)),
            "results": dg.MetadataValue.json(answer_aggregates(results)),
            **embedder.take_usage_metadata(),
        }
        for row in answer_aggregates(results):
            for key, value in row.items():
                if key not in ("eval_set", "questions") and value is not None:
                    metadata[f"{row['eval_set']}/{key}"] = value
        return dg.Output(results, metadata=metadata)

    return answer_evaluation


def answer_aggregates(results: list[AnswerResult]) -> list[dict]:
    by_set: dict[str, list[AnswerResult]] = {}
    for result in results:
        by_set.setdefault(result.eval_set, []).append(result)

    def mean(values: list[float | None]) -> float | None:
        present = [value for value in values if value is not None]
        return round(sum(present) / len(present), 4) if present else None

    return [
        {
            "eval_set": name,
            "questions": len(rows),
            "answer_f1": mean([row.answer_f1 for row in rows]),
            "context_containment": mean([row.context_containment for row in rows]),
            "generated_answer_f1": mean([row.generated_answer_f1 for row in rows]),
            "faithfulness": mean([row.faithfulness for row in rows]),
            "correctness": mean([row.correctness for row in rows]),
        }
        for name, rows in sorted(by_set.items())
    ]


def answers_markdown(results: list[AnswerResult]) -> str:
    if not results:
        return "No eval set with answers.jsonl."

    def cell(text: str) -> str:
        return " ".join(text.split()).replace("|", "/")[:160]

    def score(value: float | None) -> str:
        return "-" if value is None else f"{value:.2f}"

    rows = "".join(
        f"| {r.eval_set} | {r.query_id} | {cell(r.question)} | {cell(r.answer)} | {r.answer_f1:.2f} | "
        f"{r.context_containment:.2f} | {cell(r.generated_answer or r.llm_error or '-')} | "
        f"{score(r.faithfulness)} | {score(r.correctness)} | {cell('; '.join(r.generated_citations or r.citations) or '-')} |\n"
        for r in results
    )
    return (
        "| set | id | question | extractive answer | F1 | containment | LLM answer | faithful | correct | cited |\n"
        "|---|---|---|---|---:|---:|---|---:|---:|---|\n" + rows
    )


def load_eval_set_or_fail(path: Path) -> EvalSet:
    try:
        return load_eval_set(path)
    except EvalSetError as error:
        raise dg.Failure(f"eval set {path.name} cannot be read: {error}") from None
