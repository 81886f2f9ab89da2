"""An engineer's path on the embedded profile: seed a week, build it, rerun one asset from the CLI."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

WEEK = "2025-01-27"
SMALL_RENDER = json.dumps({"ops": {"montage_renders": {"config": {"width_scale": 0.25, "fps": 30}}}})


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(args, check=False, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


@pytest.mark.long
def test_rebuild_portrait_render_for_one_week_from_the_cli(tmp_path: Path) -> None:
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(
        (Path(__file__).parents[1] / ".dagster_home" / "dagster.yaml").read_text()
    )
    env = {
        **os.environ,
        "MONTAGE_PROFILE": "embedded",
        "MONTAGE_HOME": str(tmp_path / "montage"),
        "DAGSTER_HOME": str(home),
        "WEEKLY_MONTAGE_DURATION": "20",
    }
    bin_dir = Path(sys.executable).parent
    _run([str(bin_dir / "montage"), "seed", "demo", "--week", WEEK, "--clips", "4", "--size", "320x180"], env)
    dagster = str(bin_dir / "dagster")
    common = ["--partition", WEEK, "-m", "montage_pipeline.definitions", "--config-json", SMALL_RENDER]
    # The week up to both main renders: what the rerun reads, and the landscape render it must leave
    # alone. The other cuts (their EDLs and renders) and the steps after the renders (mix, exports,
    # posts) play no part in rebuilding one render of the main cut.
    up_to_renders = "*scored_highlights,landscape_render,portrait_render"
    _run([dagster, "asset", "materialize", "--select", up_to_renders, *common], env)
    video = tmp_path / "montage" / "media" / "weeks" / WEEK / "portrait_render" / "video.mp4"
    landscape = tmp_path / "montage" / "media" / "weeks" / WEEK / "landscape_render" / "video.mp4"
    assert video.is_file() and landscape.is_file()
    first, landscape_before = video.stat().st_mtime_ns, landscape.stat().st_mtime_ns

    rerun = _run([dagster, "asset", "materialize", "--select", "portrait_render", *common], env)
    assert "RUN_SUCCESS" in rerun.stdout + rerun.stderr
    assert video.stat().st_mtime_ns > first  # rebuilt
    assert landscape.stat().st_mtime_ns == landscape_before  # only the selected asset ran
