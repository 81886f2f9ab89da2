"""Imported last by the step processes' fork server (`defs/executors.py: STEP_PRELOAD`): everything the
server has loaded (the code location, Dagster, OpenCV) moves to the garbage collector's permanent
generation, which no collection visits.

A forked step shares the server's memory page by page until it writes to a page. Each collection in a
step writes to the header of every object it scans, so without this the first collections in a step
copied most of the server's heap into the step (the render's process: 715-724 MiB of PSS, 692-693 with
it; every process of the render's run at once 1048-1057 against 1003-1004 MiB, two interleaved pairs).
The frozen objects are the modules' own, alive for the process's life anyway; cycles among them are
never collected, which costs nothing in a server that only forks.
"""

import gc

gc.collect()
gc.freeze()
