"""Reading what earlier materializations recorded, from the Dagster instance."""

from __future__ import annotations

from typing import Any

import dagster as dg


def latest_metadata(instance: dg.DagsterInstance, asset: str, partition: str | None = None) -> dict[str, Any] | None:
    """Metadata values of the asset's latest materialization (of that partition), or None."""
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=[partition] if partition else None),
        limit=1,
    ).records
    materialization = records[0].asset_materialization if records else None
    if materialization is None:
        return None
    return {key: value.value for key, value in materialization.metadata.items()} | {"run_id": records[0].run_id}
