"""Feedback on answers: what was asked and shown (an answered query), and the judgements people
give it, in one store beside the knowledge base's data. The CLI and the HTTP server write it; the
``feedback_eval_set`` asset reads it."""

from ai_assets.core.feedback.store import (
    AnsweredQuery,
    CitedPassage,
    FeedbackStore,
    FeedbackStoreUnavailable,
    FileFeedbackStore,
    Judgement,
    UnknownAnswer,
    new_answer_id,
)

__all__ = [
    "AnsweredQuery",
    "CitedPassage",
    "FeedbackStore",
    "FeedbackStoreUnavailable",
    "FileFeedbackStore",
    "Judgement",
    "UnknownAnswer",
    "new_answer_id",
]
