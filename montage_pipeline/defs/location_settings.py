"""The settings this code location runs with: read once, when Dagster imports this folder.

Module-level definitions need them before any resource exists (the partitions' timezone, the
schedule's tick); `code_location.build_definitions` hands the same object to the resources, and the
assets that need a setting take it as the `settings` resource (`dg.ResourceParam[Settings]`) and record
what they used (`settings_metadata`): an operator looking at a week's materialization in the UI sees the
target length, music library, clip limits, timezone and profile that built it, next to the result.
"""

import dagster as dg

from montage_pipeline.settings import Settings, load_settings

settings: Settings = load_settings()


def settings_metadata(used: Settings) -> dict[str, dg.MetadataValue]:
    """The settings a step used, as the `settings` entry of its materialization (non-secret values,
    keyed by variable; a secret shows only `set`/`unset`)."""
    return {"settings": dg.MetadataValue.json(used.snapshot())}
