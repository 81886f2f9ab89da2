"""The read API over real HTTP (uvicorn on 127.0.0.1), on Postgres and SQLite; the trigger via Dagster."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
import uvicorn
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from montage_pipeline.api.app import create_app
from montage_pipeline.platform.models import WeeklyMontage
from montage_pipeline_tests.webserver_support import dagster_webserver, embedded_home, free_port

TOKEN = "admin-token-for-tests"
ROOT = Path(__file__).resolve().parents[1]


def _serve(app: object) -> Iterator[str]:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))  # type: ignore[arg-type]
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(200):
        if server.started:
            break
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


def _seed(url: str) -> list[int]:
    ids = []
    with Session(create_engine(url), expire_on_commit=False) as s, s.begin():
        for i, (published, featured) in enumerate([(True, False), (True, True), (False, False)]):
            row = WeeklyMontage(
                week_start=datetime(2025, 1, 6, tzinfo=UTC) + timedelta(weeks=i),
                title=f"Weekly Highlights {i}",
                clip_count=10 + i,
                total_duration=180.0,
                featured_user_ids=[1, 2],
                is_featured=featured,
                render_path_landscape="https://cdn/l.mp4" if published else None,
                render_path_portrait="https://cdn/p.mp4" if published else None,
            )
            s.add(row)
            s.flush()
            ids.append(row.id)
    return ids


@pytest.fixture
def api(db_url: str) -> Iterator[tuple[str, list[int]]]:
    ids = _seed(db_url)
    for base in _serve(create_app(db_url, admin_token=TOKEN)):
        yield base, ids


def test_reads(api: tuple[str, list[int]]) -> None:
    base, ids = api
    listing = requests.get(f"{base}/v2/weekly-montages", timeout=5).json()
    assert [m["week_start"] for m in listing["items"]] == ["2025-01-20", "2025-01-13", "2025-01-06"]
    assert listing["count"] == 3
    assert requests.get(f"{base}/v2/weekly-montages?limit=1", timeout=5).json()["count"] == 1
    featured = requests.get(f"{base}/v2/weekly-montages?featured_only=true", timeout=5).json()
    assert [m["id"] for m in featured["items"]] == [ids[1]]
    latest = requests.get(f"{base}/v2/weekly-montages/latest", timeout=5).json()
    assert latest["id"] == ids[1]  # the newest *published* one (week 3 has no files yet)
    one = requests.get(f"{base}/v2/weekly-montages/{ids[0]}", timeout=5).json()
    assert one["title"] == "Weekly Highlights 0" and one["featured_user_ids"] == [1, 2]
    assert requests.get(f"{base}/v2/weekly-montages/999999", timeout=5).status_code == 404
    for bad in ("/v2/weekly-montages?limit=0", "/v2/weekly-montages?limit=101", "/v2/weekly-montages/abc"):
        response = requests.get(base + bad, timeout=5)
        assert response.status_code == 422 and "detail" in response.json()
    spec = requests.get(f"{base}/openapi.json", timeout=5).json()
    assert {
        "/v2/weekly-montages",
        "/v2/weekly-montages/latest",
        "/v2/weekly-montages/{montage_id}/title",
    } <= set(spec["paths"])


def test_admin_routes_need_the_token(api: tuple[str, list[int]]) -> None:
    base, ids = api
    url = f"{base}/v2/weekly-montages/{ids[0]}"
    assert requests.patch(f"{url}/feature", json={"is_featured": True}, timeout=5).status_code == 401
    wrong = requests.patch(
        f"{url}/feature", json={"is_featured": True}, headers={"Authorization": "Bearer nope"}, timeout=5
    )
    assert wrong.status_code == 401 and wrong.headers["WWW-Authenticate"] == "Bearer"
    auth = {"Authorization": f"Bearer {TOKEN}"}
    done = requests.patch(f"{url}/feature", json={"is_featured": True}, headers=auth, timeout=5)
    assert done.status_code == 200 and done.json()["is_featured"] is True
    titled = requests.patch(f"{url}/title", json={"title": "  Clutch  "}, headers=auth, timeout=5)
    assert titled.json()["title"] == "Clutch"
    assert requests.patch(f"{url}/title", json={"title": "   "}, headers=auth, timeout=5).status_code == 422
    assert requests.get(url, timeout=5).json()["title"] == "Clutch"
    trigger = requests.post(
        f"{base}/v2/weekly-montages/trigger", json={"week_start": "2025-01-28"}, headers=auth, timeout=5
    )
    assert trigger.status_code == 422  # a Tuesday
    assert TOKEN not in wrong.text + done.text


def test_admin_routes_are_off_without_a_token(sqlite_url: str) -> None:
    from montage_pipeline.platform.migrate import upgrade

    upgrade(sqlite_url)
    ids = _seed(sqlite_url)
    for base in _serve(create_app(sqlite_url, admin_token=None)):
        response = requests.patch(
            f"{base}/v2/weekly-montages/{ids[0]}/feature", json={"is_featured": True}, timeout=5
        )
        assert response.status_code == 503 and "MONTAGE_ADMIN_TOKEN" in response.json()["detail"]


@pytest.mark.timeout(180)
def test_trigger_launches_the_weeks_run_through_dagster(tmp_path: Path, sqlite_url: str) -> None:
    """A real dagster-webserver on an embedded instance receives the run for the week."""
    from montage_pipeline.platform.migrate import upgrade

    home = embedded_home(tmp_path / "dagster_home")
    montage_home = tmp_path / "montage"
    montage_home.mkdir()
    upgrade(f"sqlite:///{montage_home / 'platform.sqlite'}")
    with dagster_webserver(home, montage_home) as web:
        upgrade(sqlite_url)
        app = create_app(sqlite_url, admin_token=TOKEN, dagster_graphql_url=f"{web}/graphql")
        for base in _serve(app):
            response = requests.post(
                f"{base}/v2/weekly-montages/trigger",
                json={"week_start": "2025-01-27"},
                headers={"Authorization": f"Bearer {TOKEN}"},
                timeout=60,
            )
            assert response.status_code == 202, response.text
            run_id = response.json()["run_id"]
        from dagster import DagsterInstance

        with DagsterInstance.from_config(str(home)) as instance:
            run = instance.get_run_by_id(run_id)
            assert run is not None and run.job_name == "weekly_montage_job"
            assert run.tags["dagster/partition"] == "2025-01-27"
