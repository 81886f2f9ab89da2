"""Admin jobs and sensors: feature/retitle, the failure alert, late uploads, creator emails (real SMTP)."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import dagster as dg
import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from montage_pipeline.admin import feature_montage_job, retitle_montage_job
from montage_pipeline.assets.selection import eligible_jobs
from montage_pipeline.io_managers.table_io_manager import TableIOManager
from montage_pipeline.partitions import week_start_of
from montage_pipeline.platform.migrate import upgrade
from montage_pipeline.platform.models import Job, JobStatus, MontageNotification, User, WeeklyMontage
from montage_pipeline.publishing.montage_record import MontageFacts, record_published
from montage_pipeline.resources.notify import AlertWebhook, Mailer
from montage_pipeline.resources.platform_db import PlatformDatabase
from montage_pipeline.sensors import late_uploads, montage_failure_alert, notify_featured_creators
from montage_pipeline_tests.selection_support import add_upload

# A recent week: the sensors look at the last few weeks only.
WEEK_START = week_start_of(datetime.now(UTC) - timedelta(days=7))
WEEK = f"{WEEK_START:%Y-%m-%d}"


def _publish(url: str, featured: list[int]) -> None:
    with Session(create_engine(url)) as s, s.begin():
        facts = MontageFacts(
            "Weekly Highlights", len(featured), 60.0, featured, "https://x/l.mp4", "https://x/p.mp4"
        )
        record_published(s, WEEK, facts)


def _users(url: str, *handles: str) -> list[int]:
    with Session(create_engine(url), expire_on_commit=False) as s, s.begin():
        users = [User(handle=h, email=f"{h}@example.com") for h in handles]
        s.add_all(users)
        s.flush()
        return [u.id for u in users]


def test_admins_feature_and_retitle_a_montage(db_url: str) -> None:
    _publish(db_url, [])
    db = PlatformDatabase(url=db_url)
    config = {"ops": {"set_featured": {"config": {"week": WEEK, "featured": True}}}}
    assert feature_montage_job.execute_in_process(run_config=config, resources={"platform_db": db}).success
    title = {"ops": {"set_title": {"config": {"week": WEEK, "title": "  Clutch Week  "}}}}
    assert retitle_montage_job.execute_in_process(run_config=title, resources={"platform_db": db}).success
    with Session(create_engine(db_url)) as s:
        row = s.scalars(select(WeeklyMontage)).one()
        assert (row.is_featured, row.title) == (True, "Clutch Week")
    for bad in (
        {"week": "2025-01-28", "title": "x"},
        {"week": WEEK, "title": "   "},
        {"week": "2020-01-06", "title": "x"},
    ):
        result = retitle_montage_job.execute_in_process(
            run_config={"ops": {"set_title": {"config": bad}}},
            resources={"platform_db": db},
            raise_on_error=False,
        )
        assert not result.success


class _Webhook:
    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                hook.received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"


def test_a_failed_week_raises_an_alert_naming_the_week_and_the_step(sqlite_url: str, tmp_path: Any) -> None:
    upgrade(sqlite_url)
    webhook = _Webhook()
    broken_tables = TableIOManager(url=f"sqlite:///{tmp_path}/missing/dir/tables.sqlite")
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [eligible_jobs],
            partition_key=WEEK,
            instance=instance,
            resources={"platform_db": PlatformDatabase(url=sqlite_url), "table_io_manager": broken_tables},
            raise_on_error=False,
        )
        assert not result.success
        run = instance.get_run_by_id(result.run_id)
        failure = next(e for e in result.all_events if e.event_type_value == "PIPELINE_FAILURE")
        with dg.build_run_status_sensor_context(
            sensor_name="montage_failure_alert",
            dagster_instance=instance,
            dagster_run=run,  # type: ignore[arg-type]
            dagster_event=failure,
            resources={
                "alert_webhook": AlertWebhook(url=webhook.url),
                "platform_db": PlatformDatabase(url=sqlite_url),
            },
        ) as context:
            montage_failure_alert(context.for_run_failure())
    assert len(webhook.received) == 1
    alert = webhook.received[0]
    assert WEEK in alert["text"] and "eligible_jobs" in alert["text"] and alert["steps"] == ["eligible_jobs"]
    with Session(create_engine(sqlite_url)) as s:
        job = s.scalars(select(Job).where(Job.kind == "weekly_montage")).one()
        assert job.status == JobStatus.FAILED


def test_late_uploads_are_recorded_once_and_nothing_is_rebuilt(sqlite_url: str, tmp_path: Any) -> None:
    upgrade(sqlite_url)
    tables = TableIOManager(url=sqlite_url)
    with Session(create_engine(sqlite_url)) as s, s.begin():
        add_upload(s, "early", "a.mp4", WEEK_START + timedelta(days=1), "Apex")
    resources = {"platform_db": PlatformDatabase(url=sqlite_url), "table_io_manager": tables}
    assert dg.materialize([eligible_jobs], partition_key=WEEK, resources=resources).success
    _publish(sqlite_url, [])
    with Session(create_engine(sqlite_url)) as s, s.begin():
        late_id = add_upload(s, "late", "b.mp4", WEEK_START + timedelta(days=6), "Apex")
    with dg.instance_for_test() as instance:
        with dg.build_sensor_context(instance=instance, resources=resources) as ctx:
            first = late_uploads(ctx)
        assert isinstance(first, dg.SensorResult) and first.asset_events
        event = first.asset_events[0]
        assert isinstance(event, dg.AssetObservation) and event.partition == WEEK
        assert event.metadata["late_job_ids"].value == str(late_id)
        assert not first.run_requests  # recorded for the admin, not rebuilt
        with dg.build_sensor_context(instance=instance, resources=resources, cursor=first.cursor) as ctx:
            again = late_uploads(ctx)
        assert isinstance(again, dg.SensorResult) and not again.asset_events


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[list[str], str]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append((list(envelope.rcpt_tos), envelope.content.decode()))
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[_Inbox, int]]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    inbox = _Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield inbox, port
    controller.stop()


def test_featured_creators_get_one_email_per_week_unless_they_opted_out(
    db_url: str, smtp: tuple[_Inbox, int]
) -> None:
    inbox, port = smtp
    ace, blaze, quiet = _users(db_url, "ace", "blaze", "quiet")
    with Session(create_engine(db_url)) as s, s.begin():
        user = s.get(User, quiet)
        assert user is not None
        user.notifications_opt_out = True
    _publish(db_url, [ace, blaze, quiet])
    resources = {
        "platform_db": PlatformDatabase(url=db_url),
        "mailer": Mailer(host="127.0.0.1", port=port, starttls=False, sender="bot@example.com"),
    }
    with dg.instance_for_test() as instance:
        for _ in range(2):  # a second tick sends nothing again
            with dg.build_sensor_context(instance=instance, resources=resources) as ctx:
                notify_featured_creators(ctx)
    assert sorted(r[0] for r, _ in inbox.messages) == ["ace@example.com", "blaze@example.com"]
    assert all("Weekly Highlights" in body and "https://x/l.mp4" in body for _, body in inbox.messages)
    with Session(create_engine(db_url)) as s:
        rows = s.scalars(select(MontageNotification)).all()
        assert sorted((r.user_id, r.status) for r in rows) == [(ace, "sent"), (blaze, "sent")]


def test_emails_are_off_without_an_smtp_host(db_url: str) -> None:
    resources = {"platform_db": PlatformDatabase(url=db_url), "mailer": Mailer()}
    with (
        dg.instance_for_test() as instance,
        dg.build_sensor_context(instance=instance, resources=resources) as ctx,
    ):
        result = notify_featured_creators(ctx)
    assert isinstance(result, dg.SkipReason)
