"""FastAPI app over the `weekly_montages` table; admin routes need `Authorization: Bearer <token>`.

A user's in-app notifications (`/v2/users/{id}/notifications`) are behind the same admin token: this
API has no user sign-in, so the platform's backend, which knows who is signed in, reads and marks them
on the user's behalf. Weeks' themes (`/v2/weeks/{week}/theme`) are admin routes too.

Reads never touch Dagster. `POST /v2/weekly-montages/trigger` launches the week's run through the
Dagster GraphQL API (the webserver's `/graphql`), the same way the UI does (`defs/launch.py`).

The list is paginated by cursor (keyset on the unique `week_start`: a week added between two requests
neither repeats nor skips a row) and says its `total`; an id outside the id column's range is simply not
found (404), never a database error.

The table stores object keys of the exports, not URLs (a presigned URL dies within 7 days): each answer
mints its URLs with `media_urls` (presigned for a while, or the public base URL + key). A value that is
already a URL (a row the platform wrote itself) is passed through.
"""

# No `from __future__ import annotations`: FastAPI resolves the route signatures at runtime, and the
# routes are defined inside the functions that register them.

import base64
import binascii
import re
import secrets
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from montage_pipeline.api.schemas import (
    FeatureBody,
    Montage,
    MontageList,
    NotificationList,
    NotificationOut,
    ThemeBody,
    TitleBody,
    TriggerBody,
    Triggered,
    WeekThemeSetting,
)
from montage_pipeline.platform import montage_record, notifications, themes
from montage_pipeline.platform.engine import make_engine
from montage_pipeline.platform.models import Notification, User, WeeklyMontage, WeeklyTheme
from montage_pipeline.weeks import parse_week

MAX_ID = 2**31 - 1  # `weekly_montages.id` is a 32-bit INTEGER; a larger id cannot exist

# auto_error=False: a missing header is our 401 (with WWW-Authenticate), not FastAPI's own error.
bearer = HTTPBearer(auto_error=False, description="MONTAGE_ADMIN_TOKEN")


_URL = re.compile(r"^[a-z][a-z0-9+.-]*://", re.IGNORECASE)


def _link(stored: str | None, media_urls: Callable[[str], str] | None) -> str | None:
    if stored is None or _URL.match(stored):
        return stored
    # A key with no way to make it fetchable: no link rather than a key the frontend cannot load.
    return media_urls(stored) if media_urls else None


def _montage(row: WeeklyMontage, media_urls: Callable[[str], str] | None = None) -> Montage:
    return Montage(
        id=row.id,
        week_start=row.week_start.date(),
        title=row.title,
        clip_count=row.clip_count,
        total_duration=row.total_duration,
        featured_user_ids=list(row.featured_user_ids or []),
        is_featured=row.is_featured,
        render_path_landscape=_link(row.render_path_landscape, media_urls),
        render_path_portrait=_link(row.render_path_portrait, media_urls),
        created_at=row.created_at,
    )


def _cursor(week_start: datetime) -> str:
    return base64.urlsafe_b64encode(week_start.isoformat().encode()).decode().rstrip("=")


def _after(cursor: str) -> datetime:
    """The week a cursor points after; 422 for anything `_cursor` did not make."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        value = datetime.fromisoformat(raw)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise HTTPException(422, f"cursor {cursor!r} is not one this API returned") from None
    if value.tzinfo is None:
        raise HTTPException(422, f"cursor {cursor!r} is not one this API returned")
    return value.astimezone(UTC)


def _db(request: Request) -> Iterator[Session]:
    """A session on the app's database for one request."""
    with request.app.state.sessions() as session:
        yield session


Db = Annotated[Session, Depends(_db)]


