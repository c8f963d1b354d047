from pathlib import Path
from typing import Any

import dagster as dg

from ai_assets.assets.check_outcomes import failed_error_checks
from ai_assets.assets.eval_questions import EVAL_QUESTIONS
from ai_assets.core.answering.ask import answer_question
from ai_assets.core.embedding.base import Embedder
from ai_assets.core.embedding.query_cache import CachingEmbedder, is_paid
from ai_assets.core.evaluation.answers import AnswerResult, evaluate_answers, read_answers
from ai_assets.core.evaluation.beir import EvalSet, EvalSetError, load_eval_set
from ai_assets.core.evaluation.serving import GATED_METRIC, NoCandidate, ServingEvaluation
from ai_assets.core.evaluation.serving import evaluate_and_serve as evaluate_and_serve_version
from ai_assets.core.retrieval.search import Searcher
from ai_assets.core.store.versions import NoServedVersion, ServingState
from ai_assets.history import latest_metadata
from ai_assets.metadata_tables import (
    CANDIDATE_PREFIX,
    SERVED_PREFIX,
    eval_set_kinds,
    present_columns,
    score_tables,
    shown_partition,
    table_value,
)
from ai_assets.naming import KnowledgeBaseNames
from ai_assets.partitions import EmbedderPartitions
from ai_assets.preview_api import partitioned_check
from ai_assets.resources import ChatModelResource, Embedders, LanceDBResource, QualityGate, SourceFiles
from ai_assets.retries import MODEL_CALL_RETRY, MODEL_POOL, permanent_errors_fail_once

# Metadata key: the eval sets' files an evaluation scored, so `ai-assets build` re-evaluates when they change.
EVAL_SETS_FINGERPRINT = "eval_sets_fingerprint"
HAND_WRITTEN_EVAL_SETS = "hand_written_eval_sets"
RETRIEVAL_EVALUATION = "retrieval_evaluation"
SERVED_INDEX = "served_index"
# Metadata key of served_index, read by `ai-assets promote --list`, the leaderboard and the build
# (with its score tables, metadata_tables.SERVED_PREFIX and CANDIDATE_PREFIX).
SERVED_VERSION = "served_version"
SAMPLE_QUESTIONS = 3
# The step that makes both assets, named after them (its run config: `ops: {SERVE_STEP: config: ...}`).
SERVE_STEP = f"{RETRIEVAL_EVALUATION}_and_{SERVED_INDEX}"


class ServeConfig(dg.Config):
    override_hold: bool = False
    """Promote a candidate that a rollback held back, if it passes (what `ai-assets promote` asks)."""
    allow_no_eval_sets: bool = False
    """Let an evaluation that finds no hand-written eval set pass where the previous one scored some,
    or no eval set at all (off: it fails; AI_ASSETS_QUALITY_ALLOW_NO_EVAL_SETS allows the same)."""


def evaluation_embedder(embedders: Embedders, lancedb: LanceDBResource, name: str) -> Embedder:
    """The embedder an evaluation encodes with: a paid one reads and fills its query-vector cache."""
    embedder = embedders.get(name)
    return CachingEmbedder(embedder, lancedb.query_cache(embedder.spec)) if is_paid(embedder.spec) else embedder


