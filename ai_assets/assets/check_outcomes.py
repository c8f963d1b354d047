"""Which error-severity checks an asset's last materialization failed, kept in its own metadata.

`ai-assets build` re-runs a step whose error check failed last time. Dagster's public instance
API reads a check's latest evaluation only without a partition, and these checks are
partitioned, so each asset records the names of its failed error checks next to its output.
"""

from __future__ import annotations

from collections.abc import Iterable

import dagster as dg

FAILED_ERROR_CHECKS = "failed_error_checks"  # metadata key: a JSON list of check names


def failed_error_checks(results: Iterable[dg.AssetCheckResult]) -> dict[str, dg.MetadataValue]:
    """The metadata entry naming the failed error checks among ``results`` (an empty list: none)."""
    names = sorted(
        str(result.check_name)
        for result in results
        if not result.passed and result.severity == dg.AssetCheckSeverity.ERROR
    )
    return {FAILED_ERROR_CHECKS: dg.MetadataValue.json(names)}
