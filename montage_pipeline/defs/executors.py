"""The executor a run's steps use: Dagster's default (a process per step on the run's machine) or
Dagster's Celery executor, which sends each step to whichever worker takes it from the broker.

With Celery, nothing passes between steps but the media store and the databases (the IO managers), so
the production profile is the one to use (PostgreSQL for Dagster's instance and the tables, S3 for
media): every worker reaches both, and each keeps its own temp and cache folders. The workers start
with `deploy/celery_worker.yaml`, which must say what `celery_config` says here (a test compares them).
"""

from __future__ import annotations

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


def build_executor(settings: ExecutorSettings) -> dg.ExecutorDefinition | None:
    """None: Dagster's default executor."""
    if settings.kind == "celery":
        return celery_executor.configured(celery_config(settings), name="celery")
    return None