def build_evaluate_and_serve(
    names: KnowledgeBaseNames, partitions: EmbedderPartitions, freshness: dg.FreshnessPolicy
) -> dg.AssetsDefinition:
    """``retrieval_evaluation`` scores the candidate that ``search_index`` built; its blocking gate
    decides, in the same step, whether the candidate becomes ``served_index``. One step, so the
    served version's record (promoted or not, and why) is written even when the gate fails."""

    @dg.multi_asset(
        name=names.name(SERVE_STEP),
        partitions_def=partitions.embedder,
        required_resource_keys=names.resource_keys("source_files", "embedders", "lancedb", "quality_gate"),
        retry_policy=MODEL_CALL_RETRY,
        pool=MODEL_POOL,
        specs=[
            dg.AssetSpec(
                names.key(RETRIEVAL_EVALUATION),
                deps=[
                    names.key("search_index"),
                    names.key("feedback_eval_set"),
                    # Every embedder's evaluation reads every source's generated questions.
                    dg.AssetDep(names.key(EVAL_QUESTIONS), partition_mapping=dg.AllPartitionMapping()),
                ],
                group_name=names.name("evaluation"),
                kinds=set(partitions.query_kinds),
                code_version="3",
                freshness_policy=freshness,
                # Every candidate is scored at once: its blocking quality gate decides whether it is served.
                # Questions change with the documents, which the index follows: scoring when the
                # questions land (before the index has the documents) would score the old version twice.
                # The feedback set is made daily (or by the build) and may never have been made:
                # eager's "no dependency missing" would then never score anything under the daemon.
                automation_condition=dg.AutomationCondition.eager().ignore(
                    dg.AssetSelection.assets(names.key(EVAL_QUESTIONS), names.key("feedback_eval_set"))
                ),
                description=(
                    "Retrieval quality of the embedder's candidate version (the one search_index built) on "
                    "every eval set under data/eval/ (BEIR layout, hand-written) and every set generated from "
                    "the corpus (eval_questions; feedback): nDCG@10, recall@10/100 and MRR@10 per "
                    "search mode (dense, fts, hybrid), with query latency p50/p95. The served version is "
                    "scored beside it with the same query vectors, each query embedded once. Documents are "
                    "ranked by their best chunk."
                ),
            ),
            dg.AssetSpec(
                names.key(SERVED_INDEX),
                deps=[names.key(RETRIEVAL_EVALUATION)],
                group_name=names.name("index"),
                kinds={"lancedb"},
                code_version="1",
                automation_condition=dg.AutomationCondition.eager(),
                description=(
                    "The table version that search, ask and the answer evaluation read (a LanceDB tag). "
                    "The candidate becomes it only when every blocking check passed; each materialization "
                    "records the served and candidate versions, the gate's result, both versions' scores "
                    "and sample answers, and rollbacks record who moved it, when and why."
                ),
            ),
        ],
        check_specs=[
            partitioned_check(
                "retrieval_quality_gate",
                asset=names.key(RETRIEVAL_EVALUATION),
                partitions_def=partitions.embedder,
                blocking=True,
                description=(
                    "Blocking: nDCG@10 of the candidate on every eval set and mode is above the floor of "
                    "the set's kind (hand-written, generated, feedback) and did not drop more than the "
                    "configured margin below the served version on the same questions. No eval set at all "
                    "for a knowledge base with documents fails too, unless allowed."
                ),
            )
        ],
    )
    def evaluate_and_serve(
        context: dg.AssetExecutionContext,
        config: ServeConfig,
    ):
        source_files: SourceFiles = names.resource(context, "source_files")  # type: ignore[assignment]
        embedders: Embedders = names.resource(context, "embedders")  # type: ignore[assignment]
        lancedb: LanceDBResource = names.resource(context, "lancedb")  # type: ignore[assignment]
        quality_gate: QualityGate = names.resource(context, "quality_gate")  # type: ignore[assignment]
        with permanent_errors_fail_once():
            embedder = evaluation_embedder(embedders, lancedb, context.partition_key)
            table = lancedb.table(embedder.spec, create=False)
        eval_sets = [load_eval_set_or_fail(path) for path in source_files.eval_set_dirs()]
        allow_none = config.allow_no_eval_sets or quality_gate.allow_no_eval_sets
        if not eval_sets and not allow_none:
            require_no_eval_sets_before(context.instance, names, context.partition_key, source_files.eval_uri)
        sources = set(context.instance.get_dynamic_partitions(names.source_partitions_name))
        eval_sets += [load_eval_set_or_fail(path, name) for name, path in source_files.generated_eval_set_dirs(sources)]
        if not eval_sets and not allow_none and table.count_rows() > 0:
            raise dg.Failure(no_eval_set_message(source_files), allow_retries=False)
        try:
            result = evaluate_and_serve_version(
                table, lambda version: lancedb.table_at(embedder.spec, version), embedder, eval_sets,
                floor=quality_gate.min_ndcg_at_10, max_drop=quality_gate.max_ndcg_drop,
                override_hold=config.override_hold, one_by_one=not is_paid(embedder.spec),
                floor_by_kind=quality_gate.floor_by_kind(),
            )
        except NoCandidate as error:
            raise dg.Failure(str(error), allow_retries=False) from None
        for skipped in result.scores.skipped:
            context.log.warning(f"skipped eval set {skipped}")
        context.log.info(f"{result.after.describe()}: {result.decision.reason}")
        checks = [gate_result(result, quality_gate, names.key(RETRIEVAL_EVALUATION))]
        yield dg.MaterializeResult(
            asset_key=names.key(RETRIEVAL_EVALUATION),
            metadata={
                **shown_partition(context),
                **evaluation_metadata(result, source_files.eval_sets_fingerprint()),
                **embedder.take_usage_metadata(),  # query embeddings of a paid embedder, and its cache
                **failed_error_checks(checks),
            },
            check_results=checks,
        )
        yield dg.MaterializeResult(
            asset_key=names.key(SERVED_INDEX),
            metadata={
                **shown_partition(context),
                **served_index_metadata(result),
                "sample_answers": dg.MetadataValue.md(sample_answers(lancedb, embedder, result.after, eval_sets)),
            },
        )

    return evaluate_and_serve


