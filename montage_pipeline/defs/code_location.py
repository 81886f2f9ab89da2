"""The code location's Definitions: every definition in this folder, with the active profile's resources.

`dg.load_from_defs_folder` imports each module under `montage_pipeline/defs/` and collects the assets,
jobs, schedules and sensors defined there; the resources are built here from the settings (see
`resources/wiring.py`), which are read once (`location_settings.py`). The module Dagster loads,
`montage_pipeline.definitions`, sits outside this folder and only calls `build_definitions()`: a
`Definitions` object inside the folder would be loaded into itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import dagster as dg

from montage_pipeline.defs.executors import build_executor, render_pool_ops
from montage_pipeline.defs.location_settings import settings as location_settings
from montage_pipeline.defs.resources.wiring import build_resources
from montage_pipeline.settings import load_settings


def build_definitions(env: Mapping[str, str] | None = None) -> dg.Definitions:
    """Everything under `defs/`, with resources for `env` (default: the settings this process loaded
    once, `location_settings`)."""
    settings = location_settings if env is None else load_settings(env)
    defs = dg.load_from_defs_folder(path_within_project=Path(__file__).parent)
    executor = build_executor(settings.executor, render_pool_ops(defs))
    defs = dg.Definitions.merge(defs, dg.Definitions(executor=executor))
    return defs.with_resources(build_resources(settings))
