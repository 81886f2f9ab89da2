"""The code location's Definitions: every definition in this folder, with the active profile's resources.

`dg.load_from_defs_folder` imports each module under `montage_pipeline/defs/` and collects the assets,
jobs, schedules and sensors defined there; the resources are chosen here from the environment (see
`resources/wiring.py`). The module Dagster loads, `montage_pipeline.definitions`, sits outside this
folder and only calls `build_definitions()`: a `Definitions` object inside the folder would be loaded
into itself.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import dagster as dg

from montage_pipeline.defs.resources.wiring import build_resources
from montage_pipeline.profiles import load_profile


def build_definitions(env: Mapping[str, str] | None = None) -> dg.Definitions:
    """Everything under `defs/`, with resources for `env` (default: this process's environment)."""
    env = os.environ if env is None else env
    defs = dg.load_from_defs_folder(path_within_project=Path(__file__).parent)
    return defs.with_resources(build_resources(load_profile(env), env))