def require_no_eval_sets_before(
    instance: dg.DagsterInstance, names: KnowledgeBaseNames, embedder: str, eval_location: str
) -> None:
    """An unmounted drive or a wrong prefix must not turn the gate green with nothing scored, nor
    promote a candidate that nothing scored. (Sets skipped because their sources were removed were
    found: that is not absence.) Hand-written sets only: generated ones beside them do not stand in
    for questions people wrote."""
    previous = latest_metadata(instance, names.key(RETRIEVAL_EVALUATION), embedder) or {}
    # Records from before generated sets counted hand-written sets only, as "eval_sets".
    scored = previous.get(HAND_WRITTEN_EVAL_SETS, previous.get("eval_sets"))
    if scored:
        raise dg.Failure(
            f"no eval set found under {eval_location}, where the previous evaluation scored "
            f"{scored}. Restore the eval sets, or materialize with config "
            "allow_no_eval_sets: true if they were removed on purpose",
            allow_retries=False,
        )


def no_eval_set_message(source_files: SourceFiles) -> str:
    return (
        f"no eval set to score: none under {source_files.eval_uri} and none generated under "
        f"{source_files.generated_eval_uri}. Materialize eval_questions (`ai-assets build` does; a source too small "
        "to sample gets none, see its metadata), write one under data/eval/ (BEIR layout), or set "
        "AI_ASSETS_QUALITY_ALLOW_NO_EVAL_SETS=true to serve versions nothing scored"
    )


def failures_markdown(result: ServingEvaluation) -> dg.MetadataValue:
    return dg.MetadataValue.md("\n".join(f"- {failure.describe()}" for failure in result.failures) or "none")


def evaluation_metadata(result: ServingEvaluation, eval_sets_fingerprint: str) -> dict[str, Any]:
    scores = result.scores.candidate
    metadata: dict[str, Any] = {
        "eval_sets": len({score.eval_set for score in scores}),
        HAND_WRITTEN_EVAL_SETS: len({score.eval_set for score in scores if score.kind == "hand-written"}),
        **eval_set_kinds(scores),
        "skipped_eval_sets": ", ".join(result.scores.skipped) or "none",
        "table_version": result.evaluated,
        "query_encode_in_latency": result.scores.query_encode_timed,
        EVAL_SETS_FINGERPRINT: eval_sets_fingerprint,
        **score_tables(scores),
    }
    for score in scores:
        prefix = f"{score.eval_set}/{score.mode}"
        metadata[f"{prefix}/ndcg@10"] = round(score.ndcg_at_10, 4)
        metadata[f"{prefix}/recall@100"] = round(score.recall_at_100, 4)
        metadata[f"{prefix}/mrr@10"] = round(score.mrr_at_10, 4)
        metadata[f"{prefix}/latency_p50_ms"] = round(score.latency_p50_ms)
    return metadata


def gate_result(
    result: ServingEvaluation, quality_gate: QualityGate, evaluation_key: dg.AssetKey
) -> dg.AssetCheckResult:
    served = result.before.served
    return dg.AssetCheckResult(
        check_name="retrieval_quality_gate",
        asset_key=evaluation_key,
        passed=not result.failures,
        metadata={
            "metric": GATED_METRIC,
            "floor": quality_gate.min_ndcg_at_10,
            "floor_by_kind": dg.MetadataValue.json(quality_gate.floor_by_kind()),
            "max_drop": quality_gate.max_ndcg_drop,
            "evaluated_version": result.evaluated,
            "compared_with": f"served v{served}" if served is not None else "nothing served yet",
            "failures": failures_markdown(result),
        },
        description=result.gate_description(),
    )