def _admin_check(admin_token: str | None) -> Callable[[HTTPAuthorizationCredentials | None], None]:
    """The dependency of the admin routes: the bearer token must be `admin_token` (503 when unset)."""

    def admin(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> None:
        if not admin_token:
            raise HTTPException(503, "admin routes are disabled: MONTAGE_ADMIN_TOKEN is not set")
        given = credentials.credentials if credentials else ""
        if not secrets.compare_digest(given.encode(), admin_token.encode()):
            raise HTTPException(401, "a valid admin bearer token is required", {"WWW-Authenticate": "Bearer"})

    return admin


def _found(session: Session, montage_id: int) -> WeeklyMontage:
    # Outside the column's range Postgres raises "integer out of range" and SQLite an OverflowError.
    row = session.get(WeeklyMontage, montage_id) if 1 <= montage_id <= MAX_ID else None
    if row is None:
        raise HTTPException(404, f"weekly montage {montage_id} not found")
    return row


def create_app(
    database_url: str,
    admin_token: str | None,
    dagster_graphql_url: str | None = None,
    code_location: str = "montage_pipeline",
    media_urls: Callable[[str], str] | None = None,
) -> FastAPI:
    """`media_urls` turns an export's object key into a URL for this answer (see the module doc)."""
    engine = make_engine(database_url)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        engine.dispose()

    app = FastAPI(title="montage_pipeline read API", version="2", lifespan=lifespan)
    app.state.sessions = sessionmaker(engine, expire_on_commit=False)
    admin = _admin_check(admin_token)
    _add_read_routes(app, media_urls)
    _add_admin_routes(app, admin, media_urls)
    _add_theme_routes(app, admin)
    _add_notification_routes(app, admin)
    _add_trigger_route(app, admin, dagster_graphql_url, code_location)
    return app


def _add_read_routes(app: FastAPI, media_urls: Callable[[str], str] | None) -> None:
    """The public reads: the paged list, the latest published montage, one by id."""

    @app.get("/v2/weekly-montages")
    def list_montages(
        session: Db,
        limit: Annotated[int, Query(ge=1, le=100, description="Items per page.")] = 10,
        cursor: Annotated[
            str | None, Query(description="`next_cursor` of the previous page; omit for the first page.")
        ] = None,
        featured_only: Annotated[bool, Query(description="Only montages marked as featured.")] = False,
    ) -> MontageList:
        """Weekly montages, newest week first, a page at a time."""
        matching = select(WeeklyMontage)
        if featured_only:
            matching = matching.where(WeeklyMontage.is_featured.is_(True))
        total = session.scalar(select(func.count()).select_from(matching.subquery())) or 0
        page = matching.order_by(WeeklyMontage.week_start.desc())
        if cursor is not None:
            page = page.where(WeeklyMontage.week_start < _after(cursor))
        rows = list(session.scalars(page.limit(limit + 1)))  # one more: is there a next page?
        more = len(rows) > limit
        rows = rows[:limit]
        return MontageList(
            items=[_montage(r, media_urls) for r in rows],
            count=len(rows),
            total=total,
            next_cursor=_cursor(rows[-1].week_start) if more else None,
        )

    # Declared before `/{montage_id}` so "latest" is not read as an id.
    @app.get("/v2/weekly-montages/latest")
    def latest(session: Db) -> Montage:
        row = session.scalars(
            select(WeeklyMontage)
            .where(
                WeeklyMontage.render_path_landscape.is_not(None),
                WeeklyMontage.render_path_portrait.is_not(None),
            )
            .order_by(WeeklyMontage.week_start.desc())
            .limit(1)
        ).first()
        if row is None:
            raise HTTPException(404, "no published weekly montage yet")
        return _montage(row, media_urls)

    @app.get("/v2/weekly-montages/{montage_id}")
    def by_id(montage_id: int, session: Db) -> Montage:
        return _montage(_found(session, montage_id), media_urls)


def _add_admin_routes(
    app: FastAPI, admin: Callable[..., None], media_urls: Callable[[str], str] | None
) -> None:
    """The admins' edits of a montage: featured or not, and its title."""

    @app.patch("/v2/weekly-montages/{montage_id}/feature", dependencies=[Depends(admin)])
    def feature(montage_id: int, body: FeatureBody, session: Db) -> Montage:
        row = _found(session, montage_id)
        montage_record.feature(row, body.is_featured)
        session.commit()
        return _montage(row, media_urls)

    @app.patch("/v2/weekly-montages/{montage_id}/title", dependencies=[Depends(admin)])
    def title(montage_id: int, body: TitleBody, session: Db) -> Montage:
        row = _found(session, montage_id)
        montage_record.retitle(row, body.title)
        session.commit()
        return _montage(row, media_urls)


def _week(week: str) -> str:
    try:
        parse_week(week)
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    return week


def _setting(row: WeeklyTheme) -> WeekThemeSetting:
    return WeekThemeSetting(
        week_start=row.week_start.date(), theme=row.theme, set_by=row.set_by, set_at=row.set_at
    )


def _add_theme_routes(app: FastAPI, admin: Callable[..., None]) -> None:
    """An admin's theme for a week, set before its run (admins only)."""

    @app.get("/v2/weeks/{week}/theme", dependencies=[Depends(admin)])
    def get_theme(week: str, session: Db) -> WeekThemeSetting:
        row = themes.theme_setting(session, _week(week))
        if row is None:
            raise HTTPException(
                404, f"no theme is set for the week of {week}: the run picks the most featured game"
            )
        return _setting(row)

    @app.put("/v2/weeks/{week}/theme", dependencies=[Depends(admin)])
    def put_theme(week: str, body: ThemeBody, session: Db) -> WeekThemeSetting:
        try:
            row = themes.set_theme(session, _week(week), body.theme, body.set_by)
        except themes.ThemeError as exc:
            raise HTTPException(422, str(exc)) from None
        session.commit()
        return _setting(row)

    @app.delete("/v2/weeks/{week}/theme", status_code=204, dependencies=[Depends(admin)])
    def delete_theme(week: str, session: Db) -> None:
        if not themes.clear_theme(session, _week(week)):
            raise HTTPException(404, f"no theme is set for the week of {week}")
        session.commit()


def _notification(row: Notification) -> NotificationOut:
    return NotificationOut(
        id=row.id,
        kind=row.kind,
        week_start=row.week_start.date(),
        montage_id=row.montage_id,
        text=row.text,
        payload=row.payload,
        created_at=row.created_at,
        read_at=row.read_at,
    )


def _user(session: Session, user_id: int) -> User:
    row = session.get(User, user_id) if 1 <= user_id <= MAX_ID else None
    if row is None:
        raise HTTPException(404, f"user {user_id} not found")
    return row


def _add_notification_routes(app: FastAPI, admin: Callable[..., None]) -> None:
    """A user's in-app notifications, read and marked read by the platform's backend (admin token)."""

    @app.get("/v2/users/{user_id}/notifications", dependencies=[Depends(admin)])
    def list_notifications(
        user_id: int,
        session: Db,
        unread_only: Annotated[bool, Query(description="Only notifications not read yet.")] = False,
        limit: Annotated[int, Query(ge=1, le=100)] = 50,
    ) -> NotificationList:
        """The user's notifications, newest first."""
        _user(session, user_id)
        rows = notifications.user_notifications(session, user_id, unread_only, limit)
        unread = session.scalar(
            select(func.count()).where(Notification.user_id == user_id, Notification.read_at.is_(None))
        )
        return NotificationList(items=[_notification(r) for r in rows], unread=unread or 0)

    @app.post("/v2/users/{user_id}/notifications/{notification_id}/read", dependencies=[Depends(admin)])
    def read(user_id: int, notification_id: int, session: Db) -> NotificationOut:
        """Mark one notification read; marking it again keeps the first time."""
        _user(session, user_id)
        found = (
            notifications.mark_read(session, user_id, notification_id)
            if 1 <= notification_id <= MAX_ID
            else None
        )
        if found is None:
            raise HTTPException(404, f"user {user_id} has no notification {notification_id}")
        session.commit()
        return _notification(found)


def _add_trigger_route(
    app: FastAPI, admin: Callable[..., None], dagster_graphql_url: str | None, code_location: str
) -> None:
    """`POST /trigger`: launch a week's run through Dagster's GraphQL API (admins only)."""

    @app.post("/v2/weekly-montages/trigger", status_code=202, dependencies=[Depends(admin)])
    def trigger(body: TriggerBody) -> Triggered:
        if not dagster_graphql_url:
            raise HTTPException(503, "triggering is disabled: DAGSTER_GRAPHQL_URL is not set")
        # Imported here: launching goes through Dagster (defs/), which the read routes never need.
        from montage_pipeline.defs.launch import LaunchError, launch_week

        try:
            run_id = launch_week(
                dagster_graphql_url, code_location, body.week_start.isoformat(), {"montage/trigger": "api"}
            )
        except LaunchError as exc:
            raise HTTPException(502, f"Dagster did not launch the run: {exc}") from None
        return Triggered(run_id=run_id, week_start=body.week_start)
