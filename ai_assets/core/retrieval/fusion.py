"""How hybrid search fuses its dense and full-text candidate lists."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel

if TYPE_CHECKING:  # search.py imports this module
    from ai_assets.core.retrieval.search import SearchHit

RRF_K = 60

# One candidate of a search: (chunk_id, score).
ScoredId = tuple[str, float]


def reciprocal_rank_fusion(
    rankings: Sequence[Sequence[str]], k: int = RRF_K, weights: Sequence[float] | None = None
) -> list[tuple[str, float]]:
    """Fuse ranked id lists: score(id) = sum of weight / (k + rank), rank starting at 1.

    Ties are broken by the id's best rank in any list, then by the id, so the result is
    deterministic.
    """
    weights = weights if weights is not None else [1.0] * len(rankings)
    if len(weights) != len(rankings):
        raise ValueError("one weight per ranking is required")
    scores: dict[str, float] = {}
    best_rank: dict[str, int] = {}
    for ranking, weight in zip(rankings, weights, strict=True):
        for rank, item in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + weight / (k + rank)
            best_rank[item] = min(best_rank.get(item, rank), rank)
    return sorted(scores.items(), key=lambda pair: (-pair[1], best_rank[pair[0]], pair[0]))


def convex_fusion(
    dense: Sequence[tuple[str, float]],
    lexical: Sequence[tuple[str, float]],
    dense_weight: float,
    dense_floor: float = -1.0,
    lexical_floor: float = 0.0,
) -> list[tuple[str, float]]:
    """Convex combination of normalized scores (TM2C2 of Bruch et al., 2023).

    Each list's scores are scaled to [0, 1] between the score's theoretical minimum (cosine
    -1, BM25 0) and the list's best score; an id missing from a list scores 0 there.
    """

    def scaled(scores: Sequence[tuple[str, float]], floor: float) -> dict[str, float]:
        if not scores:
            return {}
        top = max(score for _, score in scores)
        span = top - floor if top > floor else 1.0
        return {item: (score - floor) / span for item, score in scores}

    dense_scaled, lexical_scaled = scaled(dense, dense_floor), scaled(lexical, lexical_floor)
    fused = {
        item: dense_weight * dense_scaled.get(item, 0.0) + (1.0 - dense_weight) * lexical_scaled.get(item, 0.0)
        for item in dense_scaled.keys() | lexical_scaled.keys()
    }
    return sorted(fused.items(), key=lambda pair: (-pair[1], pair[0]))


class Fusion(BaseModel):
    """How hybrid search merges the dense and full-text candidate lists."""

    method: Literal["rrf", "convex"] = "rrf"
    dense_weight: float = 0.5  # convex: share of the dense score; rrf: weight of the dense list (lexical 1 - w)
    rrf_k: int = RRF_K

    def fuse(self, dense: Sequence[SearchHit], lexical: Sequence[SearchHit]) -> list[tuple[str, float]]:
        return self.fuse_scores(
            [(hit.chunk_id, hit.score) for hit in dense], [(hit.chunk_id, hit.score) for hit in lexical]
        )

    def fuse_scores(self, dense: Sequence[ScoredId], lexical: Sequence[ScoredId]) -> list[tuple[str, float]]:
        """Fused (chunk_id, score) of two ranked candidate lists, best first."""
        if self.method == "convex":
            return convex_fusion(dense, lexical, self.dense_weight)
        return reciprocal_rank_fusion(
            [[chunk_id for chunk_id, _ in dense], [chunk_id for chunk_id, _ in lexical]],
            k=self.rrf_k,
            weights=[self.dense_weight * 2, (1.0 - self.dense_weight) * 2],
        )


# Chosen leave-one-set-out with bench/fusion.py: the best hybrid on msmarco's queries is convex
# 0.9 and so is the best on dbpedia's, so each set is scored with a weight its own queries did
# not choose (msmarco 0.7994 vs dense 0.7960; dbpedia 0.5094 vs dense 0.5130). On docs_qa it
# gives 0.9686 (dense 0.9398, fts 0.9521). docs/evaluation.md tells how it was chosen.
DEFAULT_FUSION = Fusion(method="convex", dense_weight=0.9)