def served_index_metadata(result: ServingEvaluation) -> dict[str, Any]:
    """What is served after the evaluation and why, with the scores of the version served now and,
    when one still waits (not promoted), of the candidate: no table of a version nobody serves."""
    waiting = result.after.candidate is not None and result.after.candidate != result.after.served
    return {
        **serving_metadata(result.after, action="evaluation"),
        "promoted": result.decision.promote,
        "decision": result.decision.reason,
        "gate": "passed" if not result.failures else "failed",
        "gate_failures": failures_markdown(result),
        **score_tables(result.served_now, SERVED_PREFIX),
        **({f"{CANDIDATE_PREFIX}scores": score_tables(result.scores.candidate)["scores"]} if waiting else {}),
        **eval_set_kinds([*result.served_now, *result.scores.candidate]),
        **{f"served/{score.eval_set}/{score.mode}/ndcg@10": round(score.ndcg_at_10, 4) for score in result.served_now},
    }


def serving_metadata(state: ServingState, action: str) -> dict[str, Any]:
    """What every served_index materialization records, whatever moved (or kept) the pointer."""
    return {
        "action": action,
        "table": state.table,
        SERVED_VERSION: state.served if state.served is not None else "none",
        # A candidate that is already served waits for nothing: "none", not the served version again.
        "candidate_version": state.candidate if state.candidate not in (None, state.served) else "none",
        "latest_version": state.latest,
        "held_up_to": state.held if state.held is not None else "none",
        "recently_served": ", ".join(f"v{version}" for version in state.history) or "none",
        "status": state.describe(),
    }


def sample_answers(lancedb: LanceDBResource, embedder: Embedder, state: ServingState, eval_sets: list[EvalSet]) -> str:
    """A few eval questions answered from the served version, as `ai-assets ask` answers them offline."""
    if state.served is None:
        return "Nothing is served yet."
    searcher = Searcher(lancedb.table_at(embedder.spec, state.served), embedder)
    rows = []
    for eval_set in eval_sets[:1]:
        for query_id in sorted(eval_set.queries)[:SAMPLE_QUESTIONS]:
            answer = answer_question(searcher, eval_set.queries[query_id], sources=eval_set.sources or None)
            sources = ", ".join(f"[{cited.number}] {cited.doc_key}" for cited in answer.citations) or "-"
            rows.append(f"| {cell(answer.question)} | {cell(answer.answer)} | {cell(sources)} |\n")
    if not rows:
        return "No eval set to sample questions from."
    return f"Answers from v{state.served}:\n\n| question | answer | sources |\n|---|---|---|\n" + "".join(rows)


def cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "/")[:240]


