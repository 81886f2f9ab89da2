"""Analysis results cached in the media store, keyed by content hash and analysis version.

A clip's analysis depends only on its bytes and on the analysis code, so a rerun or a backfill of any
week skips every clip already analysed, wherever it was uploaded.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from montage_pipeline.media.analysis import ANALYSIS_VERSION, ClipAnalysis, iter_analyze_clips
from montage_pipeline.storage.keys import analysis_key
from montage_pipeline.storage.media_store import MediaStore

log = logging.getLogger(__name__)


def cache_key(sha256: str, options: dict[str, object] | None = None) -> str:
    """Where a clip's analysis by the current analysis code lives (see `storage/keys.py`)."""
    return analysis_key(sha256, ANALYSIS_VERSION, options)


@dataclass(frozen=True, slots=True)
class AnalysisJob:
    clip_id: str
    sha256: str
    path: Path


@dataclass(frozen=True, slots=True)
class AnalysisOutcome:
    clip_id: str
    analysis: ClipAnalysis | None
    cached: bool
    error: str | None
    key: str


def load_cached(
    store: MediaStore, sha256: str, workdir: Path, options: dict[str, object] | None = None
) -> ClipAnalysis | None:
    return load_key(store, cache_key(sha256, options), workdir)


def load_key(store: MediaStore, key: str, workdir: Path) -> ClipAnalysis | None:
    """The cached analysis at `key`, or None when it is absent or unreadable."""
    if not store.exists(key):
        return None
    local = workdir / Path(key).name
    store.get_file(key, local)
    try:
        return ClipAnalysis.load(local)
    except (OSError, ValueError, KeyError) as exc:  # a damaged cache entry is recomputed, not fatal
        log.warning("cache entry %s unreadable (%s); recomputing", key, exc)
        return None
    finally:
        local.unlink(missing_ok=True)


def analyze_with_cache(
    jobs: list[AnalysisJob],
    store: MediaStore,
    *,
    workers: int = 2,
    on_outcome: Callable[[AnalysisOutcome], None] | None = None,
    **analysis_options: object,
) -> list[AnalysisOutcome]:
    """Analyses for `jobs` in order: from the cache where present, else computed (in parallel) and stored."""
    outcomes: dict[str, AnalysisOutcome] = {}
    with tempfile.TemporaryDirectory(prefix="montage-analysis-") as tmp:
        workdir = Path(tmp)
        todo: list[AnalysisJob] = []
        for job in jobs:
            cached = load_cached(store, job.sha256, workdir, analysis_options)
            if cached is None:
                todo.append(job)
            else:
                key = cache_key(job.sha256, analysis_options)
                outcomes[job.clip_id] = AnalysisOutcome(job.clip_id, cached, True, None, key)
                if on_outcome:
                    on_outcome(outcomes[job.clip_id])
        results = (
            iter_analyze_clips([j.path for j in todo], workers=workers, **analysis_options)
            if todo
            else iter(())
        )
        for index, result in results:
            job = todo[index]
            key = cache_key(job.sha256, analysis_options)
            if isinstance(result, Exception):
                outcome = AnalysisOutcome(job.clip_id, None, False, f"{type(result).__name__}: {result}", key)
            else:
                local = workdir / f"{job.sha256}.npz"
                result.save(local)
                store.put_file(local, key, content_type="application/octet-stream")
                local.unlink(missing_ok=True)
                outcome = AnalysisOutcome(job.clip_id, result, False, None, key)
            outcomes[job.clip_id] = outcome
            if on_outcome:
                on_outcome(outcome)
    return [outcomes[j.clip_id] for j in jobs]
