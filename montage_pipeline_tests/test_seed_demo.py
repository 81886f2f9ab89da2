"""`montage seed demo` writes a realistic, decodable week whose planted events are where it says."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from montage_pipeline.platform.models import Job, JobStatus, Render, SocialConnection, SubscriptionTier, User

WEEK = "2025-01-27"


def _seed(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MONTAGE_HOME": str(home), "MONTAGE_PROFILE": "embedded"}
    cmd = [sys.executable, "-m", "montage_pipeline.cli", "seed", "demo", "--week", WEEK, *args]
    return subprocess.run(cmd, check=False, env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def demo_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("montage_home")
    done = _seed(home, "--clips", "4", "--size", "320x180")
    assert done.returncode == 0, done.stderr
    assert "clips written" in done.stdout
    return home


def test_the_good_clips_frame_rates_come_from_the_list_asked_for(tmp_path: Path) -> None:
    """`--fps` sets the rates the good clips are drawn from (what `make demo` uses to keep its week
    at 30 fps); a rate out of range is refused before anything is written."""
    done = _seed(tmp_path, "--clips", "3", "--size", "160x90", "--fps", "60")
    assert done.returncode == 0, done.stderr
    planted = json.loads((tmp_path / "storage" / "demo" / WEEK / "planted.json").read_text())
    good = [rel for rel in planted["clips"] if Path(rel).name.startswith("clip_")]
    assert len(good) == 3 and {planted["clips"][rel]["fps"] for rel in good} == {60}
    with av.open(str(tmp_path / "storage" / good[0])) as container:
        assert container.streams.video[0].average_rate == 60
    refused = _seed(tmp_path / "other", "--clips", "1", "--fps", "30,0")
    assert refused.returncode == 2 and "1–120" in refused.stderr
    assert not (tmp_path / "other" / "storage").exists()


def _luma_and_audio(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Per-frame times and mean luma, and 10 ms audio RMS, of a whole (small) clip."""
    times, luma, rms = [], [], []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            times.append(float(frame.time))
            luma.append(float(frame.to_ndarray(format="gray").mean()))
    with av.open(str(path)) as container:
        rate = container.streams.audio[0].rate
        pcm = np.concatenate(
            [f.to_ndarray().reshape(-1, f.samples).mean(axis=0) for f in container.decode(audio=0)]
        )
    hop = rate // 100
    rms = np.sqrt(np.mean(pcm[: len(pcm) // hop * hop].reshape(-1, hop).astype(np.float64) ** 2, axis=1))
    return np.array(times), np.array(luma), rms, 0.01


def test_the_week_has_its_clips_users_and_traps(demo_home: Path) -> None:
    engine = create_engine(f"sqlite:///{demo_home / 'platform.sqlite'}")
    planted = json.loads((demo_home / "storage" / "demo" / WEEK / "planted.json").read_text())
    roles = planted["roles"]
    assert len(roles["good"]) == 4
    for role in (
        "opted_out",
        "near_duplicate",
        "corrupt",
        "missing_file",
        "unsafe_path",
        "failed",
        "outside_week",
    ):
        assert roles.get(role), role
    with Session(engine) as session:
        users = session.scalars(select(User)).all()
        assert any(u.opted_out_of_featuring for u in users)
        plus = [u for u in users if u.subscription_tier == SubscriptionTier.CREATOR_PLUS]
        assert plus
        auto = session.scalars(select(SocialConnection).where(SocialConnection.auto_post_weekly)).all()
        assert {c.user_id for c in auto} & {u.id for u in plus}
        failed = session.scalars(select(Job).where(Job.id.in_(roles["failed"]))).all()
        assert all(j.status != JobStatus.SUCCESS for j in failed)
        for job_id in roles["good"]:
            render = session.scalar(select(Render).where(Render.job_id == job_id))
            assert render is not None and (demo_home / "storage" / render.path).is_file()
        missing = session.scalar(select(Render).where(Render.job_id == roles["missing_file"][0]))
        assert missing is not None and not (demo_home / "storage" / missing.path).exists()
    engine.dispose()


def test_planted_events_are_where_the_json_says(demo_home: Path) -> None:
    planted = json.loads((demo_home / "storage" / "demo" / WEEK / "planted.json").read_text())
    checked = {"flash": 0, "loud": 0}
    for rel, clip in planted["clips"].items():
        path = demo_home / "storage" / rel
        with av.open(str(path)) as container:  # a real H.264/AAC file of the planned size
            video = container.streams.video[0]
            assert video.codec_context.name == "h264"
            assert (video.width, video.height) == (clip["width"], clip["height"])
            assert clip["width"] in (320, 212)  # the re-upload is a smaller re-encode
            assert container.streams.audio[0].codec_context.name == "aac"
        times, luma, rms, hop_s = _luma_and_audio(path)
        assert times[-1] == pytest.approx(clip["duration_s"], abs=0.1)
        for event in clip["events"]:
            if event["kind"] == "flash":
                at = (times >= event["start_s"] - 0.05) & (times <= event["end_s"] + 0.05)
                before = (times >= event["start_s"] - 1.0) & (times < event["start_s"] - 0.2)
                assert luma[at].max() >= np.median(luma[before]) + 30, (rel, event)
                checked["flash"] += 1
            elif event["kind"] == "loud":
                i0, i1 = int(event["start_s"] / hop_s), int(event["end_s"] / hop_s) + 1
                level = 20 * np.log10(rms[i0:i1].max() / (np.median(rms) + 1e-9))
                assert level >= 20, (rel, event, level)
                checked["loud"] += 1
    assert checked["flash"] > 0 and checked["loud"] > 0
