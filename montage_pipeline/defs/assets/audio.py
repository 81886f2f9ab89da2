"""`mixed_audio`: generated music on the EDL's beat grid, game audio, ducking, mastering, final mux."""

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import numpy as np

from montage_pipeline.defs.assets.ui import image_markdown
from montage_pipeline.defs.catalog import OWNERS, stage_tags
from montage_pipeline.defs.io_managers.media_io_manager import MediaBundle, MediaFile
from montage_pipeline.defs.location_settings import settings_metadata
from montage_pipeline.defs.partitions import weekly_partitions
from montage_pipeline.highlights.rows import EditSpan
from montage_pipeline.media.audio_specs import audio_failures, inspect_audio
from montage_pipeline.media.loudness import loudness_plot
from montage_pipeline.media.mix import RATE, TARGET_LUFS, AudioSpan, combine, duck_gain, game_track
from montage_pipeline.media.music import generate, plan_for_week
from montage_pipeline.media.music_library import fit_track, week_track
from montage_pipeline.media.mux import EncodedSoundtrack, fit_to, master_and_encode, mux, video_duration
from montage_pipeline.media.specs import inspect_video, spec_failures
from montage_pipeline.settings import Settings

CHECK = "meets_audio_spec"
# mixed_audio's code version: bump it when the same cut and renders give another soundtrack.
MIX_VERSION = "1"


class MixConfig(dg.Config):
    duck_db: float = 9.0  # how far the music drops under loud game action
    music_gain_db: float = -4.0  # music against the loudness-matched game audio
    bitrate_kbps: int = 320


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
    description="The soundtrack (music on the beat grid + game audio, -14 LUFS) muxed into both renders.",
)
def mixed_audio(
    context: dg.AssetExecutionContext,
    config: MixConfig,
    scored_highlights: list[EditSpan],
    landscape_render: MediaBundle,
    portrait_render: MediaBundle,
    settings: dg.ResourceParam[Settings],
) -> Iterator[dg.Output[MediaBundle] | dg.AssetCheckResult]:
    spans = sorted(scored_highlights, key=lambda s: s.order)
    landscape = landscape_render["video.mp4"].path
    duration = video_duration(landscape)
    scores = np.array([s.score for s in spans])
    energy = (scores - scores.min()) / (np.ptp(scores) or 1.0) * 0.6 + 0.3  # 0.3..0.9 by score
    order = np.argsort(np.argsort([s.order for s in spans]))
    # Energy rises through the montage: blend each clip's score with its position.
    rising = [0.5 * float(energy[i]) + 0.5 * (order[i] / max(1, len(spans) - 1)) for i in range(len(spans))]
    plan = plan_for_week(
        context.partition_key,
        spans[0].tempo_bpm,
        duration,
        spans[0].intro_s,
        [s.montage_in_s for s in spans[1:]],
        rising,
    )
    library_track = week_track(settings.music_library, context.partition_key)
    # A library track starts at its first beat and shares the edit's tempo (scored_highlights used it).
    music = fit_track(library_track, duration) if library_track is not None else generate(plan)
    audio_spans = [
        AudioSpan(
            Path(s.source_path),
            s.source_in_s,
            s.source_out_s,
            s.montage_in_s,
            s.montage_out_s,
            s.source_has_audio,
            s.transition_s if s.transition_in == "dissolve" else 0.0,
        )
        for s in spans
    ]
    game = game_track(audio_spans, duration)
    mixed = combine(music * duck_gain(game, config.duck_db), game, config.music_gain_db)
    workdir = Path(tempfile.mkdtemp(prefix="montage-mix-"))
    try:
        outputs = {"final_landscape.mp4": landscape, "final_portrait.mp4": portrait_render["video.mp4"].path}
        if "video_unbranded.mp4" in portrait_render.files:
            outputs["final_portrait_unbranded.mp4"] = portrait_render["video_unbranded.mp4"].path
        files: dict[str, MediaFile] = {}
        failures: list[str] = []
        measured = {}
        # One mastered, encoded soundtrack per distinct cut (length, fade); cuts that share one copy it.
        encoded: dict[tuple[int, float], EncodedSoundtrack] = {}
        for name, video in outputs.items():
            length = video_duration(video)
            # A shorter cut (the 180 s portrait, the copy without an end card) fades out over its last second.
            fade = 0.0 if abs(length - duration) < 1e-3 else 1.0
            key = (round(length * RATE), fade)
            if key not in encoded:
                encoded[key] = master_and_encode(
                    fit_to(mixed, length, fade_out_s=fade),
                    workdir / f"soundtrack-{len(encoded)}.m4a",
                    bitrate=config.bitrate_kbps * 1000,
                )
            mux(video, encoded[key].path, workdir / name)
            spec = inspect_audio(workdir / name)
            measured[name] = spec
            failures += [f"{name}: {f}" for f in audio_failures(spec)]
            # Muxing rewrites the container: the video must still be what the render check passed.
            video_spec = inspect_video(workdir / name, stills=False)
            failures += [
                f"{name}: {f}"
                for f in spec_failures(video_spec, width=video_spec.width, height=video_spec.height)
            ]
            files[name] = MediaFile(workdir / name, "video/mp4")
        landscape_audio = encoded[(round(duration * RATE), 0.0)]
        report = landscape_audio.report
        files["soundtrack.m4a"] = MediaFile(landscape_audio.path, "audio/mp4")
        final = measured["final_landscape.mp4"]
        plot = loudness_plot(final.short_term_lufs, TARGET_LUFS)
        plot.save(workdir / "loudness.png")
        files["loudness.png"] = MediaFile(workdir / "loudness.png", "image/png")
        context.log.info(
            f"soundtrack {report.integrated_lufs} LUFS, true peak {report.true_peak_dbtp} dBTP, "
            f"LRA {report.loudness_range_lu} LU, music: {getattr(library_track, 'path', 'generated')}"
        )
        yield dg.Output(
            MediaBundle(files),
            metadata={
                "loudness_lufs": final.integrated_lufs,
                "true_peak_dbtp": final.true_peak_dbtp,
                "loudness_range_lu": final.loudness_range_lu,
                "tempo_bpm": plan.tempo_bpm,
                "music": f"{library_track.path.name} ({library_track.tempo_bpm:g} BPM)"
                if library_track
                else f"generated (seed {plan.seed}, {plan.tempo_bpm:g} BPM)",
                "duration_s": round(duration, 3),
                # Each round is a master and an AAC encode; a second one means the encoder overshot.
                "master_rounds": sum(e.rounds for e in encoded.values()),
                "loudness_plot": dg.MetadataValue.md(image_markdown(plot, "loudness", image_format="PNG")),
                "audio_failures": "; ".join(failures) or "none",
                **settings_metadata(settings),
            },
        )
        yield dg.AssetCheckResult(
            check_name=CHECK,
            passed=not failures,
            metadata={
                "failures": "; ".join(failures) or "none",
                "loudness_lufs": final.integrated_lufs,
                "true_peak_dbtp": final.true_peak_dbtp,
                "longest_silence_s": round(final.longest_silence_s, 3),
            },
        )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
