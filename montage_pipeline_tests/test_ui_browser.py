"""The Dagster UI in a real browser: a demo week's asset graph and the landscape render's contact sheet.

A small demo week is seeded and built into an embedded instance up to what the test looks at (the
landscape render and its upstream; the graph shows every asset whether materialized or not),
`dagster-webserver` serves it, and headless Chromium (Debian's, driven by Selenium) looks at what an
engineer would: the nine assets in the graph, and the week's `landscape_render` page with its contact
sheet. Screenshots are kept.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from montage_pipeline_tests.webserver_support import dagster_webserver, embedded_home

WEEK = "2025-01-27"
ASSETS = [
    "eligible_jobs",
    "selected_clips",
    "scene_segments",
    "scored_highlights",
    "landscape_render",
    "portrait_render",
    "mixed_audio",
    "s3_exports",
    "social_posts",
]
# What the test looks at on a partition's page: the landscape render's metadata and contact sheet.
BUILT = ["eligible_jobs", "selected_clips", "scene_segments", "scored_highlights", "landscape_render"]
CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")


@pytest.fixture
def demo_ui(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    home, montage_home = embedded_home(tmp_path / "dagster_home"), tmp_path / "montage"
    env = {**os.environ, "DAGSTER_HOME": str(home), "MONTAGE_HOME": str(montage_home)}
    montage = str(Path(sys.executable).parent / "montage")
    seed = [montage, "seed", "demo", "--week", WEEK, "--clips", "4", "--size", "320x180", "--seed", "3"]
    subprocess.run(seed, env=env, check=True, capture_output=True)
    monkeypatch.setenv("WEEKLY_MONTAGE_DURATION", "20")
    from montage_pipeline.defs.code_location import build_definitions

    defs = build_definitions({"MONTAGE_HOME": str(montage_home)})
    with dg.DagsterInstance.from_config(str(home)) as instance:
        result = defs.resolve_implicit_global_asset_job_def().execute_in_process(
            partition_key=WEEK,
            instance=instance,
            asset_selection=[dg.AssetKey(name) for name in BUILT],
            run_config={"ops": {"montage_renders": {"config": {"width_scale": 1 / 6, "fps": 30}}}},
        )
        assert result.success
    with dagster_webserver(home, montage_home) as base:
        yield base


@pytest.mark.timeout(420)
@pytest.mark.long
@pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER), reason="needs Debian's chromium and chromium-driver (make services)"
)
def test_the_week_shows_in_the_dagster_ui(demo_ui: str, tmp_path: Path) -> None:
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    options = Options()
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1600,1000"):
        options.add_argument(arg)
    options.binary_location = str(CHROMIUM)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    wait = WebDriverWait(driver, 90)
    try:
        # The montage group's lineage (the selection in the path): with a second group (engagement) the
        # plain /asset-groups/montage page shows the groups collapsed.
        driver.get(f"{demo_ui}/asset-groups~group:%22montage%22")
        wait.until(lambda d: all(name in d.find_element(By.TAG_NAME, "body").text for name in ASSETS))
        time.sleep(2)  # the UI's newsletter prompt comes a moment later; dismiss it for the screenshot
        for skip in driver.find_elements(By.XPATH, "//button[normalize-space()='Skip']"):
            skip.click()
        driver.save_screenshot(str(tmp_path / "asset_graph.png"))

        driver.get(f"{demo_ui}/assets/landscape_render?partition={WEEK}")
        show = wait.until(ec.element_to_be_clickable((By.XPATH, "//a[normalize-space()='[Show Markdown]']")))
        page = driver.find_element(By.TAG_NAME, "body").text
        assert "spec_failures" in page and "render_speed_x" in page
        show.click()
        sheet = wait.until(
            ec.presence_of_element_located((By.XPATH, "//img[starts-with(@src, 'data:image/jpeg')]"))
        )
        assert sheet.size["width"] > 300  # the contact sheet of the week's spans, rendered
        driver.save_screenshot(str(tmp_path / "landscape_render.png"))
    finally:
        driver.quit()
    assert (tmp_path / "asset_graph.png").stat().st_size > 10_000
    print(f"screenshots: {tmp_path}")
