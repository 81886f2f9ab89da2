"""A week built through `mixed_audio` once per test module, on the real Postgres and the S3 server.

The publishing tests start from what a real run leaves behind: the week's tables in Postgres and its
media in a bucket, so `s3_exports` and `social_posts` load their inputs through the real IO managers.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import boto3
import dagster as dg
from dagster_aws.s3 import S3Resource
from PIL import Image
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from montage_pipeline.defs.assets.analysis import scene_segments, scored_highlights
from montage_pipeline.defs.assets.audio import mixed_audio, soundtrack
from montage_pipeline.defs.assets.publish import s3_exports
from montage_pipeline.defs.assets.render import montage_renders
from montage_pipeline.defs.assets.selection import eligible_jobs, selected_clips
from montage_pipeline.defs.io_managers.media_io_manager import MediaIOManager
from montage_pipeline.defs.io_managers.row_tables import field_specs, record_to_row, table_for
from montage_pipeline.defs.io_managers.table_io_manager import TableIOManager
from montage_pipeline.defs.resources.media_store import S3MediaStoreResource
from montage_pipeline.defs.resources.platform_db import PlatformDatabase
from montage_pipeline.defs.resources.upload_storage import UploadStorage
from montage_pipeline.media.synth import plan_clip, write_clip
from montage_pipeline.platform.migrate import upgrade
from montage_pipeline.platform.models import Job, SubscriptionTier, User
from montage_pipeline.settings import load_settings
from montage_pipeline.storage.media_store import S3MediaStore
from montage_pipeline_tests.databases import fresh_database
from montage_pipeline_tests.selection_support import add_upload

WEEK = "2025-01-27"
Row = TypeVar("Row")
# handle -> (tier, opted out of featuring); each uploads one clip this week.
CREATORS = {
    "ace": (SubscriptionTier.CREATOR_PLUS, False),
    "blaze": (SubscriptionTier.CREATOR_PLUS, False),
    "cobalt": (SubscriptionTier.FREE, False),
    "dusk": (SubscriptionTier.CREATOR, False),
    "ember": (SubscriptionTier.CREATOR_PLUS, True),
}
BUILT = [
    eligible_jobs,
    selected_clips,
    scene_segments,
    scored_highlights,
    soundtrack,
    montage_renders,
    mixed_audio,
]
RUN_CONFIG: dict[str, Any] = {
    "ops": {
        "scored_highlights": {"config": {"target_duration_s": 34.0, "min_clips": 3}},
        "montage_renders": {"config": {"width_scale": 1 / 6, "fps": 30}},
    }
}


@dataclass
class BuiltWeek:
    db_url: str
    endpoint: str
    bucket: str
    root: Path
    cache: Path

    def store_resource(self, endpoint: str | None = None) -> S3MediaStoreResource:
        # Through the fault proxy, boto3 gives up after two tries (its default five only slow the test).
        attempts = 2 if endpoint else 5
        s3 = S3Resource(
            endpoint_url=endpoint or self.endpoint, region_name="us-east-1", max_attempts=attempts
        )
        return S3MediaStoreResource(s3=s3, bucket=self.bucket)

    def store(self, endpoint: str | None = None) -> S3MediaStore:
        """The week's bucket as the cores see it."""
        return self.store_resource(endpoint).store()

    def resources(self, endpoint: str | None = None, **extra: Any) -> dict[str, Any]:
        store = self.store_resource(endpoint)
        return {
            "platform_db": PlatformDatabase(url=self.db_url),
            "table_io_manager": TableIOManager(url=self.db_url),
            "upload_storage": UploadStorage(root=str(self.root)),
            "settings": load_settings(),
            "media_store": store,
            "media_io_manager": MediaIOManager(media_store=store, cache_dir=str(self.cache)),
            **extra,
        }

    def session(self) -> Session:
        return Session(create_engine(self.db_url), expire_on_commit=False)

    def user_ids(self) -> dict[str, int]:
        with self.session() as s:
            return {u.handle: u.id for u in s.query(User).all()}

    def finals(self, dest: Path) -> dict[str, Path]:
        """`mixed_audio`'s files of the week, downloaded from the bucket into `dest`."""
        store, prefix = self.store(), f"weeks/{WEEK}/mixed_audio/"
        names = [k.removeprefix(prefix) for k in store.list_keys(prefix)]
        files = {n: dest / n for n in names if n.endswith(".mp4")}
        for name, path in files.items():
            store.get_file(prefix + name, path)
        return files

    def stored_rows(self, asset: str, row_type: type[Row]) -> list[Row]:
        """A table asset's rows of the week, read from its table (as the table IO manager lays it out)."""
        table, specs = table_for(row_type, f"montage_{asset}"), field_specs(row_type)
        engine = create_engine(self.db_url)
        try:
            with engine.connect() as conn:
                found = conn.execute(
                    select(table).where(table.c.partition_key == WEEK).order_by(table.c.row_index)
                )
                return [record_to_row(row_type, r._mapping, specs) for r in found]
        finally:
            engine.dispose()


def build_week(tmp: Path, endpoint: str) -> Iterator[BuiltWeek]:
    """Create a database and a bucket, seed the creators' uploads, build through mixed_audio."""
    bucket = f"media-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(Bucket=bucket)
    with fresh_database() as url:
        upgrade(url)
        week = BuiltWeek(url, endpoint, bucket, tmp / "storage", tmp / "cache")
        with week.session() as s, s.begin():
            for i, (handle, (tier, opted_out)) in enumerate(CREATORS.items()):
                rel = f"{handle}/clip.mp4"
                write_clip(week.root / rel, plan_clip(10.0, 30, seed=900 + i, width=320, height=180))
                job_id = add_upload(
                    s, handle, rel, datetime(2025, 1, 28, tzinfo=UTC) + timedelta(hours=i), "Apex"
                )
                job = s.get(Job, job_id)
                assert job is not None
                if handle == "ace":  # the week's most watched clip: always in the montage
                    job.views, job.likes = 100_000, 9_000
                user = job.user
                assert user is not None
                user.subscription_tier = tier
                user.opted_out_of_featuring = opted_out
        logo = tmp / "logo.png"
        Image.new("RGBA", (120, 60), (255, 0, 200, 255)).save(logo)
        config = copy.deepcopy(RUN_CONFIG)
        config["ops"]["montage_renders"]["config"]["branding_logo"] = str(logo)  # + an unbranded copy
        result = dg.materialize(BUILT, partition_key=WEEK, resources=week.resources(), run_config=config)
        assert result.success
        yield week


def export_week(week: BuiltWeek, endpoint: str | None = None, **kwargs: Any) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [*BUILT, s3_exports],
        selection=[s3_exports],
        partition_key=WEEK,
        resources=week.resources(endpoint),
        **kwargs,
    )
