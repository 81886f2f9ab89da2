"""Decoding, encoding, muxing and measuring media with PyAV, numpy, OpenCV, SciPy and PySceneDetect."""

# In every module the code location loads, OpenCV, SciPy and PySceneDetect are imported inside the
# functions that use them: Dagster's processes that only load the code location (the run worker, the
# code server, the daemon, the webserver) then do without them, 280 -> 185 MB and ~1 s each. The step
# processes' fork server imports OpenCV before it forks the steps (`defs/executors.py: STEP_PRELOAD`);
# the steps that use SciPy or PySceneDetect import them themselves. `test_dagster_boundary.py` holds the
# code location to it.
LAZY_LIBRARIES = ("cv2", "scipy.ndimage", "scipy.signal", "scenedetect")
