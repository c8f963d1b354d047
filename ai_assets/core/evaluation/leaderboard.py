"""One table of embedders x eval sets x modes: the page to read before switching models."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ai_assets.core.evaluation.retrieval import RetrievalScore


class LeaderboardRow(RetrievalScore):
    """A retrieval score joined with the embedder's answer scores and index size."""

    answer_f1: float | None = None
    context_containment: float | None = None
    index_rows: int | None = None
    index_bytes: int | None = None
    run_id: str | None = None  # the retrieval_evaluation run the scores come from


def leaderboard_rows(
    retrieval: Mapping[str, Sequence[Mapping[str, Any]]],
    answers: Mapping[str, Sequence[Mapping[str, Any]]],
    indexes: Mapping[str, Mapping[str, Any]],
) -> list[LeaderboardRow]:
    """Join per-embedder retrieval scores with answer aggregates and index size, best nDCG first."""
    rows = []
    for embedder, scores in retrieval.items():
        answer_by_set = {row["eval_set"]: row for row in answers.get(embedder, [])}
        index = indexes.get(embedder, {})
        for score in scores:
            answer = answer_by_set.get(score["eval_set"], {})
            rows.append(
                LeaderboardRow.model_validate(
                    {
                        **score,
                        "embedder": embedder,
                        "answer_f1": answer.get("answer_f1"),
                        "context_containment": answer.get("context_containment"),
                        "index_rows": index.get("rows"),
                        "index_bytes": index.get("table_bytes"),
                    }
                )
            )
    return sorted(rows, key=lambda row: (row.eval_set, -row.ndcg_at_10, row.embedder, row.mode))


def leaderboard_markdown(rows: Sequence[LeaderboardRow]) -> str:
    if not rows:
        return "No evaluation yet."

    def optional(value: float | int | None, digits: int = 4) -> str:
        return "-" if value is None else f"{value:.{digits}f}" if isinstance(value, float) else str(value)

    header = (
        "| eval set | kind | embedder | mode | nDCG@10 | recall@100 | MRR@10 | p50 ms | p95 ms | answer F1 | "
        "containment | index rows | index MB |\n|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"
    )
    body = "".join(
        f"| {r.eval_set} | {r.kind} | {r.embedder} | {r.mode} | {r.ndcg_at_10:.4f} | {r.recall_at_100:.4f} | "
        f"{r.mrr_at_10:.4f} | {r.latency_p50_ms:.1f} | {r.latency_p95_ms:.1f} | {optional(r.answer_f1)} | "
        f"{optional(r.context_containment)} | {optional(r.index_rows)} | "
        f"{optional(r.index_bytes / 1e6 if r.index_bytes is not None else None, 1)} |\n"
        for r in rows
    )
    return header + body
