"""Audio resampled a second at a time is the audio resampled a frame at a time, sample for sample, and
measured in joined blocks it measures the same (issue 17: the per-call overhead was most of the cost)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from montage_pipeline.media.audio_batches import BatchedResampler
from montage_pipeline.media.audio_specs import _joined


def _write_aac(path: Path, rate: int, layout: str, seconds: float) -> Path:
    """A real AAC file: a chirp with noise, so every band carries something to resample."""
    channels = 1 if layout == "mono" else 2
    rng = np.random.default_rng(7)
    n = round(seconds * rate)
    t = np.arange(n) / rate
    tone = 0.3 * np.sin(2 * np.pi * (200 + 900 * t) * t) + 0.05 * rng.standard_normal(n)
    pcm = np.tile(tone.astype(np.float32), (channels, 1))
    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream("aac", rate=rate, layout=layout)
        for i in range(0, n, 1024):
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(pcm[:, i : i + 1024]), "fltp", layout)
            frame.sample_rate, frame.pts, frame.time_base = rate, i, Fraction(1, rate)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


def _frames(path: Path) -> list[av.AudioFrame]:
    with av.open(str(path)) as container:
        return list(container.decode(audio=0))


@pytest.mark.parametrize(
    ("rate", "layout", "to"),
    [(48_000, "stereo", ("flt", "mono", 16_000)), (44_100, "mono", ("fltp", "stereo", 48_000))],
)
def test_a_second_at_a_time_gives_every_sample_a_frame_at_a_time_gives(
    tmp_path: Path, rate: int, layout: str, to: tuple[str, str, int]
) -> None:
    frames = _frames(_write_aac(tmp_path / "a.m4a", rate, layout, 3.3))
    plain = av.AudioResampler(format=to[0], layout=to[1], rate=to[2])
    expected = [f.to_ndarray() for frame in frames for f in plain.resample(frame)]
    expected += [f.to_ndarray() for f in plain.resample(None)]

    batched = BatchedResampler(*to)
    got: list[np.ndarray] = []
    for frame in frames:
        got += batched.resample(frame)
    assert len(got) < len(frames) / 10  # it did batch: a call per second, not per frame
    got += batched.flush()
    assert np.array_equal(np.concatenate(got, axis=1), np.concatenate(expected, axis=1))


def test_rest_leaves_the_resamplers_delay_for_later(tmp_path: Path) -> None:
    """`rest` converts what is held without ending the stream; `flush` adds the delayed samples."""
    frames = _frames(_write_aac(tmp_path / "a.m4a", 48_000, "stereo", 1.5))
    first = BatchedResampler("flt", "mono", 16_000)
    held = [pcm for frame in frames for pcm in first.resample(frame)] + first.rest()
    second = BatchedResampler("flt", "mono", 16_000)
    whole = [pcm for frame in frames for pcm in second.resample(frame)] + second.flush()
    n_held, n_whole = sum(p.shape[1] for p in held), sum(p.shape[1] for p in whole)
    assert 0 < n_whole - n_held < 16_000 // 100  # the filter's delay: under 10 ms
    assert np.array_equal(np.concatenate(held, axis=1), np.concatenate(whole, axis=1)[:, :n_held])


def test_a_frame_of_another_rate_is_refused_as_the_resampler_refuses_it(tmp_path: Path) -> None:
    frames = _frames(_write_aac(tmp_path / "a.m4a", 48_000, "stereo", 0.5))
    other = _frames(_write_aac(tmp_path / "b.m4a", 44_100, "stereo", 0.5))[0]
    batched = BatchedResampler("flt", "mono", 16_000)
    for frame in frames:
        batched.resample(frame)
    batched.resample(other)  # starts a batch of its own
    with pytest.raises(ValueError, match="does not match"):
        batched.flush()


def test_joined_blocks_keep_every_sample_in_order_and_split_at_a_channel_change() -> None:
    rng = np.random.default_rng(1)
    stereo = [rng.standard_normal((2, 1024)).astype(np.float32) for _ in range(10)]
    mono = [rng.standard_normal((1, 1024)).astype(np.float32) for _ in range(3)]
    blocks = list(_joined(iter(stereo + mono), 4000))
    assert [b.shape for b in blocks] == [(2, 4096), (2, 4096), (2, 2048), (1, 3072)]
    assert np.array_equal(np.concatenate(blocks[:3], axis=1), np.concatenate(stereo, axis=1))
    assert np.array_equal(blocks[3], np.concatenate(mono, axis=1))
