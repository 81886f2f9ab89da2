"""Admin jobs and sensors: feature/retitle, the failure alert, late uploads, creator emails (real SMTP)."""

from __future__ import annotations

import ipaddress
import json
import smtplib
import socket
import ssl
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from aiosmtpd.controller import Controller
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from montage_pipeline.defs.admin import feature_montage_job, retitle_montage_job, theme_week_job
from montage_pipeline.defs.assets.selection import eligible_jobs
from montage_pipeline.defs.io_managers.table_io_manager import TableIOManager
from montage_pipeline.defs.resources.media_store import LocalMediaStoreResource
from montage_pipeline.defs.resources.notify import AlertWebhook, Mailer
from montage_pipeline.defs.resources.platform_db import PlatformDatabase
from montage_pipeline.defs.sensors import (
    ALERT_ATTEMPTS,
    ALERT_FAILURES_TAG,
    MAX_EMAIL_ATTEMPTS,
    STALE_SENDING,
    late_uploads,
    montage_failure_alert,
    notify_featured_creators,
)
from montage_pipeline.platform.migrate import upgrade
from montage_pipeline.platform.models import Job, JobStatus, MontageNotification, User, WeeklyMontage
from montage_pipeline.platform.montage_record import MontageFacts, record_published
from montage_pipeline.platform.themes import admin_theme
from montage_pipeline.settings import load_settings
from montage_pipeline.weeks import week_key, week_window
from montage_pipeline_tests.selection_support import add_upload

# A recent week: the sensors look at the last few weeks only.
WEEK_START = week_window(week_key(datetime.now(UTC) - timedelta(days=7)))[0]
WEEK = f"{WEEK_START:%Y-%m-%d}"


def _publish(url: str, featured: list[int], landscape: str = "https://x/l.mp4") -> None:
    with Session(create_engine(url)) as s, s.begin():
        facts = MontageFacts("Weekly Highlights", len(featured), 60.0, featured, landscape, "https://x/p.mp4")
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


def test_admins_set_and_clear_a_weeks_theme_before_its_run(db_url: str) -> None:
    upgrade(db_url)
    db = PlatformDatabase(url=db_url)

    def run(**config: str) -> bool:
        result = theme_week_job.execute_in_process(
            run_config={"ops": {"set_week_theme": {"config": {"week": WEEK, **config}}}},
            resources={"platform_db": db},
            raise_on_error=False,
        )
        return result.success

    def stored() -> str | None:
        with Session(create_engine(db_url)) as s:
            return admin_theme(s, WEEK)

    assert run(theme=" Doom ") and stored() == "Doom"
    assert run(theme="Retro Arena", set_by="ops") and stored() == "Retro Arena"
    assert not run(theme="x" * 65) and stored() == "Retro Arena"  # refused, the setting kept
    assert not run(week="2025-01-28", theme="Doom")
    assert run(theme="") and stored() is None  # cleared: the run takes the most featured game


class _Webhook:
    def __init__(self, status: int = 200) -> None:
        self.received: list[dict[str, Any]] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                hook.received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"


def _alert_for_a_failed_week(sqlite_url: str, tmp_path: Any, webhook: _Webhook) -> dg.DagsterRun | None:
    """Fail a week's run, then evaluate the failure sensor for it; the run as the instance sees it after."""
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
        return instance.get_run_by_id(result.run_id)


def test_a_failed_week_raises_an_alert_naming_the_week_and_the_step(sqlite_url: str, tmp_path: Any) -> None:
    upgrade(sqlite_url)
    webhook = _Webhook()
    run = _alert_for_a_failed_week(sqlite_url, tmp_path, webhook)
    assert run is not None and ALERT_FAILURES_TAG not in run.tags
    assert len(webhook.received) == 1
    alert = webhook.received[0]
    assert WEEK in alert["text"] and "eligible_jobs" in alert["text"] and alert["steps"] == ["eligible_jobs"]
    with Session(create_engine(sqlite_url)) as s:
        job = s.scalars(select(Job).where(Job.kind == "weekly_montage")).one()
        assert job.status == JobStatus.FAILED


