"""The two tags of Dagster's event records that this project reads or writes, by their value.

Dagster stores an asset's code version and data version as these tags on every materialization
and observation (the UI shows them), but exports their names only from ``dagster._core`` (no
public constant in 1.13). They are named once here instead of importing the private module:

- ``DATA_VERSION_TAG`` is how ``source_sensor`` (and `ai-assets build`) give their ``source_files``
  observations a data version. ``source_files`` is an observable source asset, but its observe
  function runs only in a run of its own, which the sensor would have to launch every tick; the
  sensor already computes the fingerprints and reports them in one event.
- ``CODE_VERSION_TAG`` is read back from a partition's latest materialization by ``ai-assets
  build`` (up_to_date.py). ``DagsterInstance.get_latest_materialization_code_versions`` is the
  public reader, but only for unpartitioned assets.
"""

DATA_VERSION_TAG = "dagster/data_version"
CODE_VERSION_TAG = "dagster/code_version"
