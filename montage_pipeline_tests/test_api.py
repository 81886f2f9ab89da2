"""The read API over real HTTP (uvicorn on 127.0.0.1), on Postgres and SQLite; the trigger via Dagster."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
import uvicorn
from fastapi import FastAPI
from sqlalchemy.orm import Session

from montage_pipeline.api.app import create_app
from montage_pipeline.platform.engine import make_engine
from montage_pipeline.platform.migrate import upgrade
from montage_pipeline.platform.models import WeeklyMontage
from montage_pipeline_tests.webserver_support import dagster_webserver, embedded_home, free_port

# dagster_graphql calls gql the deprecated way; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:Using variable_values:DeprecationWarning")

TOKEN = "admin-token-for-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
MONTAGE_KEYS = {
    "id",
    "week_start",
    "title",
    "clip_count",
    "total_duration",
    "featured_user_ids",
    "is_featured",
    "render_path_landscape",
    "render_path_portrait",
    "created_at",
}


@contextmanager
def serving(app: FastAPI) -> Iterator[str]:
    """The app on uvicorn in a thread, on a port the OS picks; yields its base URL."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def _seed(url: str) -> list[int]:
    """Three weeks, oldest first: published, published and featured, not yet rendered."""
    ids = []
    engine = make_engine(url)
    with Session(engine) as s, s.begin():
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
    engine.dispose()
    return ids


@pytest.fixture
def api(db_url: str) -> Iterator[tuple[str, list[int]]]:
    ids = _seed(db_url)
    with serving(create_app(db_url, admin_token=TOKEN)) as base:
        yield base, ids


def test_list_orders_newest_week_first_and_filters(api: tuple[str, list[int]]) -> None:
    base, ids = api
    listing = requests.get(f"{base}/v2/weekly-montages", timeout=5).json()
    assert [m["week_start"] for m in listing["items"]] == ["2025-01-20", "2025-01-13", "2025-01-06"]
    assert listing["count"] == 3
    first = listing["items"][0]
    assert set(first) == MONTAGE_KEYS
    assert first["created_at"].endswith("Z") and datetime.fromisoformat(first["created_at"]).tzinfo
    limited = requests.get(f"{base}/v2/weekly-montages", params={"limit": 1}, timeout=5).json()
    assert limited["count"] == 1 and limited["items"][0]["id"] == ids[2]
    featured = requests.get(f"{base}/v2/weekly-montages", params={"featured_only": "true"}, timeout=5).json()
    assert [m["id"] for m in featured["items"]] == [ids[1]] and featured["count"] == 1
    for limit in (0, 101, "ten"):
        response = requests.get(f"{base}/v2/weekly-montages", params={"limit": limit}, timeout=5)
        assert response.status_code == 422 and "detail" in response.json()


def test_latest_and_by_id(api: tuple[str, list[int]]) -> None:
    base, ids = api
    latest = requests.get(f"{base}/v2/weekly-montages/latest", timeout=5).json()
    assert latest["id"] == ids[1]  # the newest *published* one: the third week has no files yet
    one = requests.get(f"{base}/v2/weekly-montages/{ids[0]}", timeout=5).json()
    assert one["week_start"] == "2025-01-06" and one["title"] == "Weekly Highlights 0"
    assert one["featured_user_ids"] == [1, 2] and one["clip_count"] == 10 and one["is_featured"] is False
    missing = requests.get(f"{base}/v2/weekly-montages/999999", timeout=5)
    assert missing.status_code == 404 and missing.json() == {"detail": "weekly montage 999999 not found"}
    assert requests.get(f"{base}/v2/weekly-montages/abc", timeout=5).status_code == 422


def test_latest_is_404_until_a_week_is_published(db_url: str) -> None:
    with serving(create_app(db_url, admin_token=TOKEN)) as base:
        response = requests.get(f"{base}/v2/weekly-montages/latest", timeout=5)
    assert response.status_code == 404 and response.json() == {"detail": "no published weekly montage yet"}