def test_the_failure_hook_marks_the_weeks_montage_job_failed_without_the_sensor(
    sqlite_url: str, tmp_path: Any
) -> None:
    """The weekly job's own failure hook (no sensor evaluated) reports the failed step to the montage
    record, which marks the week's job FAILED."""
    from montage_pipeline.defs.automation import mark_montage_job_failed

    upgrade(sqlite_url)
    broken_tables = TableIOManager(url=f"sqlite:///{tmp_path}/missing/dir/tables.sqlite")
    job = dg.define_asset_job("week_with_hook", selection=[eligible_jobs], hooks={mark_montage_job_failed})
    defs = dg.Definitions(
        assets=[eligible_jobs],
        jobs=[job],
        resources={"platform_db": PlatformDatabase(url=sqlite_url), "table_io_manager": broken_tables},
    )
    with dg.instance_for_test() as instance:
        result = defs.resolve_job_def("week_with_hook").execute_in_process(
            partition_key=WEEK, instance=instance, raise_on_error=False
        )
    assert not result.success
    with Session(create_engine(sqlite_url)) as s:
        assert s.scalars(select(Job).where(Job.kind == "weekly_montage")).one().status == JobStatus.FAILED


def test_a_failing_alert_webhook_is_tried_a_few_times_then_given_up_without_raising(
    sqlite_url: str, tmp_path: Any
) -> None:
    upgrade(sqlite_url)
    webhook = _Webhook(status=500)
    run = _alert_for_a_failed_week(sqlite_url, tmp_path, webhook)  # raising would repeat every tick
    assert len(webhook.received) == ALERT_ATTEMPTS  # bounded, then given up
    assert run is not None and run.tags[ALERT_FAILURES_TAG] == str(ALERT_ATTEMPTS)  # counted on the run
    with Session(create_engine(sqlite_url)) as s:  # the rest of the alert's work still happened
        assert s.scalars(select(Job).where(Job.kind == "weekly_montage")).one().status == JobStatus.FAILED


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
        self.refuse: set[str] = set()  # recipients whose mail server says no
        self.refused: list[str] = []

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        if address in self.refuse:
            self.refused.append(address)
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

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
    db_url: str, smtp: tuple[_Inbox, int], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inbox, port = smtp
    media = tmp_path / "media"
    monkeypatch.setenv("MONTAGE_PUBLIC_BASE_URL", "https://cdn.example.com/m")
    ace, blaze, quiet = _users(db_url, "ace", "blaze", "quiet")
    with Session(create_engine(db_url)) as s, s.begin():
        user = s.get(User, quiet)
        assert user is not None
        user.notifications_opt_out = True
    _publish(db_url, [ace, blaze, quiet], "exports/7/gen1/final_landscape.mp4")  # the row keeps a key
    resources = {
        "platform_db": PlatformDatabase(url=db_url),
        "mailer": Mailer(host="127.0.0.1", port=port, starttls=False, sender="bot@example.com"),
        "settings": load_settings(),
        "media_store": LocalMediaStoreResource(root=str(media)),
    }
    with dg.instance_for_test() as instance:
        for _ in range(2):  # a second tick sends nothing again
            with dg.build_sensor_context(instance=instance, resources=resources) as ctx:
                notify_featured_creators(ctx)
    assert sorted(r[0] for r, _ in inbox.messages) == ["ace@example.com", "blaze@example.com"]
    link = "https://cdn.example.com/m/exports/7/gen1/final_landscape.mp4"  # minted from the key
    assert all("Weekly Highlights" in body and link in body for _, body in inbox.messages)
    with Session(create_engine(db_url)) as s:
        rows = s.scalars(select(MontageNotification)).all()
        assert sorted((r.user_id, r.status) for r in rows) == [(ace, "sent"), (blaze, "sent")]


