"""`mixed_audio`: generated music on the EDL's beat grid, game audio, ducking, mastering, final mux —
for the main cut, and its own music, mix and master for the short and the long cut when they exist."""

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg

from montage_pipeline.defs.assets.ui import image_markdown
from montage_pipeline.defs.catalog import OWNERS, stage_tags
from montage_pipeline.defs.io_managers.media_io_manager import OPTIONAL_INPUT, MediaBundle, MediaFile
from montage_pipeline.defs.location_settings import settings_metadata
from montage_pipeline.defs.partitions import weekly_partitions
from montage_pipeline.defs.resources.media_store import MediaStoreResource
from montage_pipeline.highlights.cuts import load_cut
from montage_pipeline.highlights.rows import EditSpan
from montage_pipeline.highlights.soundtrack import (
    CUT_FINALS,
    FinishedCuts,
    Mix,
    build_mix,
    finish_cuts,
    finish_other_cut,
)
from montage_pipeline.highlights.theme import load_theme
from montage_pipeline.media.loudness import loudness_plot
from montage_pipeline.media.mix import TARGET_LUFS
from montage_pipeline.media.mux import video_duration
from montage_pipeline.settings import Settings

CHECK = "meets_audio_spec"
# mixed_audio's code version: bump it when the same cut and renders give another soundtrack.
MIX_VERSION = "1"


class MixConfig(dg.Config):
    duck_db: float = 9.0  # how far the music drops under loud game action
    music_gain_db: float = -4.0  # music against the loudness-matched game audio
    bitrate_kbps: int = 320


def _mix_metadata(mix: Mix, done: FinishedCuts, duration: float, failures: str) -> dict[str, Any]:
    final = done.measured["final_landscape.mp4"]
    return {
        "loudness_lufs": final.integrated_lufs,
        "true_peak_dbtp": final.true_peak_dbtp,
        "loudness_range_lu": final.loudness_range_lu,
        "tempo_bpm": mix.plan.tempo_bpm,
        "music": mix.music,
        "duration_s": round(duration, 3),
        # Each round is a master and an AAC encode; a second one means the encoder overshot.
        "master_rounds": done.master_rounds,
        "audio_failures": failures,
    }


@dg.asset(
    partitions_def=weekly_partitions,
    group_name="montage",
    kinds={"pyav", "pydub", "audio"},
    code_version=MIX_VERSION,
    owners=OWNERS,
    tags=stage_tags("audio", "media"),
    io_manager_key="media_io_manager",
    pool="render",
    check_specs=[dg.AssetCheckSpec(CHECK, asset="mixed_audio", blocking=True)],
    deps=["short_highlights", "long_highlights"],  # their spans: read from the media store
    ins={
        # The other cuts: a render never made reads as a cut not made (the main cut still mixes).
        "short_portrait_render": dg.AssetIn(metadata={OPTIONAL_INPUT: True}),
        "long_landscape_render": dg.AssetIn(metadata={OPTIONAL_INPUT: True}),
    },
    description="The soundtrack (music on the beat grid + game audio, -14 LUFS) muxed into both renders, "
    "and the short's and the long cut's own soundtracks muxed into theirs.",
)
def mixed_audio(
    context: dg.AssetExecutionContext,
    config: MixConfig,
    scored_highlights: list[EditSpan],
    landscape_render: MediaBundle,
    portrait_render: MediaBundle,
    short_portrait_render: MediaBundle,
    long_landscape_render: MediaBundle,
    media_store: MediaStoreResource,
    settings: dg.ResourceParam[Settings],
) -> Iterator[dg.Output[MediaBundle] | dg.AssetCheckResult]:
    landscape = landscape_render["video.mp4"].path
    duration = video_duration(landscape)
    theme = load_theme(media_store.store(), context.partition_key, scored_highlights)
    mix = build_mix(
        scored_highlights,
        duration,
        context.partition_key,
        settings.music_library,
        config.duck_db,
        config.music_gain_db,
        theme.slug,
    )
    renders = {"final_landscape.mp4": landscape, "final_portrait.mp4": portrait_render["video.mp4"].path}
    if "video_unbranded.mp4" in portrait_render.files:
        renders["final_portrait_unbranded.mp4"] = portrait_render["video_unbranded.mp4"].path
    workdir = Path(tempfile.mkdtemp(prefix="montage-mix-"))
    try:
        done = finish_cuts(mix, renders, workdir, bitrate=config.bitrate_kbps * 1000)
        assert done.soundtrack is not None  # the landscape cut is the mix's full length
        files = {name: MediaFile(path, "video/mp4") for name, path in done.finals.items()}
        files["soundtrack.m4a"] = MediaFile(done.soundtrack.path, "audio/mp4")
        final = done.measured["final_landscape.mp4"]
        plot = loudness_plot(final.short_term_lufs, TARGET_LUFS)
        plot.save(workdir / "loudness.png")
        files["loudness.png"] = MediaFile(workdir / "loudness.png", "image/png")
        report = done.soundtrack.report
        context.log.info(
            f"soundtrack {report.integrated_lufs} LUFS, true peak {report.true_peak_dbtp} dBTP, "
            f"LRA {report.loudness_range_lu} LU, music: {mix.music}"
        )
        cut_metadata: dict[str, Any] = {}
        all_failures = list(done.failures)
        store = media_store.store()
        for cut, render in (("short", short_portrait_render), ("long", long_landscape_render)):
            spans = load_cut(store, context.partition_key, cut).spans
            if not spans or render.skip_reason or "video.mp4" not in render.files:
                reason = render.skip_reason or f"no {cut} cut EDL"
                cut_metadata[f"{cut}_cut"] = f"skipped: {reason}"
                continue
            other = finish_other_cut(
                cut,
                spans,
                {n: f.path for n, f in render.files.items()},
                context.partition_key,
                settings.music_library,
                (config.duck_db, config.music_gain_db),
                theme.slug,
                workdir / cut,
                config.bitrate_kbps * 1000,
            )
            files.update({name: MediaFile(path, "video/mp4") for name, path in other.finals.items()})
            all_failures += other.failures
            measured = other.measured[CUT_FINALS[cut]]
            cut_metadata[f"{cut}_cut"] = f"{video_duration(other.finals[CUT_FINALS[cut]]):.1f}s"
            cut_metadata[f"{cut}_loudness_lufs"] = measured.integrated_lufs
        failures = "; ".join(all_failures) or "none"
        yield dg.Output(
            MediaBundle(files),
            metadata={
                **_mix_metadata(mix, done, duration, failures),
                **cut_metadata,
                "loudness_plot": dg.MetadataValue.md(image_markdown(plot, "loudness", image_format="PNG")),
                **settings_metadata(settings),
            },
        )
        yield dg.AssetCheckResult(
            check_name=CHECK,
            passed=not all_failures,
            metadata={
                "failures": failures,
                "loudness_lufs": final.integrated_lufs,
                "true_peak_dbtp": final.true_peak_dbtp,
                "longest_silence_s": round(final.longest_silence_s, 3),
            },
        )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
