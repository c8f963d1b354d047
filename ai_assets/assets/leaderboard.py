import dagster as dg

from ai_assets.core.evaluation.leaderboard import LeaderboardRow
from ai_assets.history import evaluation_leaderboard
from ai_assets.metadata_tables import leaderboard_tables
from ai_assets.naming import KnowledgeBaseNames
from ai_assets.resources import Embedders


def build_model_leaderboard(names: KnowledgeBaseNames) -> dg.AssetsDefinition:
    @dg.asset(
        key=names.key("model_leaderboard"),
        deps=[names.key("served_index"), names.key("answer_evaluation")],
        group_name=names.name("evaluation"),
        kinds={"python"},
        code_version="1",
        required_resource_keys=names.resource_keys("embedders"),
        io_manager_key=names.name("io_manager"),
        # Follows any evaluation: a new score of one embedder re-ranks the whole table.
        automation_condition=dg.AutomationCondition.eager(),
        description=(
            "Every enabled embedder x eval set x search mode in one table: nDCG@10, recall@100, MRR@10, "
            "query latency, answer F1 and context containment, and index size, of the version each "
            "embedder serves. Read it before switching models; it is rebuilt whenever an evaluation is."
        ),
    )
    def model_leaderboard(context: dg.AssetExecutionContext) -> dg.Output[list[LeaderboardRow]]:
        embedders: Embedders = names.resource(context, "embedders")  # type: ignore[assignment]
        rows = evaluation_leaderboard(context.instance, names, embedders.enabled)
        return dg.Output(
            rows,
            metadata={
                "embedders": len({row.embedder for row in rows}),
                "rows": len(rows),
                # Split by what they compare, to fit a laptop screen: quality, then cost.
                **leaderboard_tables(rows),
            },
        )

    return model_leaderboard
