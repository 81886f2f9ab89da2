"""`soundtrack`: each cut's music on its EDL's beat grid, game audio, ducking and master, encoded for every
length its renders will have, made while the renders run (it needs their lengths, not their pictures).
`mixed_audio`: those soundtracks muxed into the renders and checked; a cut whose prepared soundtrack
does not fit its renders (an EDL rerun since, a render configured to another rate or with an end card)
gets its soundtrack made there, after the render, as the same code would have made it beside it."""

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg

from montage_pipeline.defs.assets.ui import image_markdown
from montage_pipeline.defs.catalog import OWNERS, stage_tags
from montage_pipeline.defs.executors import FILLS_CORES
from montage_pipeline.defs.io_managers.media_io_manager import OPTIONAL_INPUT, MediaBundle, MediaFile
from montage_pipeline.defs.location_settings import settings_metadata
from montage_pipeline.defs.partitions import weekly_partitions
from montage_pipeline.defs.resources.media_store import MediaStoreResource
from montage_pipeline.highlights.cuts import load_cut
from montage_pipeline.highlights.prepared_soundtrack import (
    MANIFEST,
    CutSound,
    MixSettings,
    PreparedCut,
    bundle_name,
    finish_cut,
    mix_maker,
    prepare_cuts,
    read_manifest,
    write_manifest,
)
from montage_pipeline.highlights.render_plan import RenderOptions, planned_lengths
from montage_pipeline.highlights.rows import EditSpan
from montage_pipeline.highlights.soundtrack import AUDIO_MEASUREMENTS, CUT_FINALS, cut_renders
from montage_pipeline.highlights.theme import load_theme
from montage_pipeline.media.audio_specs import AudioMeasurements
from montage_pipeline.media.loudness import loudness_plot
from montage_pipeline.media.mix import TARGET_LUFS
from montage_pipeline.media.mux import video_duration
from montage_pipeline.settings import Settings

CHECK = "meets_audio_spec"
# mixed_audio's code version: bump it when the same cut and renders give another soundtrack.
MIX_VERSION = "2"


class MixConfig(dg.Config):
    duck_db: float = 9.0  # how far the music drops under loud game action
    music_gain_db: float = -4.0  # music against the loudness-matched game audio
    bitrate_kbps: int = 320


CUTS = ("main", "short", "long")


@dg.asset(
    partitions_def=weekly_partitions,
    group_name="montage",
    kinds={"pydub", "audio"},
    code_version=MIX_VERSION,
    owners=OWNERS,
    tags=stage_tags("audio", "media"),
    # Its cuts' mixes and AAC encodes fill the cores: a local run keeps it from running beside the
    # render by default (`executors.FILLS_CORES_TAG`, executor config `cores_filled_at_once`).
    op_tags=FILLS_CORES,
    io_manager_key="media_io_manager",
    deps=["short_highlights", "long_highlights"],  # their spans: read from the media store
    description="Each cut's soundtrack (music on the beat grid + game audio, -14 LUFS), encoded for every "
    "length its renders will have; made while the renders run, muxed by mixed_audio.",
)
def soundtrack(
    context: dg.AssetExecutionContext,
    config: MixConfig,
    scored_highlights: list[EditSpan],
    media_store: MediaStoreResource,
    settings: dg.ResourceParam[Settings],
) -> Iterator[dg.Output[MediaBundle]]:
    store = media_store.store()
    week = context.partition_key
    theme = load_theme(store, week, scored_highlights)
    mix = MixSettings(config.duck_db, config.music_gain_db, config.bitrate_kbps * 1000)
    cut_spans = {
        "main": scored_highlights,
        **{cut: load_cut(store, week, cut, scored_highlights).spans for cut in ("short", "long")},
    }
    # The renders' lengths with their default options: a render configured otherwise (another rate, an
    # end card) measures other lengths, and mixed_audio makes that cut's soundtrack after it instead.
    lengths = planned_lengths(scored_highlights, RenderOptions(), cut_spans["short"], cut_spans["long"])
    make = mix_maker(week, settings.music_library, mix, theme.slug)
    workdir = Path(tempfile.mkdtemp(prefix="montage-soundtrack-"))
    try:
        cuts = prepare_cuts(
            cut_spans, {cut: lengths[cut] for cut in CUTS if cut in lengths}, make, workdir, mix.bitrate
        )
        files = {MANIFEST: MediaFile(write_manifest(cuts, mix, workdir), "application/json")}
        for prepared in cuts:
            for track in prepared.encoded.values():
                files[bundle_name(prepared.cut, track.path)] = MediaFile(track.path, "audio/mp4")
        context.log.info(
            "soundtracks made: "
            + ", ".join(f"{c.cut} {c.duration_s:.1f}s ({len(c.encoded)} encoded)" for c in cuts)
        )
        yield dg.Output(
            MediaBundle(files),
            metadata={
                **{f"{c.cut}_lengths_s": ", ".join(f"{n:.3f}" for n in lengths[c.cut]) for c in cuts},
                **{
                    f"{c.cut}_loudness_lufs": next(iter(c.encoded.values())).report.integrated_lufs
                    for c in cuts
                },
                "music": cuts[0].music,
                "tempo_bpm": cuts[0].tempo_bpm,
                **settings_metadata(settings),
            },
        )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _mix_metadata(main: CutSound, duration: float, failures: str) -> dict[str, Any]:
    done = main.done
    final = done.measured["final_landscape.mp4"]
    return {
        "loudness_lufs": final.integrated_lufs,
        "true_peak_dbtp": final.true_peak_dbtp,
        "loudness_range_lu": final.loudness_range_lu,
        "tempo_bpm": main.tempo_bpm,
        "music": main.music,
        "duration_s": round(duration, 3),
        # Each round is a master and an AAC encode; a second one means the encoder overshot.
        "master_rounds": done.master_rounds,
        "audio_failures": failures,
        "soundtrack_made": main.made,
    }


