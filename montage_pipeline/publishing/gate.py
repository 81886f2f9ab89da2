"""The last look at a final MP4 before it is published: would a platform accept it?

The render and mix steps run the full checks (blocking asset checks). This gate repeats the ones that
matter to a platform on the exact bytes about to be exported, so a CLI rerun of `s3_exports` alone can
never publish a file whose checks failed. It skips the black/frozen decode pass (the render check's
job). The audio is read from the exact bytes too: when its packets' digest is one `mixed_audio` measured
(`AudioMeasurements`), that measurement is the file's, as the same packets decode to the same samples;
otherwise it is decoded and measured here (~1 s per 180 s final).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from montage_pipeline.media.audio_specs import AudioMeasurements, audio_failures
from montage_pipeline.media.specs import inspect_video, spec_failures

PORTRAIT_MAX_S = 180.0


def export_failures(
    path: Path, orientation: Literal["landscape", "portrait"], measured: AudioMeasurements | None = None
) -> list[str]:
    """Why this file must not be published; empty when it may. `measured`: audio already measured."""
    try:
        video = inspect_video(path, stills=False)
        audio = (measured or AudioMeasurements()).inspect(path)
    except Exception as exc:  # unreadable: that is the reason, not a crash
        return [f"unreadable: {type(exc).__name__}: {exc}"]
    failures = spec_failures(
        video,
        width=video.width,
        height=video.height,
        max_duration_s=PORTRAIT_MAX_S if orientation == "portrait" else None,
    )
    aspect = video.width / max(1, video.height)
    wide, tall = abs(aspect - 16 / 9) < 0.01, abs(aspect - 9 / 16) < 0.01
    if (orientation == "landscape" and not wide) or (orientation == "portrait" and not tall):
        shape = "16:9" if orientation == "landscape" else "9:16"
        failures.append(f"{video.width}x{video.height} is not {shape}")
    return failures + audio_failures(audio)
