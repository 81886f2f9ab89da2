"""The week under faults, as an operator meets them: real `dagster asset materialize` processes.

On the production profile (Postgres for the platform, the asset tables and the Dagster instance; the S3
server for media; the fake platforms for posting): a worker killed with SIGKILL in the middle of a post,
and two CLI runs of one week started at once. Each must end with one complete export generation, one
`weekly_montages` row, no post made twice and every other creator's post done. (The S3 server failing
mid-export is `test_exports_generations.py`'s `test_a_rebuild_failing_half_way_...`.)
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, text, update

from montage_pipeline.platform.models import PostState, SocialPlatform, SocialPost
from montage_pipeline_tests.databases import dagster_instance_env
from montage_pipeline_tests.publish_support import WEEK, BuiltWeek
from montage_pipeline_tests.social_support import KEY, Fakes, start_fakes
from montage_pipeline_tests.test_exports_generations import (
    THUMBNAILS,
    _assert_row_describes_one_complete_generation,
    _staging,
    new_thumbnails,  # noqa: F401 (a fixture)
)

REPO = Path(__file__).resolve().parents[1]
DAGSTER = str(Path(sys.executable).parent / "dagster")
TARGETS = 3  # ace on YouTube, TikTok and Instagram: the week's only opted-in Creator+ connections


@pytest.fixture
def fakes(built_week: BuiltWeek) -> Iterator[Fakes]:
    for fakes in start_fakes(built_week):
        # The CLI's TikTok client keeps TikTok's own chunk rules (5..64 MiB), not the small test chunks.
        fakes.tiktok.min_chunk_bytes, fakes.tiktok.max_chunk_bytes = 5 * 1024 * 1024, 64 * 1024 * 1024
        yield fakes


@pytest.fixture
def cli_env(built_week: BuiltWeek, fakes: Fakes, pg_url: str, tmp_path: Path) -> dict[str, str]:
    """The production profile pointed at the built week, its own Dagster instance on Postgres."""
    week = built_week
    return {
        **os.environ,
        **dagster_instance_env(tmp_path / "dagster_home", pg_url),
        "MONTAGE_PROFILE": "production",
        "MONTAGE_HOME": str(tmp_path / "montage"),
        "MONTAGE_DATABASE_URL": week.db_url,
        "MONTAGE_STORAGE_ROOT": str(week.root),
        "MONTAGE_S3_BUCKET": week.bucket,
        "MONTAGE_S3_ENDPOINT_URL": week.endpoint,
        "MONTAGE_S3_REGION": "us-east-1",
        "MONTAGE_TOKEN_KEYS": KEY,
        "OAUTHLIB_INSECURE_TRANSPORT": "1",  # the fakes speak plain HTTP on 127.0.0.1
        "YOUTUBE_API_ENABLED": "1",
        "YOUTUBE_CLIENT_ID": "test-client-id",
        "YOUTUBE_CLIENT_SECRET": "test-client-secret",
        "YOUTUBE_API_URL": fakes.youtube.url,
        "GOOGLE_TOKEN_URL": f"{fakes.youtube.url}/token",
        "TIKTOK_API_ENABLED": "1",
        "TIKTOK_CLIENT_KEY": "test-client-id",
        "TIKTOK_CLIENT_SECRET": "test-client-secret",
        "TIKTOK_API_URL": fakes.tiktok.url,
        "INSTAGRAM_API_ENABLED": "1",
        "INSTAGRAM_GRAPH_URL": fakes.instagram.url,
        "INSTAGRAM_REFRESH_URL": fakes.instagram.url,
    }


def _materialize(env: dict[str, str], select_: str, log: Path) -> subprocess.Popen[bytes]:
    """`dagster asset materialize` in its own process group (so a kill takes its children too)."""
    args = [DAGSTER, "asset", "materialize", "--select", select_, "--partition", WEEK]
    args += ["-m", "montage_pipeline.definitions"]
    with log.open("wb") as out:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            args, env=env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def _finish(proc: subprocess.Popen[bytes], log: Path, timeout: float = 600) -> str:
    proc.wait(timeout)
    output = log.read_text(errors="replace")
    assert proc.returncode == 0, output[-4000:]
    return output


def _posts(week: BuiltWeek) -> list[SocialPost]:
    with week.session() as s:
        return list(s.scalars(select(SocialPost).order_by(SocialPost.id)).all())


def _assert_each_post_made_once(week: BuiltWeek, fakes: Fakes) -> None:
    posts = _posts(week)
    assert len(posts) == TARGETS
    assert {p.state for p in posts} == {PostState.PUBLISHED}, [(p.platform, p.last_error) for p in posts]
    for platform in SocialPlatform:
        made = fakes.of(platform).posts
        assert len(made) == 1, (platform, fakes.of(platform).requests_log)
        row = next(p for p in posts if p.platform == platform)
        assert row.remote_id == made[0]["id"]


def test_a_worker_killed_mid_post_is_finished_by_the_next_run_without_a_second_video(
    built_week: BuiltWeek, fakes: Fakes, cli_env: dict[str, str], tmp_path: Path
) -> None:
    week = built_week
    # The landscape's bytes reach YouTube and are held there while the worker is killed: whether the
    # video came to exist is something only YouTube knows when the next run starts.
    fakes.youtube.inject("stall", "PUT", path_contains="/upload/youtube/v3/videos")
    first = _materialize(cli_env, "social_posts", tmp_path / "first.log")
    try:
        deadline = time.monotonic() + 600
        while not fakes.youtube.stalled.wait(0.5):
            assert first.poll() is None, (tmp_path / "first.log").read_text()[-4000:]
            assert time.monotonic() < deadline, "the upload never started"
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(60)
    finally:
        fakes.youtube.resume()
    assert first.returncode == -signal.SIGKILL
    with week.session() as s:
        in_flight = s.scalars(select(SocialPost).where(SocialPost.platform == SocialPlatform.YOUTUBE)).one()
        assert in_flight.state != PostState.PUBLISHED and in_flight.claimed_by  # the dead worker's lease
        # The lease outlives the dead worker by design (15 min); here that time passes at once.
        s.execute(update(SocialPost).values(lease_expires_at=datetime.now(UTC) - timedelta(seconds=1)))
        s.commit()

    _finish(_materialize(cli_env, "social_posts", tmp_path / "second.log"), tmp_path / "second.log")

    _assert_each_post_made_once(week, fakes)
    assert fakes.youtube.posts[0]["bytes"] > 0


def test_two_cli_runs_of_one_week_at_once_export_one_generation_and_post_once(
    built_week: BuiltWeek,
    fakes: Fakes,
    cli_env: dict[str, str],
    new_thumbnails: dict[str, str],  # noqa: F811 (the fixture): a new build, so there is a generation to write
    tmp_path: Path,
) -> None:
    week = built_week
    # A deployment's instance exists before its runs (the webserver and the daemon make it); two
    # processes creating a fresh one at once race in Dagster's own schema creation (DuplicateObject).
    subprocess.run([DAGSTER, "instance", "migrate"], env=cli_env, cwd=REPO, check=True, capture_output=True)
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    runs = [_materialize(cli_env, "s3_exports,social_posts", log) for log in logs]
    outputs = [_finish(run, log) for run, log in zip(runs, logs, strict=True)]

    files = _assert_row_describes_one_complete_generation(week)
    assert {n: files[n]["sha256"] for n in THUMBNAILS} == new_thumbnails
    assert not _staging(week)
    with week.session() as s:
        assert s.scalar(text("SELECT count(*) FROM weekly_montages")) == 1
    _assert_each_post_made_once(week, fakes)
    assert all("RUN_SUCCESS" in out for out in outputs)
