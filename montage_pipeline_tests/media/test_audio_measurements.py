"""Audio measured once, by its packets' digest: a final that carries its soundtrack's packets is checked
from the soundtrack's measurement (the same report a fresh decode gives), any other audio is measured,
and the export gate still flags what the measurement of the exact bytes shows."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import av
import numpy as np
import pytest

from montage_pipeline.highlights.soundtrack import AUDIO_MEASUREMENTS
from montage_pipeline.media.audio_specs import AudioMeasurements, audio_digest, inspect_audio
from montage_pipeline.media.mix import RATE
from montage_pipeline.media.mux import EncodedSoundtrack, master_and_encode, mux
from montage_pipeline.media.render import EncodeSettings, OutputSpec, RenderSpan, render
from montage_pipeline.media.synth import plan_clip, write_clip
from montage_pipeline.publishing.week_export import gate_failures

SECONDS = 4.0


def _soundtrack(path: Path, hz: float, seed: int) -> EncodedSoundtrack:
    """A mastered, encoded soundtrack of the clip's length: a tone over a noise bed, with swells."""
    t = np.arange(round(SECONDS * RATE)) / RATE
    noise = np.random.default_rng(seed).normal(0, 0.05, t.size)
    swell = 0.6 + 0.4 * np.sin(2 * np.pi * 0.5 * t)
    mono = (0.3 * np.sin(2 * np.pi * hz * t) * swell + noise).astype(np.float32)
    return master_and_encode(np.stack([mono, mono]), path)


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A video, two soundtracks and each muxed into it."""
    folder = tmp_path_factory.mktemp("measured")
    clip, video = folder / "clip.mp4", folder / "video.mp4"
    write_clip(clip, plan_clip(SECONDS, 30, seed=41, width=320, height=180))
    span = RenderSpan(clip, 0.5, SECONDS - 0.5, 1.0, SECONDS, "")  # after a one-second title card
    render(
        [span], [OutputSpec(video, 320, 180, credits=False)], EncodeSettings(fps=30), title="t", intro_s=1.0
    )
    files: dict[str, Path] = {"video": video}
    for name, hz, seed in (("a", 440.0, 1), ("b", 311.0, 2)):
        track = _soundtrack(folder / f"{name}.m4a", hz, seed)
        assert track.measured is not None
        files[name] = track.path
        mux(video, track.path, folder / f"final_{name}.mp4")
        files[f"final_{name}"] = folder / f"final_{name}.mp4"
    return files


def _measurements_of(path: Path) -> AudioMeasurements:
    known = AudioMeasurements()
    known.inspect(path)
    return known


def test_a_final_carrying_its_soundtracks_packets_is_checked_from_the_soundtracks_measurement(
    made: dict[str, Path],
) -> None:
    known = _measurements_of(made["a"])  # as the soundtrack step measured the encoded M4A
    assert audio_digest(made["final_a"])[0] == audio_digest(made["a"])[0]
    fresh = inspect_audio(made["final_a"])
    assert known.inspect(made["final_a"]) == fresh  # every figure, the video's length and rate included
    assert known.reused == 1
    assert fresh.video_duration_s == pytest.approx(SECONDS, abs=0.04)


def test_audio_measured_on_other_packets_is_measured_again(made: dict[str, Path]) -> None:
    known = _measurements_of(made["a"])
    other = known.inspect(made["final_b"])
    assert other == inspect_audio(made["final_b"])
    assert known.reused == 0 and len(known.reports) == 2
    assert audio_digest(made["final_b"])[0] != audio_digest(made["final_a"])[0]


def test_a_final_with_one_byte_of_its_audio_changed_is_decoded_again(
    made: dict[str, Path], tmp_path: Path
) -> None:
    final = made["final_a"]
    with av.open(str(final)) as container:
        packet = [p for p in container.demux(container.streams.audio[0]) if p.size][60]
        assert packet.pos is not None
        offset = packet.pos + packet.size - 2  # inside the packet's spectral data, its size unchanged
    damaged = tmp_path / "final_a.mp4"
    data = bytearray(final.read_bytes())
    data[offset] ^= 0x5A
    damaged.write_bytes(bytes(data))
    known = _measurements_of(made["final_a"])
    assert audio_digest(damaged)[0] != audio_digest(final)[0]
    # Not passed on the strength of the good file's measurement: decoded, and the decoder refuses it.
    with pytest.raises(av.error.InvalidDataError):
        known.inspect(damaged)
    assert known.reused == 0
    recorded = known.write(tmp_path / AUDIO_MEASUREMENTS)
    gated = gate_failures({"final_landscape.mp4": damaged, AUDIO_MEASUREMENTS: recorded})
    assert gated["final_landscape.mp4"][0].startswith("unreadable: InvalidDataError")


def test_measurements_survive_the_file_they_are_written_to(made: dict[str, Path], tmp_path: Path) -> None:
    known = _measurements_of(made["final_a"])
    again = AudioMeasurements.read(known.write(tmp_path / AUDIO_MEASUREMENTS))
    assert again.reports == known.reports
    assert AudioMeasurements.read(None).reports == {}


def test_the_export_gate_reads_the_measurement_of_the_exact_bytes_it_publishes(
    made: dict[str, Path], tmp_path: Path
) -> None:
    final = made["final_a"]
    assert gate_failures({"final_landscape.mp4": final}) == {}
    # A measurement recorded for these packets is what the gate goes by (it does not decode them again):
    # one saying they are too quiet gates the file.
    digest = audio_digest(final)[0]
    quiet = dataclasses.replace(inspect_audio(final), integrated_lufs=-20.0)
    recorded = AudioMeasurements({digest: quiet}).write(tmp_path / AUDIO_MEASUREMENTS)
    gated = gate_failures({"final_landscape.mp4": final, AUDIO_MEASUREMENTS: recorded})
    assert gated == {"final_landscape.mp4": ["integrated loudness -20.0 LUFS, expected -14 ±1"]}
    # The same record against a file whose audio is other packets: that file is measured, and passes.
    assert gate_failures({"final_landscape.mp4": made["final_b"], AUDIO_MEASUREMENTS: recorded}) == {}
    # A record that cannot be read spares nothing: the gate measures the file itself.
    recorded.write_text(json.dumps({digest: {"integrated_lufs": -20.0}}))
    assert gate_failures({"final_landscape.mp4": final, AUDIO_MEASUREMENTS: recorded}) == {}
    recorded.write_text("{")
    assert gate_failures({"final_landscape.mp4": final, AUDIO_MEASUREMENTS: recorded}) == {}
