"""The benchmark's code location, and the process that runs its week under the multiprocess executor.

`bench_week.py --executor multiprocess` runs the week here, in a fresh interpreter that imports what
Dagster's run worker (`dagster api execute_run`) imports, the code location and Dagster, and nothing
of the benchmark's own (the clip generator's OpenCV and SciPy, the floor's helpers): the week's
processes are then what they are under the schedule, and the harness that measures them is not one of
them. The step processes reconstruct the job from this file too.

    python week_location.py '<run config as JSON>'   # prints the run's id; DAGSTER_HOME: the instance
"""

from __future__ import annotations

import json
import os
import sys

import dagster as dg

WEEK = "2025-01-27"


def week_defs() -> dg.Definitions:
    """The code location this process's environment configures, with a job of every asset."""
    from montage_pipeline.defs.code_location import build_definitions

    # Weekly: Dagster takes the partitioning from the selected assets.
    week = dg.define_asset_job("bench_week", selection=dg.AssetSelection.all())
    return dg.Definitions.merge(build_definitions(dict(os.environ)), dg.Definitions(jobs=[week]))


def week_job() -> dg.JobDefinition:
    return week_defs().resolve_job_def("bench_week")


def main() -> None:
    """Run the week on the instance DAGSTER_HOME names with the location's executor; print the run id."""
    with dg.DagsterInstance.get() as instance:
        result = dg.execute_job(
            dg.reconstructable(week_job),
            instance,
            run_config=json.loads(sys.argv[1]),
            tags={"dagster/partition": WEEK},
        )
        print(json.dumps({"run_id": result.run_id, "success": result.success}), flush=True)


if __name__ == "__main__":
    main()
