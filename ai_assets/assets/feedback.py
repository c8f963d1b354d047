"""``feedback_eval_set``: the eval set grown from people's judgements of answers (`ai-assets feedback`).

It runs in the index job before the evaluation, and `ai-assets build` runs that job when a judgement
was recorded since it last ran (``FEEDBACK_FINGERPRINT``, see up_to_date.py); with the daemon, also
daily on the refresh cron.
"""

import dagster as dg

from ai_assets.core.documents.folders import SourcesUnavailable
from ai_assets.core.documents.object_folders import source_folders_at
from ai_assets.core.feedback import FeedbackStoreUnavailable
from ai_assets.core.feedback.eval_set import (
    build_feedback_eval_set,
    deleted_documents,
    review_markdown,
    write_eval_set,
)
from ai_assets.naming import KnowledgeBaseNames
from ai_assets.resources import FeedbackFiles, SourceFiles

FEEDBACK_EVAL_SET = "feedback_eval_set"
# Metadata key: the store's judgements when the set was made; the build compares it with the store's now.
FEEDBACK_FINGERPRINT = "judgements_fingerprint"


def build_feedback_eval_set_asset(names: KnowledgeBaseNames, refresh_cron: str) -> dg.AssetsDefinition:
    @dg.asset(
        key=names.key(FEEDBACK_EVAL_SET),
        group_name=names.name("evaluation"),
        kinds={"python", "json"},
        code_version="1",
        required_resource_keys=names.resource_keys("feedback", "source_files"),
        # Nothing in the graph sees a judgement arrive: with the daemon alone (no `ai-assets build`),
        # the set is made again daily, and the eager evaluations follow it.
        automation_condition=dg.AutomationCondition.on_cron(refresh_cron),
        description=(
            "The eval set grown from use, in BEIR layout under <data dir>/eval_generated/feedback/: each question "
            "people judged with `ai-assets feedback`, with the documents of the passages they judged good as "
            "relevant (the latest judgement of a document for a question decides). Bad answers and bad "
            "citations never become relevant; they are listed here for review. retrieval_evaluation scores it."
        ),
    )
    def feedback_eval_set(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        feedback: FeedbackFiles = names.resource(context, "feedback")  # type: ignore[assignment]
        source_files: SourceFiles = names.resource(context, "source_files")  # type: ignore[assignment]
        store = feedback.store()
        try:
            listings = source_folders_at(source_files.sources_uri).listings()
        except SourcesUnavailable as error:
            listings = {}
            context.log.warning(f"sources not listed ({error}): every document judged good is kept")
        # No source at all is an unreachable root more likely than a corpus deleted whole: keep all.
        deleted = deleted_documents(listings) if listings else lambda _: False
        try:
            # Listed first: a judgement recorded while the set is made is picked up by the next build.
            fingerprint = store.judgements_fingerprint()
            eval_set = build_feedback_eval_set(store.answers(), store.judgements(), deleted)
            write_eval_set(feedback.eval_set_uri, eval_set)
        except FeedbackStoreUnavailable as error:
            raise dg.Failure(str(error), allow_retries=False) from None
        except OSError as error:
            raise dg.Failure(f"cannot write the feedback eval set at {feedback.eval_set_uri}: {error}") from None
        if eval_set.unmatched:
            context.log.warning(f"{eval_set.unmatched} judgement(s) name an answer the store does not hold: skipped")
        return dg.MaterializeResult(
            metadata={
                "kind": "feedback",
                "answers": eval_set.answers,
                "judgements": eval_set.judgements,
                "good": eval_set.good,
                "bad": eval_set.bad,
                "queries": len(eval_set.queries),
                "relevant_documents": sum(len(query.relevant) for query in eval_set.queries),
                "judgements_without_answer": eval_set.unmatched,
                "deleted_documents": ", ".join(eval_set.deleted) or "none",
                "sources": ", ".join(eval_set.sources) or "none",
                "eval_set": (
                    dg.MetadataValue.path(feedback.eval_set_uri) if eval_set.queries
                    else "none (no question judged good yet)"
                ),
                "for_review": dg.MetadataValue.md(review_markdown(eval_set.review)),
                FEEDBACK_FINGERPRINT: fingerprint,
            },
            data_version=dg.DataVersion(fingerprint),
        )

    return feedback_eval_set
