"""The media store's key layout, in one place.

    weeks/{week}/{asset}/{name}              a media asset's files and its manifest (media IO manager)
    weeks/{week}/edl.json, montage.otio      the week's edit decision list, for the pipeline and editors
    weeks/{week}/montage.{xml,fcpxml,edl}    the same timeline in the editors' other formats
    weeks/{week}/theme.json                  the week's theme, as scored_highlights decided it
    exports/{job_id}/{generation}/{name}     a published generation (s3_exports)
    analysis/v{version}/{options}/{aa}/{sha256}.npz   a clip's cached analysis, by content
    runs/{run_id}/{step_key}/{output}[/{mapping_key}].json   a step's small output (rows) for the next
    runs/{run_id}/render/{job}/{output}/...   a chunked render's pieces, for the join step

Keys are POSIX paths relative to the store's root (a folder, or the bucket's prefix).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

UNPARTITIONED_WEEK = "all"  # where an asset without partitions keeps its files


def week_prefix(week: str) -> str:
    """The folder of one week's pipeline files (`weeks/{week}`)."""
    return f"weeks/{week}"


def asset_prefix(week: str, asset_path: Sequence[str]) -> str:
    """The folder of one media asset's files for a week (`weeks/{week}/{asset}`)."""
    return f"{week_prefix(week)}/{'/'.join(asset_path)}"


def asset_file_key(week: str, asset: str, name: str) -> str:
    """One file of a media asset's bundle, e.g. `weeks/2025-01-27/landscape_render/thumbnail.jpg`."""
    return f"{asset_prefix(week, [asset])}/{name}"


def edl_json_key(week: str) -> str:
    return f"{week_prefix(week)}/edl.json"


def edl_otio_key(week: str) -> str:
    return f"{week_prefix(week)}/montage.otio"


def edl_export_key(week: str, name: str) -> str:
    """The week's timeline in one editor format, e.g. `weeks/2025-01-27/montage.xml`."""
    return f"{week_prefix(week)}/{name}"


def theme_key(week: str) -> str:
    return f"{week_prefix(week)}/theme.json"


def exports_prefix(job_id: int) -> str:
    """The folder of every generation of one montage job (`exports/{job_id}/`)."""
    return f"exports/{job_id}/"


def export_key(job_id: int, generation: str, name: str) -> str:
    return f"{exports_prefix(job_id)}{generation}/{name}"


def analysis_key(sha256: str, version: int, options: Mapping[str, object] | None = None) -> str:
    """Where a clip's analysis lives: its bytes, the code's version and the options decide the result."""
    tag = "-".join(f"{k}={options[k]}" for k in sorted(options)) if options else "default"
    return f"analysis/v{version}/{tag}/{sha256[:2]}/{sha256}.npz"


def step_output_key(run_id: str, step_key: str, output: str, mapping_key: str | None = None) -> str:
    """Where a step leaves a small output (rows, never media) for the steps after it, on any worker."""
    tail = f"/{mapping_key}" if mapping_key else ""
    return f"runs/{run_id}/{step_key}/{output}{tail}.json"


def render_piece_prefix(run_id: str, job: str) -> str:
    """Where a chunked render's job leaves its pieces (video and thumbnails) for the join step."""
    return f"runs/{run_id}/render/{job}"
