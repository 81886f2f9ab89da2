"""The executor a run's steps use: a process per step on the run's machine (Dagster's multiprocess
executor) or Dagster's Celery executor, which sends each step to whichever worker takes it from the broker.

Locally each step's process is forked from a server process that imported the code location once
(`start_method: forkserver`), instead of a fresh interpreter importing Dagster, PyAV, OpenCV and the
definitions again for every step: 0–1 s from launch to start per step instead of 3–5 s, measured on a
demo week's first four steps from the CLI (`dagster asset materialize`), 27.1 s against 32.9 s.

With Celery, nothing passes between steps but the media store and the databases (the IO managers), so
the production profile is the one to use (PostgreSQL for Dagster's instance and the tables, S3 for
media): every worker reaches both, and each keeps its own temp and cache folders. The workers start
with `deploy/celery_worker.yaml`, which must say what `celery_config` says here (a test compares them).

On Kubernetes (`deploy/helm/values.yaml`, Dagster's chart with the K8sRunLauncher), `k8s` runs each step
as a Job of its own (`dagster-k8s`, the `[k8s]` extra). The render pool's steps (decode, encode, mix)
ask for more CPU than the rest: `k8s_config` gives each op of that pool its own resource requests,
keyed by the op's own name (see `render_pool_ops`).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import dagster as dg
from dagster_celery import celery_executor

from montage_pipeline.settings import DEFAULT_CELERY_BROKER, ExecutorSettings

# A step whose worker dies is not lost: the broker hands its task to another worker, because a task
# is acknowledged only when it ends (acks_late) and a lost worker's task is rejected back to the queue.
# One task per worker at a time: a step is minutes of CPU, not a quick message.
CELERY_CONFIG_SOURCE: dict[str, Any] = {
    "task_acks_late": True,
    "task_reject_on_worker_lost": True,
    "worker_prefetch_multiplier": 1,
}


def celery_config(settings: ExecutorSettings) -> dict[str, Any]:
    """The executor's config: the broker from the environment (it may carry a password), never inline."""
    broker: Any = {"env": settings.celery_broker.var} if settings.celery_broker else DEFAULT_CELERY_BROKER
    return {
        "broker": broker,
        "backend": settings.celery_backend,
        "config_source": {**CELERY_CONFIG_SOURCE, "task_default_queue": settings.celery_queue},
    }


# The pool whose steps encode video (see the assets' `pool=`): on Kubernetes, pods with more CPU.
RENDER_POOL = "render"
# Each step's pod: enough for selection, analysis of a few clips, the exports and posts.
STEP_RESOURCES: dict[str, Any] = {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"memory": "2Gi"}}
# A render-pool step decodes every clip and encodes two renders (libx264 uses every core it is given).
RENDER_STEP_RESOURCES: dict[str, Any] = {
    "requests": {"cpu": "2", "memory": "2Gi"},
    "limits": {"memory": "4Gi"},
}


def k8s_config(render_ops: Collection[str]) -> dict[str, Any]:
    """The k8s executor's config: every step pod's resources, and the render pool's ops with more CPU
    (by leaf op name, see `render_pool_ops`; the rest of each pod, image and environment, comes from
    the chart's run launcher)."""
    return {
        "step_k8s_config": {"container_config": {"resources": STEP_RESOURCES}},
        "per_step_k8s_config": {
            op: {"container_config": {"resources": RENDER_STEP_RESOURCES}} for op in sorted(render_ops)
        },
    }


def render_pool_ops(defs: dg.Definitions) -> set[str]:
    """The names of the ops whose steps take a slot of the render pool, as `per_step_k8s_config` must
    be keyed: by the op's own (leaf) name, also inside a graph-backed asset (`render_chunk`, not
    `montage_renders.render_chunk`). dagster-k8s looks a step's override up by
    `step.op_name` (`K8sStepHandler._get_container_context`), which is the step's node handle's
    name, the leaf op name, for a step at the top of the job and inside a graph alike; a key with the
    graph's prefix is never found and the step gets the default pod.

    A leaf name cannot tell two ops apart, so an op name taken both by a render-pool op and by an op
    outside the pool (in another graph) is an error here instead of a bigger pod for the wrong step."""
    pools: dict[str, set[str | None]] = {}
    for asset in defs.assets or ():
        if not (isinstance(asset, dg.AssetsDefinition) and asset.is_executable):
            continue
        for op in asset.node_def.iterate_op_defs():
            pools.setdefault(op.name, set()).add(op.pool)
    clashes = sorted(name for name, found in pools.items() if RENDER_POOL in found and len(found) > 1)
    if clashes:
        raise ValueError(
            f"ops named {clashes} are in the {RENDER_POOL!r} pool and outside it: dagster-k8s keys a "
            "step's pod config by its op's name alone, so rename one of them"
        )
    return {name for name, found in pools.items() if RENDER_POOL in found}


