"""One tick of ``source_sensor``, applied as the daemon applies it: partitions added and removed,
observations stored. Used in-process by the tests, and as ``python -m ai_assets_tests.sensor_tick``
by the test without shared disk, where every step runs in its own process and directory (the
cursor comes in on stdin and goes out, with the requested runs, as JSON on stdout)."""

from __future__ import annotations

import json
import sys

import dagster as dg


def evaluate_sensor(
    definitions: dg.Definitions, instance: dg.DagsterInstance, cursor: str | None
) -> dg.SensorResult:
    """One tick, applied as the daemon would: partitions added/removed, observations stored."""
    sensor = definitions.resolve_sensor_def("source_sensor")
    context = dg.build_sensor_context(
        instance=instance, cursor=cursor, definitions=definitions, resources=definitions.resources
    )
    result = sensor(context)
    assert isinstance(result, dg.SensorResult)
    for request in result.dynamic_partitions_requests or []:
        if isinstance(request, dg.AddDynamicPartitionsRequest):
            instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
        else:
            for key in request.partition_keys:
                instance.delete_dynamic_partition(request.partitions_def_name, key)
    for event in result.asset_events or []:
        instance.report_runless_asset_event(event)
    return result


def requested(result: dg.SensorResult) -> list[tuple[str | None, str | None]]:
    return sorted((request.job_name, request.partition_key) for request in result.run_requests or [])


def main() -> None:
    from ai_assets.definitions import defs

    cursor = sys.stdin.read().strip() or None
    with dg.DagsterInstance.get() as instance:
        result = evaluate_sensor(defs, instance, cursor)
    print(json.dumps({"cursor": result.cursor, "runs": requested(result), "skip_reason": str(result.skip_reason or "")}))


if __name__ == "__main__":
    main()