@dg.asset(
    partitions_def=weekly_partitions,
    group_name="montage",
    kinds={"pyav", "audio"},
    code_version=MIX_VERSION,
    owners=OWNERS,
    tags=stage_tags("audio", "media"),
    io_manager_key="media_io_manager",
    pool="render",
    check_specs=[dg.AssetCheckSpec(CHECK, asset="mixed_audio", blocking=True)],
    deps=["short_highlights", "long_highlights"],  # their spans: read from the media store
    ins={
        # Never made for the week: every cut's soundtrack is made here, after its render.
        "soundtrack": dg.AssetIn(metadata={OPTIONAL_INPUT: True}),
        # The other cuts: a render never made reads as a cut not made (the main cut still mixes).
        "short_portrait_render": dg.AssetIn(metadata={OPTIONAL_INPUT: True}),
        "long_landscape_render": dg.AssetIn(metadata={OPTIONAL_INPUT: True}),
    },
    description="Each cut's soundtrack muxed into its renders (landscape and portrait; the short's and the "
    "long cut's own) and checked: loudness, true peak, and the video still to spec.",
)
def mixed_audio(
    context: dg.AssetExecutionContext,
    scored_highlights: list[EditSpan],
    soundtrack: MediaBundle,
    landscape_render: MediaBundle,
    portrait_render: MediaBundle,
    short_portrait_render: MediaBundle,
    long_landscape_render: MediaBundle,
    media_store: MediaStoreResource,
    settings: dg.ResourceParam[Settings],
) -> Iterator[dg.Output[MediaBundle] | dg.AssetCheckResult]:
    store = media_store.store()
    week = context.partition_key
    mix, prepared = MixSettings(), dict[str, PreparedCut]()
    if MANIFEST in soundtrack.files:
        mix, prepared = read_manifest({name: f.path for name, f in soundtrack.files.items()})
    make = mix_maker(week, settings.music_library, mix, load_theme(store, week, scored_highlights).slug)
    landscape = landscape_render["video.mp4"].path
    renders = {"final_landscape.mp4": landscape, "final_portrait.mp4": portrait_render["video.mp4"].path}
    if "video_unbranded.mp4" in portrait_render.files:
        renders["final_portrait_unbranded.mp4"] = portrait_render["video_unbranded.mp4"].path
    workdir = Path(tempfile.mkdtemp(prefix="montage-mix-"))
    try:
        main = finish_cut(
            "main", scored_highlights, renders, prepared.get("main"), make, workdir, mix.bitrate
        )
        done = main.done
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
            f"LRA {report.loudness_range_lu} LU, music: {main.music}; {main.made}"
        )
        cut_metadata: dict[str, Any] = {}
        all_failures = list(done.failures)
        audio, reused, finals = AudioMeasurements(done.audio.reports), done.audio.reused, len(done.finals)
        for cut, render in (("short", short_portrait_render), ("long", long_landscape_render)):
            spans = load_cut(store, week, cut).spans
            if not spans or render.skip_reason or "video.mp4" not in render.files:
                reason = render.skip_reason or f"no {cut} cut EDL"
                cut_metadata[f"{cut}_cut"] = f"skipped: {reason}"
                continue
            other = finish_cut(
                cut,
                spans,
                cut_renders(cut, {n: f.path for n, f in render.files.items()}),
                prepared.get(cut),
                make,
                workdir / cut,
                mix.bitrate,
            )
            files.update({name: MediaFile(path, "video/mp4") for name, path in other.done.finals.items()})
            all_failures += other.done.failures
            audio.reports.update(other.done.audio.reports)
            reused += other.done.audio.reused
            finals += len(other.done.finals)
            measured = other.done.measured[CUT_FINALS[cut]]
            cut_metadata[f"{cut}_cut"] = f"{video_duration(other.done.finals[CUT_FINALS[cut]]):.1f}s"
            cut_metadata[f"{cut}_loudness_lufs"] = measured.integrated_lufs
            cut_metadata[f"{cut}_soundtrack_made"] = other.made
        files[AUDIO_MEASUREMENTS] = MediaFile(audio.write(workdir / AUDIO_MEASUREMENTS), "application/json")
        failures = "; ".join(all_failures) or "none"
        yield dg.Output(
            MediaBundle(files),
            metadata={
                **_mix_metadata(main, video_duration(landscape), failures),
                **cut_metadata,
                # Finals whose audio packets are their soundtrack's: checked from the soundtrack's own
                # measurement, not decoded again (`AudioMeasurements`).
                "finals_audio_from_soundtrack": f"{reused} of {finals}",
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
