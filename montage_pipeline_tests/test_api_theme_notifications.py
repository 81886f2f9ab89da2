"""The API's theme and notification routes over real HTTP, on PostgreSQL and SQLite."""

from __future__ import annotations

from datetime import UTC, datetime

import requests
from sqlalchemy import select
from sqlalchemy.orm import Session

from montage_pipeline.api.app import create_app
from montage_pipeline.platform.engine import make_engine
from montage_pipeline.platform.migrate import upgrade
from montage_pipeline.platform.models import Notification, User, WeeklyMontage, WeeklyTheme
from montage_pipeline.platform.notifications import notify_featured
from montage_pipeline.platform.themes import admin_theme
from montage_pipeline_tests.test_api import AUTH, TOKEN, serving

WEEK = "2025-01-27"


def _seed(url: str) -> tuple[int, int, int]:
    """Two featured users (the second opted out of notifications) and a third, not featured; the
    week's montage with both notifications written twice, as a rerun of the export would."""
    engine = make_engine(url)
    with Session(engine) as s, s.begin():
        users = [
            User(handle="ace", email="ace@example.com"),
            User(handle="blaze", email="blaze@example.com", notifications_opt_out=True),
            User(handle="cobalt", email="cobalt@example.com"),
        ]
        s.add_all(users)
        s.flush()
        montage = WeeklyMontage(
            week_start=datetime(2025, 1, 27, tzinfo=UTC),
            title="Weekly Highlights — Doom week · January 27, 2025",
        )
        s.add(montage)
        s.flush()
        first = notify_featured(s, montage, [users[0].id, users[1].id])
        again = notify_featured(s, montage, [users[0].id, users[1].id])
        assert (first, again) == ([users[0].id], [])
        ids = (users[0].id, users[1].id, users[2].id)
    engine.dispose()
    return ids


def test_notifications_are_read_and_marked_read_through_the_api(db_url: str) -> None:
    upgrade(db_url)
    ace, blaze, cobalt = _seed(db_url)
    with serving(create_app(db_url, admin_token=TOKEN)) as base:
        url = f"{base}/v2/users/{ace}/notifications"
        assert requests.get(url, timeout=5).status_code == 401  # the platform's backend holds the token
        listed = requests.get(url, headers=AUTH, timeout=5).json()
        assert listed["unread"] == 1 and len(listed["items"]) == 1
        (item,) = listed["items"]
        assert (item["kind"], item["week_start"], item["read_at"]) == ("featured", WEEK, None)
        assert item["text"] == "Your clip is in Weekly Highlights — Doom week · January 27, 2025!"
        assert item["payload"]["title"].endswith("January 27, 2025")
        # Nobody else's, and no opted-out user's.
        for other in (blaze, cobalt):
            got = requests.get(f"{base}/v2/users/{other}/notifications", headers=AUTH, timeout=5).json()
            assert got == {"items": [], "unread": 0}
        wrong_user = requests.post(
            f"{base}/v2/users/{cobalt}/notifications/{item['id']}/read", headers=AUTH, timeout=5
        )
        assert wrong_user.status_code == 404
        read = requests.post(f"{url}/{item['id']}/read", headers=AUTH, timeout=5)
        assert read.status_code == 200 and read.json()["read_at"] is not None
        again = requests.post(f"{url}/{item['id']}/read", headers=AUTH, timeout=5).json()
        assert again["read_at"] == read.json()["read_at"]  # the first time stays
        after = requests.get(url, headers=AUTH, params={"unread_only": "true"}, timeout=5).json()
        assert after == {"items": [], "unread": 0}
        assert (
            requests.get(f"{base}/v2/users/999999/notifications", headers=AUTH, timeout=5).status_code == 404
        )
        assert requests.post(f"{url}/{2**40}/read", headers=AUTH, timeout=5).status_code == 404


def test_an_admin_sets_replaces_and_clears_a_weeks_theme(db_url: str) -> None:
    upgrade(db_url)
    with serving(create_app(db_url, admin_token=TOKEN)) as base:
        url = f"{base}/v2/weeks/{WEEK}/theme"
        assert requests.put(url, json={"theme": "Doom"}, timeout=5).status_code == 401
        assert requests.get(url, headers=AUTH, timeout=5).status_code == 404
        put = requests.put(
            url, headers=AUTH, json={"theme": "  Doom\n", "set_by": "ops@example.com"}, timeout=5
        )
        assert put.status_code == 200
        assert {k: put.json()[k] for k in ("week_start", "theme", "set_by")} == {
            "week_start": WEEK,
            "theme": "Doom",
            "set_by": "ops@example.com",
        }
        requests.put(url, headers=AUTH, json={"theme": "Retro shooters"}, timeout=5).raise_for_status()
        assert requests.get(url, headers=AUTH, timeout=5).json()["theme"] == "Retro shooters"
        for bad_week, body in (
            ("2025-01-28", {"theme": "x"}),
            ("soon", {"theme": "x"}),
            (WEEK, {"theme": " "}),
        ):
            got = requests.put(f"{base}/v2/weeks/{bad_week}/theme", headers=AUTH, json=body, timeout=5)
            assert got.status_code == 422, (bad_week, body)
        engine = make_engine(db_url)
        try:
            with Session(engine) as s:
                assert admin_theme(s, WEEK) == "Retro shooters"  # what the run reads
                assert len(s.scalars(select(WeeklyTheme)).all()) == 1
            assert requests.delete(url, headers=AUTH, timeout=5).status_code == 204
            assert requests.delete(url, headers=AUTH, timeout=5).status_code == 404
            with Session(engine) as s:
                assert admin_theme(s, WEEK) is None
                assert s.scalars(select(Notification)).all() == []
        finally:
            engine.dispose()