def build_answer_evaluation(
    names: KnowledgeBaseNames,
    partitions: EmbedderPartitions,
    freshness: dg.FreshnessPolicy,
    automation: dg.AutomationCondition,
) -> dg.AssetsDefinition:
    @dg.asset(
        key=names.key("answer_evaluation"),
        automation_condition=automation,
        partitions_def=partitions.embedder,
        deps=[names.key(SERVED_INDEX)],
        group_name=names.name("evaluation"),
        required_resource_keys=names.resource_keys("source_files", "embedders", "lancedb", "chat_model"),
        io_manager_key=names.name("io_manager"),
        kinds=set(partitions.query_kinds),
        code_version="2",
        retry_policy=MODEL_CALL_RETRY,
        pool=MODEL_POOL,
        freshness_policy=freshness,
        description=(
            "Answer quality of the served version on every eval set that ships reference answers "
            "(answers.jsonl), with the answers `ai-assets ask` gives. Offline: the retrieved sentences "
            "closest to the question form the extractive answer, scored by token F1 against the "
            "reference and by whether its citations point at a relevant document; context containment "
            "is the share of the reference's words found in the top 5 chunks. Per-question results are "
            "in the metadata table."
        ),
    )
    def answer_evaluation(context: dg.AssetExecutionContext) -> dg.Output[list[AnswerResult]]:
        source_files: SourceFiles = names.resource(context, "source_files")  # type: ignore[assignment]
        embedders: Embedders = names.resource(context, "embedders")  # type: ignore[assignment]
        lancedb: LanceDBResource = names.resource(context, "lancedb")  # type: ignore[assignment]
        chat_model: ChatModelResource = names.resource(context, "chat_model")  # type: ignore[assignment]
        with permanent_errors_fail_once():
            embedder = evaluation_embedder(embedders, lancedb, context.partition_key)
            try:
                table = lancedb.table_at(embedder.spec, "served")
            except NoServedVersion as error:
                raise dg.Failure(str(error), allow_retries=False) from None
        searcher = Searcher(table, embedder)
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
            context.log.info(f"answering {len(answers)} questions of {eval_set.name} from v{table.version}")
            results.extend(evaluate_answers(searcher, eval_set, answers, chat=chat_model.chat()))

        metadata: dict[str, dg.RawMetadataValue] = {
            **shown_partition(context),
            "questions": len(results),
            "index_version": table.version,
            "chat_model": chat_model.model if chat_model.enabled else "none (offline: extractive answers only)",
            "invalid_llm_replies": sum(1 for result in results if result.llm_error),
            EVAL_SETS_FINGERPRINT: eval_sets_fingerprint,
            **answers_markdown(results),
            **answers_tables(answer_aggregates(results)),
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

    def mean(values: list[float | bool | None]) -> float | None:
        present = [float(value) for value in values if value is not None]
        return round(sum(present) / len(present), 4) if present else None

    return [
        {
            "eval_set": name,
            "questions": len(rows),
            "answer_f1": mean([row.answer_f1 for row in rows]),
            "citations_relevant": mean([row.cited_relevant for row in rows]),
            "context_containment": mean([row.context_containment for row in rows]),
            "generated_answer_f1": mean([row.generated_answer_f1 for row in rows]),
            "generated_citations_relevant": mean([row.generated_cited_relevant for row in rows]),
            "faithfulness": mean([row.faithfulness for row in rows]),
            "correctness": mean([row.correctness for row in rows]),
        }
        for name, rows in sorted(by_set.items())
    ]


# Per eval set: the extractive answers' scores, and the chat model's in a table of their own,
# only when it gave some (offline they are all empty); each fits a laptop screen.
ANSWER_COLUMNS = (
    ("eval_set", "string"), ("questions", "int"), ("answer_f1", "float"), ("citations_relevant", "float"),
    ("context_containment", "float"),
)
LLM_ANSWER_COLUMNS = (
    ("eval_set", "string"), ("generated_answer_f1", "float"), ("generated_citations_relevant", "float"),
    ("faithfulness", "float"), ("correctness", "float"),
)


def answers_tables(aggregates: list[dict]) -> dict[str, dg.TableMetadataValue]:
    llm_columns = present_columns(aggregates, LLM_ANSWER_COLUMNS, always=1)
    return {
        "results": table_value(aggregates, ANSWER_COLUMNS),
        **({"llm_results": table_value(aggregates, llm_columns)} if len(llm_columns) > 1 else {}),
    }


def answers_markdown(results: list[AnswerResult]) -> dict[str, dg.MetadataValue]:
    """One row per question, five columns so it fits a laptop screen: ``per_question`` (the
    extractive answer and its scores) and, when a chat model answered, ``llm_per_question``."""
    if not results:
        return {"per_question": dg.MetadataValue.md("No eval set with answers.jsonl.")}

    def score(value: float | None) -> str:
        return "-" if value is None else f"{value:.2f}"

    def verdict(value: bool | None) -> str:
        return "-" if value is None else "yes" if value else "no"

    def question(r: AnswerResult) -> str:
        return cell(f"{r.eval_set}/{r.query_id}: {r.question}")

    extractive = "".join(
        f"| {question(r)} | {cell(r.answer)} | {r.answer_f1:.2f} | {verdict(r.cited_relevant)} | "
        f"{r.context_containment:.2f} |\n"
        for r in results
    )
    tables = {
        "per_question": dg.MetadataValue.md(
            "| question | extractive answer | F1 | cites relevant | containment |\n|---|---|---:|---|---:|\n" + extractive
        )
    }
    if any(r.generated_answer or r.llm_error for r in results):
        generated = "".join(
            f"| {question(r)} | {cell(r.generated_answer or r.llm_error or '-')} | {score(r.faithfulness)} | "
            f"{score(r.correctness)} | {cell('; '.join(r.generated_citations or r.citations) or '-')} |\n"
            for r in results
        )
        tables["llm_per_question"] = dg.MetadataValue.md(
            "| question | LLM answer | faithful | correct | cited |\n|---|---|---:|---:|---|\n" + generated
        )
    return tables


def load_eval_set_or_fail(path: Path, name: str | None = None) -> EvalSet:
    try:
        return load_eval_set(path, name)
    except EvalSetError as error:
        raise dg.Failure(f"eval set {path.name} cannot be read: {error}") from None
