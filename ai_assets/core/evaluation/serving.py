"""One evaluation that decides what is served: score the candidate beside the served version, gate it, promote it."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from lancedb.table import Table

from ai_assets.core.embedding.base import Embedder
from ai_assets.core.evaluation.beir import EvalSet
from ai_assets.core.evaluation.retrieval import RetrievalScore, VersionScores, evaluate_candidate_and_served
from ai_assets.core.quality import GateFailure, quality_gate_failures
from ai_assets.core.retrieval.search import Searcher
from ai_assets.core.store.versions import (
    PromotionDecision,
    ServingState,
    move_served,
    promotion_decision,
    serving_state,
    version_to_evaluate,
)

GATED_METRIC = "ndcg@10"


class NoCandidate(LookupError):
    """The table has no candidate version: search_index has not run on it."""


@dataclass(frozen=True)
class ServingEvaluation:
    evaluated: int  # the candidate, or the served version while the candidate is held back
    before: ServingState
    after: ServingState
    scores: VersionScores
    served_scores: list[RetrievalScore]  # the version served before the decision, on the same queries
    failures: list[GateFailure]
    decision: PromotionDecision

    @property
    def served_now(self) -> list[RetrievalScore]:
        """Scores of the version served after the decision."""
        return self.scores.candidate if self.decision.promote else self.served_scores

    def gate_description(self) -> str | None:
        """What the failed gate says: the candidate not served, and every failure."""
        if not self.failures:
            return None
        not_served = "" if self.before.served == self.evaluated else f"candidate v{self.evaluated} not promoted: "
        return not_served + "; ".join(failure.describe() for failure in self.failures)


def evaluate_and_serve(
    table: Table,
    open_version: Callable[[int], Table],
    embedder: Embedder,
    eval_sets: Sequence[EvalSet],
    floor: float,
    max_drop: float,
    override_hold: bool = False,
    one_by_one: bool = True,
    floor_by_kind: Mapping[str, float] | None = None,
) -> ServingEvaluation:
    """Score the candidate of ``table`` (a handle at its latest version) beside the served version,
    gate it on ``floor`` (``floor_by_kind`` of a set's kind where given) and ``max_drop`` below the
    served version, and serve it if it passed.
    ``open_version`` opens the table pinned to a version; ``one_by_one``: see ``encode_queries``."""
    before = serving_state(table)
    evaluated = version_to_evaluate(before, override_hold=override_hold)
    if evaluated is None:
        raise NoCandidate(f"{before.table} has no candidate version: materialize search_index first")
    separate = before.served is not None and before.served != evaluated
    scores = evaluate_candidate_and_served(
        Searcher(open_version(evaluated), embedder),
        Searcher(open_version(before.served), embedder) if separate and before.served is not None else None,
        eval_sets,
        one_by_one=one_by_one,
    )
    served_scores = scores.served if separate else scores.candidate if before.served is not None else []
    failures = quality_gate_failures(
        [score.model_dump(by_alias=True) for score in scores.candidate],
        [score.model_dump(by_alias=True) for score in served_scores],
        GATED_METRIC, floor, max_drop, baseline=f"the served version (v{before.served})", floor_by_kind=floor_by_kind,
    )
    decision = promotion_decision(
        before, evaluated, [failure.describe() for failure in failures], override_hold=override_hold
    )
    after = move_served(table, evaluated) if decision.promote else before
    return ServingEvaluation(evaluated, before, after, scores, served_scores, failures, decision)