def test_admin_routes_need_the_token(api: tuple[str, list[int]]) -> None:
    base, ids = api
    url = f"{base}/v2/weekly-montages/{ids[0]}"
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": f"Basic {TOKEN}"}):
        for route, body in (("feature", {"is_featured": True}), ("title", {"title": "Hijacked"})):
            refused = requests.patch(f"{url}/{route}", json=body, headers=headers, timeout=5)
            assert refused.status_code == 401 and refused.headers["WWW-Authenticate"] == "Bearer"
            assert refused.json() == {"detail": "a valid admin bearer token is required"}
    unchanged = requests.get(url, timeout=5).json()
    assert unchanged["is_featured"] is False and unchanged["title"] == "Weekly Highlights 0"

    done = requests.patch(f"{url}/feature", json={"is_featured": True}, headers=AUTH, timeout=5)
    assert done.status_code == 200 and done.json()["is_featured"] is True
    titled = requests.patch(f"{url}/title", json={"title": "  Clutch  "}, headers=AUTH, timeout=5)
    assert titled.status_code == 200 and titled.json()["title"] == "Clutch"
    for bad in ("   ", "", "x" * 256):
        assert requests.patch(f"{url}/title", json={"title": bad}, headers=AUTH, timeout=5).status_code == 422
    stored = requests.get(url, timeout=5).json()
    assert stored["title"] == "Clutch" and stored["is_featured"] is True
    gone = requests.patch(
        f"{base}/v2/weekly-montages/999999/feature", json={"is_featured": True}, headers=AUTH, timeout=5
    )
    assert gone.status_code == 404 and "detail" in gone.json()
    assert TOKEN not in refused.text + done.text + titled.text + gone.text


def test_trigger_validates_the_week_and_needs_dagster(db_url: str) -> None:
    nothing_listens = f"http://127.0.0.1:{free_port()}/graphql"
    with serving(create_app(db_url, admin_token=TOKEN, dagster_graphql_url=nothing_listens)) as base:
        trigger = f"{base}/v2/weekly-montages/trigger"
        next_monday = datetime.now(UTC).date() + timedelta(days=7 - datetime.now(UTC).weekday())
        for week in ("2025-01-28", next_monday.isoformat(), "2023-12-25", "last week"):
            response = requests.post(trigger, json={"week_start": week}, headers=AUTH, timeout=5)
            assert response.status_code == 422, week  # a Tuesday, the future, before the first week
        assert requests.post(trigger, json={"week_start": "2025-01-27"}, timeout=5).status_code == 401
        unreachable = requests.post(trigger, json={"week_start": "2025-01-27"}, headers=AUTH, timeout=60)
        assert unreachable.status_code == 502 and "Connection refused" in unreachable.json()["detail"]
    with serving(create_app(db_url, admin_token=TOKEN)) as base:
        response = requests.post(
            f"{base}/v2/weekly-montages/trigger", json={"week_start": "2025-01-27"}, headers=AUTH, timeout=5
        )
    assert response.status_code == 503 and "DAGSTER_GRAPHQL_URL" in response.json()["detail"]


def test_admin_routes_are_off_without_a_token(db_url: str) -> None:
    montage_id = _seed(db_url)[0]
    app = create_app(db_url, admin_token=None, dagster_graphql_url="http://127.0.0.1:1/graphql")
    with serving(app) as base:
        calls = (
            ("patch", f"{montage_id}/feature", {"is_featured": True}),
            ("patch", f"{montage_id}/title", {"title": "New"}),
            ("post", "trigger", {"week_start": "2025-01-27"}),
        )
        for method, path, body in calls:
            response = requests.request(
                method, f"{base}/v2/weekly-montages/{path}", json=body, headers=AUTH, timeout=5
            )
            assert response.status_code == 503
            assert response.json() == {"detail": "admin routes are disabled: MONTAGE_ADMIN_TOKEN is not set"}
        assert requests.get(f"{base}/v2/weekly-montages", timeout=5).json()["count"] == 3


def test_openapi_lists_the_routes(sqlite_url: str) -> None:
    upgrade(sqlite_url)
    with serving(create_app(sqlite_url, admin_token=None)) as base:
        spec = requests.get(f"{base}/openapi.json", timeout=5).json()
        docs = requests.get(f"{base}/docs", timeout=5)
    assert spec["info"]["title"] == "montage_pipeline read API"
    assert {path: set(ops) for path, ops in spec["paths"].items()} == {
        "/v2/weekly-montages": {"get"},
        "/v2/weekly-montages/latest": {"get"},
        "/v2/weekly-montages/{montage_id}": {"get"},
        "/v2/weekly-montages/{montage_id}/feature": {"patch"},
        "/v2/weekly-montages/{montage_id}/title": {"patch"},
        "/v2/weekly-montages/trigger": {"post"},
        "/v2/weeks/{week}/theme": {"get", "put", "delete"},
        "/v2/users/{user_id}/notifications": {"get"},
        "/v2/users/{user_id}/notifications/{notification_id}/read": {"post"},
    }
    assert spec["paths"]["/v2/weekly-montages/trigger"]["post"]["security"] == [{"HTTPBearer": []}]
    assert docs.status_code == 200 and "swagger" in docs.text.lower()


