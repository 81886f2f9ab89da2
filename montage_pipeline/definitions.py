"""The code location that Dagster, `dg` and workspace.yaml load (`-m montage_pipeline.definitions`).

Everything Dagster lives in `montage_pipeline/defs/`; this module only builds it. It stays outside that
folder because `dg.load_from_defs_folder` imports every module there, this one included if it were.
"""

from montage_pipeline.defs.code_location import build_definitions

defs = build_definitions()
