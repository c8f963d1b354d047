"""Metadata the Dagster UI shows as tables: one table per thing compared, narrow enough for a
laptop screen, figures rounded to what they mean (4 places for a score, whole milliseconds).

A table is also what the CLI, the leaderboard and the build read back (``history.metadata_values``
turns it into rows), so no JSON copy of it sits beside it on the asset's page.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import dagster as dg

from ai_assets.core.evaluation.leaderboard import LeaderboardRow
from ai_assets.core.evaluation.retrieval import RetrievalScore

Row = Mapping[str, Any]
# A table's columns: (name, Dagster column type). The name is also the row's key when read back.
Columns = Sequence[tuple[str, str]]

SCORE_DIGITS = 4
# served_index's tables of the version it serves now, and of the candidate it evaluated.
SERVED_PREFIX, CANDIDATE_PREFIX = "served_", "candidate_"
# A laptop's metadata column shows about five columns: what was searched is one ("set/mode").
SEARCH = "search"
SCORE_COLUMNS: Columns = (
    (SEARCH, "string"), ("ndcg@10", "float"), ("recall@10", "float"), ("recall@100", "float"), ("mrr@10", "float"),
)
# Each eval set scored and its kind (hand-written, generated-offline, generated-model, feedback):
# the score tables name a set, this table says who made it, for the UI and for read_scores.
EVAL_SET_KINDS = "eval_set_kinds"
EVAL_SET_KIND_COLUMNS: Columns = (("eval_set", "string"), ("kind", "string"))
LATENCY_COLUMNS: Columns = ((SEARCH, "string"), ("queries", "int"), ("latency_p50_ms", "int"), ("latency_p95_ms", "int"))

# The leaderboard, per eval set/embedder/mode: quality, then cost; answers per eval set/embedder.
LEADERBOARD_COLUMNS: Columns = ((SEARCH, "string"), ("ndcg@10", "float"), ("recall@100", "float"), ("mrr@10", "float"))
LEADERBOARD_ANSWER_COLUMNS: Columns = (("answers_of", "string"), ("answer_f1", "float"), ("context_containment", "float"))
COST_COLUMNS: Columns = (
    (SEARCH, "string"), ("latency_p50_ms", "int"), ("latency_p95_ms", "int"), ("index_rows", "int"), ("index_mb", "float"),
)


def rounded(value: Any) -> Any:
    return round(value, SCORE_DIGITS) if isinstance(value, float) else value


def table_value(rows: Sequence[Row], columns: Columns) -> dg.TableMetadataValue:
    """``rows`` as a table of ``columns`` (other keys left out), floats to 4 places."""
    return dg.MetadataValue.table(
        records=[dg.TableRecord({name: rounded(row.get(name)) for name, _ in columns}) for row in rows],
        schema=dg.TableSchema(columns=[dg.TableColumn(name, kind) for name, kind in columns]),
    )


def listing(key: str, rows: Sequence[Row], columns: Columns) -> dict[str, dg.TableMetadataValue]:
    """``{key: table}``, or nothing for no rows: an empty state is said once, by a count beside it."""
    return {key: table_value(rows, columns)} if rows else {}


def present_columns(rows: Sequence[Row], columns: Columns, always: int) -> Columns:
    """The first ``always`` columns, then those that hold a value in some row: an offline run has
    no LLM scores, and a column of dashes says nothing."""
    return [*columns[:always], *(column for column in columns[always:] if any(row.get(column[0]) is not None for row in rows))]


def score_tables(scores: Sequence[RetrievalScore], prefix: str = "") -> dict[str, dg.TableMetadataValue]:
    """Retrieval scores as two tables, ``{prefix}scores`` (quality) and ``{prefix}latency``."""
    rows = [
        {
            **score.model_dump(by_alias=True),
            SEARCH: f"{score.eval_set}/{score.mode}",
            "latency_p50_ms": round(score.latency_p50_ms),
            "latency_p95_ms": round(score.latency_p95_ms),
        }
        for score in scores
    ]
    return {f"{prefix}scores": table_value(rows, SCORE_COLUMNS), f"{prefix}latency": table_value(rows, LATENCY_COLUMNS)}


def eval_set_kinds(scores: Sequence[RetrievalScore]) -> dict[str, dg.TableMetadataValue]:
    """``{EVAL_SET_KINDS: table}`` of the sets ``scores`` cover."""
    kinds = sorted({(score.eval_set, score.kind) for score in scores})
    return {EVAL_SET_KINDS: table_value([{"eval_set": name, "kind": kind} for name, kind in kinds], EVAL_SET_KIND_COLUMNS)}


def leaderboard_tables(rows: Sequence[LeaderboardRow]) -> dict[str, dg.TableMetadataValue]:
    """The leaderboard as ``leaderboard`` (retrieval quality, best nDCG@10 first), ``answers`` and
    ``cost`` (latency, index size)."""
    dumped = [
        {
            **row.model_dump(by_alias=True),
            SEARCH: f"{row.eval_set}/{row.embedder}/{row.mode}",
            "answers_of": f"{row.eval_set}/{row.embedder}",
            "latency_p50_ms": round(row.latency_p50_ms),
            "latency_p95_ms": round(row.latency_p95_ms),
            "index_mb": round(row.index_bytes / 1e6, 1) if row.index_bytes is not None else None,
        }
        for row in rows
    ]
    # Answers are scored per eval set and embedder, whatever the search mode: one row each.
    answers = list({row["answers_of"]: row for row in dumped}.values())
    return {
        "leaderboard": table_value(dumped, LEADERBOARD_COLUMNS),
        "answers": table_value(answers, LEADERBOARD_ANSWER_COLUMNS),
        "cost": table_value(dumped, COST_COLUMNS),
    }


def read_scores(metadata: Mapping[str, Any], prefix: str = "") -> list[dict[str, Any]]:
    """The rows ``score_tables`` wrote, read back through ``history.metadata_values``: quality
    joined with latency per eval set and mode (a table that is missing gives no columns)."""
    latency = {row[SEARCH]: row for row in metadata.get(f"{prefix}latency") or []}
    # Records made before the kinds were recorded have none: their sets were all hand-written.
    kinds = {row["eval_set"]: row["kind"] for row in metadata.get(EVAL_SET_KINDS) or []}
    rows = []
    for row in metadata.get(f"{prefix}scores") or []:
        eval_set, mode = row[SEARCH].rsplit("/", 1)
        joined = {
            **row, **latency.get(row[SEARCH], {}), "eval_set": eval_set, "mode": mode,
            "kind": kinds.get(eval_set, "hand-written"),
        }
        del joined[SEARCH]
        rows.append(joined)
    return rows


def shown_partition(context: dg.AssetExecutionContext) -> dict[str, str]:
    """A partitioned asset's overview shows its latest materialization, which is one partition's:
    this first row says which, and of how many (the Partitions tab has the others)."""
    partitions = context.assets_def.partitions_def
    count = len(partitions.get_partition_keys(dynamic_partitions_store=context.instance)) if partitions else 1
    return {"partition": f"{context.partition_key} (1 of {count})"}


def table_rows(value: dg.TableMetadataValue) -> list[dict[str, Any]]:
    return [dict(record.data) for record in value.records]