@pytest.mark.timeout(120)
def test_trigger_launches_the_weeks_run_through_dagster(tmp_path: Path, sqlite_url: str) -> None:
    """A real dagster-webserver on an embedded instance receives the run for the week."""
    from dagster import DagsterInstance, RunsFilter

    upgrade(sqlite_url)
    home = embedded_home(tmp_path / "dagster_home")
    montage_home = tmp_path / "montage"
    montage_home.mkdir()
    week = "2025-01-27"
    with dagster_webserver(home, montage_home) as web:
        # `-m montage_pipeline.definitions` names the code location after the module.
        graphql = f"{web}/graphql"
        app = create_app(sqlite_url, TOKEN, graphql, code_location="montage_pipeline.definitions")
        with serving(app) as base:
            response = requests.post(
                f"{base}/v2/weekly-montages/trigger", json={"week_start": week}, headers=AUTH, timeout=60
            )
        assert response.status_code == 202, response.text
        assert response.json()["week_start"] == week
        run_id = response.json()["run_id"]
        with serving(create_app(sqlite_url, TOKEN, graphql, code_location="nope")) as base:
            refused = requests.post(
                f"{base}/v2/weekly-montages/trigger", json={"week_start": week}, headers=AUTH, timeout=60
            )
        assert refused.status_code == 502 and "Could not find Pipeline nope" in refused.json()["detail"]
    with DagsterInstance.from_config(str(home)) as instance:
        runs = instance.get_runs(RunsFilter(tags={"dagster/partition": week}))
    assert [(run.run_id, run.job_name) for run in runs] == [(run_id, "weekly_montage_job")]


def test_the_list_pages_by_cursor_with_a_total(api: tuple[str, list[int]]) -> None:
    base, ids = api
    url = f"{base}/v2/weekly-montages"
    first = requests.get(url, params={"limit": 2}, timeout=5).json()
    assert [m["id"] for m in first["items"]] == [ids[2], ids[1]]
    assert (first["count"], first["total"]) == (2, 3) and first["next_cursor"]
    second = requests.get(url, params={"limit": 2, "cursor": first["next_cursor"]}, timeout=5).json()
    assert [m["id"] for m in second["items"]] == [ids[0]]
    assert (second["count"], second["total"], second["next_cursor"]) == (1, 3, None)
    whole = requests.get(url, params={"limit": 3}, timeout=5).json()
    assert whole["next_cursor"] is None and whole["total"] == 3  # exactly one page: no empty next page
    featured = requests.get(url, params={"limit": "1", "featured_only": "true"}, timeout=5).json()
    assert [m["id"] for m in featured["items"]] == [ids[1]]
    assert (featured["total"], featured["next_cursor"]) == (1, None)
    for bad in ("nonsense!", "MjAyNS0wMS0xMw", ""):  # not base64; a date without a timezone; empty
        response = requests.get(url, params={"cursor": bad}, timeout=5)
        assert response.status_code == 422 and "cursor" in response.json()["detail"], bad


def test_an_id_beyond_the_column_is_404_not_500(api: tuple[str, list[int]]) -> None:
    base, _ = api
    for montage_id in (2**31, 2**63, 10**30, -1, 0):
        response = requests.get(f"{base}/v2/weekly-montages/{montage_id}", timeout=5)
        assert response.status_code == 404, montage_id
        assert response.json() == {"detail": f"weekly montage {montage_id} not found"}
        patched = requests.patch(
            f"{base}/v2/weekly-montages/{montage_id}/feature",
            json={"is_featured": True},
            headers=AUTH,
            timeout=5,
        )
        assert patched.status_code == 404, montage_id


def test_openapi_documents_the_pagination(sqlite_url: str) -> None:
    upgrade(sqlite_url)
    with serving(create_app(sqlite_url, admin_token=None)) as base:
        spec = requests.get(f"{base}/openapi.json", timeout=5).json()
    params = {p["name"]: p for p in spec["paths"]["/v2/weekly-montages"]["get"]["parameters"]}
    assert set(params) == {"limit", "cursor", "featured_only"}
    assert "next_cursor" in params["cursor"]["description"]
    assert (params["limit"]["schema"]["minimum"], params["limit"]["schema"]["maximum"]) == (1, 100)
    page = spec["components"]["schemas"]["MontageList"]
    assert set(page["required"]) == {"items", "count", "total", "next_cursor"}
    assert "all pages" in page["properties"]["total"]["description"]
    assert "next page" in page["properties"]["next_cursor"]["description"]