# What the step processes' server imports before it forks them: the whole code location, and of the
# media libraries the location leaves to the functions that use them (`media.LAZY_LIBRARIES`) only
# OpenCV, which the render's spec checks and the selection's fingerprints use (0.04 s to import, ~11
# MiB of heap shared with every step forked). SciPy (the soundtrack and the mix) and PySceneDetect (the
# analysis workers, which a fork server of their own starts) are imported by the steps that use them,
# ~0.9 s there: preloaded, their ~42 MiB of heap stayed in the fork server through the whole week,
# beside the render, which uses neither (README, "The whole week"). Last, `freeze_preloaded` takes what
# the server loaded out of the collector's reach, so that a step's collections do not copy it.
STEP_PRELOAD = ["montage_pipeline.definitions", "cv2", "montage_pipeline.freeze_preloaded"]

# The op tag of a step that keeps a machine's cores busy by itself (the render's encoders, a soundtrack's
# mixes and AAC encodes). The local executor runs one such step at a time by default
# (`cores_filled_at_once`, 1), beside any number of lighter steps: on 2 cores the soundtrack beside the
# render bought ~4 s of a 121-125 s 1080p week and held ~300 MiB more at once (1282 against 983 MiB
# over every process of the week), over the week's 1 GiB aim (README, "The whole week"). A run config
# `cores_filled_at_once: 0` runs them side by side again, for a machine with memory to spare. Celery
# and Kubernetes give each step a worker or pod of its own, so the tag means nothing there.
FILLS_CORES_TAG = "montage/fills_cores"
FILLS_CORES = {FILLS_CORES_TAG: "true"}
CORES_FILLED_AT_ONCE = 1


def _forkserver(config: dict[str, Any]) -> dict[str, Any]:
    """The multiprocess executor's config: steps forked from a preloaded server, and at most
    `cores_filled_at_once` steps tagged `FILLS_CORES` at a time (0: no limit)."""
    config = dict(config)
    filled = config.pop("cores_filled_at_once", CORES_FILLED_AT_ONCE)
    limits = [{"key": FILLS_CORES_TAG, "value": "true", "limit": filled}] if filled else []
    return {
        **config,
        "start_method": {"forkserver": {"preload_modules": STEP_PRELOAD}},
        "tag_concurrency_limits": limits,
    }


local_executor = dg.multiprocess_executor.configured(
    _forkserver,
    name="multiprocess",
    config_schema={
        "max_concurrent": dg.Field(
            int, is_required=False, description="Steps at once (default: one per CPU; 0 for no limit)."
        ),
        "cores_filled_at_once": dg.Field(
            int,
            is_required=False,
            default_value=CORES_FILLED_AT_ONCE,
            description="Steps that fill the cores by themselves (the render, the soundtrack) at once "
            "(default 1, which bounds the week's memory; 0: no limit, side by side).",
        ),
    },
)


def build_executor(settings: ExecutorSettings, render_ops: Collection[str] = ()) -> dg.ExecutorDefinition:
    """The executor `MONTAGE_EXECUTOR` names. `render_ops`: the render pool's ops (for `k8s`)."""
    if settings.kind == "celery":
        return celery_executor.configured(celery_config(settings), name="celery")
    if settings.kind == "k8s":
        try:
            from dagster_k8s import k8s_job_executor
        except ImportError as exc:  # an optional extra: say which, not a bare ModuleNotFoundError
            raise ImportError(
                "MONTAGE_EXECUTOR=k8s needs dagster-k8s: pip install 'montage_pipeline[k8s]'"
            ) from exc
        return k8s_job_executor.configured(k8s_config(render_ops), name="k8s")
    return local_executor
