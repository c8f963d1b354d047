from collections import Counter
from typing import Any

import dagster as dg

from ai_assets.core.chunking.chunk_files import ChunkFile
from ai_assets.core.chunking.chunker import Chunk
from ai_assets.core.documents.model import SourceLoad
from ai_assets.core.evaluation.generated_sets import read_previous_questions, source_set_location, write_source_set
from ai_assets.core.evaluation.questions import OFFLINE_GENERATOR, OFFLINE_GENERATOR_VERSION, SourceQuestions, source_questions
from ai_assets.core.storage import storage_errors
from ai_assets.naming import KnowledgeBaseNames
from ai_assets.resources import EvalQuestionsResource

EVAL_QUESTIONS = "eval_questions"
# Metadata key: the question settings a source's questions were drawn under (see up_to_date).
QUESTION_SETTINGS = "question_settings"
SAMPLE_ROWS = 10
CHUNK_BATCH = 10_000


def build_eval_questions(names: KnowledgeBaseNames, partitions: dg.DynamicPartitionsDefinition) -> dg.AssetsDefinition:
    @dg.asset(
        key=names.key(EVAL_QUESTIONS),
        ins={
            "source_documents": dg.AssetIn(key=names.key("source_documents")),
            "document_chunks": dg.AssetIn(key=names.key("document_chunks")),
        },
        partitions_def=partitions,
        group_name=names.name("evaluation"),
        kinds={"python", "json"},
        code_version="1",
        required_resource_keys=names.resource_keys("eval_questions"),
        automation_condition=dg.AutomationCondition.eager(),
        description=(
            "Eval questions generated offline from one source's own chunks, written as a BEIR eval set "
            "(data/eval_generated/sources/<source>/) that retrieval_evaluation scores and gates like a "
            "hand-written one: simulated known-item queries (discriminative terms sampled from a passage, "
            "Azzopardi et al., SIGIR 2007) and queries from headings and titles that name one document. "
            "Deterministic (seeded by chunk and document ids), sized by AI_ASSETS_EVAL_QUESTIONS_PER_DOCUMENT "
            "and _PER_SOURCE. An unchanged document keeps its questions, an edited one gets new ones, a "
            "deleted one loses them, and a quarantined (unreadable) one keeps them, so the gate sees the loss."
        ),
    )
    def eval_questions(
        context: dg.AssetExecutionContext, source_documents: SourceLoad, document_chunks: ChunkFile
    ) -> dg.MaterializeResult:
        resource: EvalQuestionsResource = names.resource(context, "eval_questions")  # type: ignore[assignment]
        source = context.partition_key
        location = source_set_location(resource.generated_eval_uri, source)
        chunks = [chunk for batch in document_chunks.batches(CHUNK_BATCH) for chunk in batch]
        quarantined = {f"{source}/{item.path}" for item in source_documents.quarantined}
        with storage_errors(location, "AI_ASSETS_DATA_DIR"):
            previous = read_previous_questions(location)
            result = source_questions(source, chunks, previous, quarantined, resource.settings(), context.run_id)
            write_source_set(location, source, result.questions, kind="generated-offline")
        if result.too_small:
            context.log.warning(result.too_small)
        metadata = questions_metadata(result, chunks, location)
        return dg.MaterializeResult(metadata={**metadata, QUESTION_SETTINGS: resource.settings_hash()})

    return eval_questions


def questions_metadata(result: SourceQuestions, chunks: list[Chunk], location: str) -> dict[str, Any]:
    by_kind = Counter(question.kind for question in result.questions)
    reasons = Counter(rejection.reason.split(":")[0] for rejection in result.rejections)
    return {
        "questions": len(result.questions),
        "documents_with_questions": len({question.doc_key for question in result.questions}),
        "documents": len({chunk.doc_key for chunk in chunks}),
        "generator": f"{OFFLINE_GENERATOR} v{OFFLINE_GENERATOR_VERSION}",
        "by_generator": dg.MetadataValue.json({f"{OFFLINE_GENERATOR}/{kind}": count for kind, count in sorted(by_kind.items())}),
        "documents_generated": result.generated_documents,
        "documents_kept": result.kept_documents,
        "documents_quarantined_kept": result.quarantined_documents,
        "rejected": len(result.rejections),
        "rejected_by_reason": dg.MetadataValue.md(
            "\n".join(f"- {reason}: {count}" for reason, count in reasons.most_common()) or "none"
        ),
        "too_small": result.too_small or "no",
        "cost": "none (offline: no model call)",
        "uri": dg.MetadataValue.path(location),
        "sample": dg.MetadataValue.md(sample_table(result)),
    }


def sample_table(result: SourceQuestions) -> str:
    if not result.questions:
        return result.too_small or "No question."

    def cell(value: object) -> str:
        return "-" if value is None or value == "" else " ".join(str(value).split()).replace("|", "/")[:120]

    rows = "".join(
        f"| {cell(q.text)} | {q.kind} | `{cell(q.doc_key)}` | {cell(q.section)} | {cell(q.page)} |\n"
        for q in result.questions[:SAMPLE_ROWS]
    )
    return "| question | generator | document | section | page |\n|---|---|---|---|---:|\n" + rows