def _self_signed(folder: Path, names: list[x509.GeneralName]) -> tuple[Path, Path]:
    """A self-signed certificate (its own CA) for `names`, and its key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test relay")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "relay.pem", folder / "relay.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_file, key_file


@pytest.fixture
def tls_relay(tmp_path: Path) -> Iterator[tuple[_Inbox, int, Path, Path]]:
    """An SMTP server that requires STARTTLS with a self-signed certificate for 127.0.0.1.

    Yields the inbox, the port, the certificate (to trust it) and a second self-signed certificate for
    the same address that the server does not use (trusting it must not help).
    """
    cert, key = _self_signed(tmp_path, [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
    other = tmp_path / "other"
    other.mkdir()
    stranger, _ = _self_signed(other, [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    inbox = _Inbox()
    controller = Controller(
        inbox, hostname="127.0.0.1", port=port, tls_context=context, require_starttls=True
    )
    controller.start()
    yield inbox, port, cert, stranger
    controller.stop()


def test_starttls_verifies_the_relays_certificate(tls_relay: tuple[_Inbox, int, Path, Path]) -> None:
    inbox, port, cert, stranger = tls_relay
    for ca_file in ("", str(stranger)):  # the system CAs, then a CA that did not sign the relay's cert
        mailer = Mailer(host="127.0.0.1", port=port, ca_file=ca_file)
        with pytest.raises(ssl.SSLCertVerificationError):
            mailer.send("ace@example.com", "Weekly Highlights", "you are in it")
    assert inbox.messages == []
    Mailer(host="127.0.0.1", port=port, ca_file=str(cert)).send("ace@example.com", "Weekly Highlights", "hi")
    assert [rcpt for rcpt, _ in inbox.messages] == [["ace@example.com"]]
    # The relay really insists on TLS: the same mail in clear text is refused.
    with pytest.raises(smtplib.SMTPSenderRefused):
        Mailer(host="127.0.0.1", port=port, starttls=False).send("ace@example.com", "x", "y")


def test_a_failing_creator_email_is_retried_a_bounded_number_of_times(
    db_url: str, smtp: tuple[_Inbox, int], tmp_path: Path
) -> None:
    inbox, port = smtp
    media = tmp_path / "media"
    ace, blaze = _users(db_url, "ace", "blaze")
    inbox.refuse.add("blaze@example.com")
    _publish(db_url, [ace, blaze])
    resources = {
        "platform_db": PlatformDatabase(url=db_url),
        "mailer": Mailer(host="127.0.0.1", port=port, starttls=False, sender="bot@example.com"),
        "settings": load_settings(),
        "media_store": LocalMediaStoreResource(root=str(media)),
    }
    with dg.instance_for_test() as instance:
        for _ in range(MAX_EMAIL_ATTEMPTS + 3):  # ticks every 10 minutes, for weeks
            with dg.build_sensor_context(instance=instance, resources=resources) as ctx:
                notify_featured_creators(ctx)
    assert inbox.refused == ["blaze@example.com"] * MAX_EMAIL_ATTEMPTS
    assert [r for r, _ in inbox.messages] == [["ace@example.com"]]
    with Session(create_engine(db_url)) as s:
        rows = {r.user_id: r for r in s.scalars(select(MontageNotification)).all()}
        assert (rows[ace].status, rows[ace].attempts) == ("sent", 1)
        assert (rows[blaze].status, rows[blaze].attempts) == ("failed", MAX_EMAIL_ATTEMPTS)
        assert "mailbox unavailable" in (rows[blaze].last_error or "")


def test_an_email_whose_sender_died_mid_send_is_sent_on_a_later_tick(
    db_url: str, smtp: tuple[_Inbox, int], tmp_path: Path
) -> None:
    inbox, port = smtp
    ace, blaze, cobalt = _users(db_url, "ace", "blaze", "cobalt")
    _publish(db_url, [ace, blaze, cobalt])
    now = datetime.now(UTC)
    with Session(create_engine(db_url)) as s, s.begin():
        for user_id, claimed, attempts in (
            (ace, now - STALE_SENDING - timedelta(minutes=1), 0),  # its tick died long ago
            (blaze, now, 0),  # another tick is sending it right now
            (cobalt, now - STALE_SENDING - timedelta(minutes=1), MAX_EMAIL_ATTEMPTS - 1),  # no try left
        ):
            s.add(
                MontageNotification(
                    week_start=WEEK_START,
                    user_id=user_id,
                    status="sending",
                    attempts=attempts,
                    claimed_at=claimed,
                )
            )
    resources = {
        "platform_db": PlatformDatabase(url=db_url),
        "mailer": Mailer(host="127.0.0.1", port=port, starttls=False, sender="bot@example.com"),
        "settings": load_settings(),
        "media_store": LocalMediaStoreResource(root=str(tmp_path / "media")),
    }
    with (
        dg.instance_for_test() as instance,
        dg.build_sensor_context(instance=instance, resources=resources) as ctx,
    ):
        notify_featured_creators(ctx)
    assert [r for r, _ in inbox.messages] == [["ace@example.com"]]
    with Session(create_engine(db_url)) as s:
        rows = {r.user_id: r for r in s.scalars(select(MontageNotification)).all()}
    assert (rows[ace].status, rows[ace].attempts) == ("sent", 2)  # the dead try counts
    assert (rows[blaze].status, rows[blaze].attempts) == ("sending", 0)  # a live claim is left alone
    assert (rows[cobalt].status, rows[cobalt].attempts) == ("failed", MAX_EMAIL_ATTEMPTS)
    assert "stopped while sending" in (rows[cobalt].last_error or "")


def test_emails_are_off_without_an_smtp_host(db_url: str, tmp_path: Path) -> None:
    resources = {
        "platform_db": PlatformDatabase(url=db_url),
        "mailer": Mailer(),
        "settings": load_settings(),
        "media_store": LocalMediaStoreResource(root=str(tmp_path)),
    }
    with (
        dg.instance_for_test() as instance,
        dg.build_sensor_context(instance=instance, resources=resources) as ctx,
    ):
        result = notify_featured_creators(ctx)
    assert isinstance(result, dg.SkipReason)
