"""FastAPI app over the `weekly_montages` table; admin routes need `Authorization: Bearer <token>`.

Reads never touch Dagster. `POST /v2/weekly-montages/trigger` launches the week's run through the
Dagster GraphQL API (the webserver's `/graphql`), the same way the UI does.
"""

# No `from __future__ import annotations`: FastAPI resolves the route signatures at runtime, and they
# name `Db`, which is local to `create_app`.

import secrets
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Depends, FastAPI, HTTPException, Query
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from montage_pipeline.api.schemas import (
    FeatureBody,
    Montage,
    MontageList,
    TitleBody,
    TriggerBody,
    Triggered,
)
from montage_pipeline.platform.engine import make_engine
from montage_pipeline.platform.models import WeeklyMontage

JOB_NAME = "weekly_montage_job"
REPOSITORY_NAME = "__repository__"  # what Dagster names the repository of a `Definitions` object
GRAPHQL_TIMEOUT_S = 30

# auto_error=False: a missing header is our 401 (with WWW-Authenticate), not FastAPI's own error.
bearer = HTTPBearer(auto_error=False, description="MONTAGE_ADMIN_TOKEN")


def _montage(row: WeeklyMontage) -> Montage:
    return Montage(
        id=row.id,
        week_start=row.week_start.date(),
        title=row.title,
        clip_count=row.clip_count,
        total_duration=row.total_duration,
        featured_user_ids=list(row.featured_user_ids or []),
        is_featured=row.is_featured,
        render_path_landscape=row.render_path_landscape,
        render_path_portrait=row.render_path_portrait,
        created_at=row.created_at,
    )


def create_app(
    database_url: str,
    admin_token: str | None,
    dagster_graphql_url: str | None = None,
    code_location: str = "montage_pipeline",
) -> FastAPI:
    engine = make_engine(database_url)
    sessions = sessionmaker(engine, expire_on_commit=False)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        engine.dispose()

    app = FastAPI(title="montage_pipeline read API", version="2", lifespan=lifespan)

    def db() -> Iterator[Session]:
        with sessions() as session:
            yield session

    def admin(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> None:
        if not admin_token:
            raise HTTPException(503, "admin routes are disabled: MONTAGE_ADMIN_TOKEN is not set")
        given = credentials.credentials if credentials else ""
        if not secrets.compare_digest(given.encode(), admin_token.encode()):
            raise HTTPException(401, "a valid admin bearer token is required", {"WWW-Authenticate": "Bearer"})

    def found(session: Session, montage_id: int) -> WeeklyMontage:
        row = session.get(WeeklyMontage, montage_id)
        if row is None:
            raise HTTPException(404, f"weekly montage {montage_id} not found")
        return row

    Db = Annotated[Session, Depends(db)]

    @app.get("/v2/weekly-montages")
    def list_montages(
        session: Db,
        limit: Annotated[int, Query(ge=1, le=100)] = 10,
        featured_only: bool = False,
    ) -> MontageList:
        query = select(WeeklyMontage).order_by(WeeklyMontage.week_start.desc()).limit(limit)
        if featured_only:
            query = query.where(WeeklyMontage.is_featured.is_(True))
        items = [_montage(r) for r in session.scalars(query)]
        return MontageList(items=items, count=len(items))

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
        return _montage(row)

    @app.get("/v2/weekly-montages/{montage_id}")
    def by_id(montage_id: int, session: Db) -> Montage:
        return _montage(found(session, montage_id))

    @app.patch("/v2/weekly-montages/{montage_id}/feature", dependencies=[Depends(admin)])
    def feature(montage_id: int, body: FeatureBody, session: Db) -> Montage:
        row = found(session, montage_id)
        row.is_featured = body.is_featured
        session.commit()
        return _montage(row)

    @app.patch("/v2/weekly-montages/{montage_id}/title", dependencies=[Depends(admin)])
    def title(montage_id: int, body: TitleBody, session: Db) -> Montage:
        row = found(session, montage_id)
        row.title = body.title
        session.commit()
        return _montage(row)

    @app.post("/v2/weekly-montages/trigger", status_code=202, dependencies=[Depends(admin)])
    def trigger(body: TriggerBody) -> Triggered:
        if not dagster_graphql_url:
            raise HTTPException(503, "triggering is disabled: DAGSTER_GRAPHQL_URL is not set")
        # Imported here: it pulls in all of Dagster, which the read routes never need.
        from dagster_graphql import DagsterGraphQLClient, DagsterGraphQLClientError

        week = body.week_start.isoformat()
        parts = urlsplit(dagster_graphql_url)
        client = DagsterGraphQLClient(
            parts.hostname or "127.0.0.1",
            port_number=parts.port,
            use_https=parts.scheme == "https",
            timeout=GRAPHQL_TIMEOUT_S,
            path_prefix=parts.path.removesuffix("/").removesuffix("/graphql"),
        )
        try:
            # Both names pin the location: with only one, the client ignores it and looks the job up.
            run_id = client.submit_job_execution(
                JOB_NAME,
                repository_location_name=code_location,
                repository_name=REPOSITORY_NAME,
                tags={"dagster/partition": week, "montage/trigger": "api"},
            )
        except DagsterGraphQLClientError as exc:
            # A transport failure's own message is the useful part; the client's wraps it in the query.
            cause = exc.__cause__
            reason = str(cause) if cause else ": ".join(str(arg) for arg in exc.args)
            raise HTTPException(502, f"Dagster did not launch the run: {reason}") from None
        return Triggered(run_id=run_id, week_start=body.week_start)

    return app
