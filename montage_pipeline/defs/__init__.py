"""Everything Dagster, and the only package that imports it: assets (one module per stage), IO
managers, resources, the partitions, the job and its schedule, sensors and admin jobs.

`code_location.build_definitions` loads this folder with `dg.load_from_defs_folder`; the packages
outside it are plain Python that these definitions call (see docs/architecture.md).
"""
